/// One complete request: head and body.
public struct HTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The request target exactly as sent (e.g. `/v1/slots/a%20b/events?limit=5`).
    public var target: String
    /// The percent-decoded path (`*` for `OPTIONS *`; the path part of an absolute-form target).
    public var path: String
    /// The raw query after `?`, without the `#fragment`; empty when there is none.
    public var rawQuery: Substring
    /// The decoded query pairs, in order (`+` is a space).
    public var query: [(String, String)]
    /// The HTTP version: (1, 0) or (1, 1).
    public var version: (major: Int, minor: Int)
    /// Whether the connection may carry another request after the response.
    public var keepAlive: Bool
    /// The header fields in order, names and values as sent (values trimmed of whitespace).
    public var headers: [(name: String, value: String)]
    /// The body, decoded from chunked framing when it was chunked.
    public var body: [UInt8]
    /// Whether the request carried `Expect: 100-continue`.
    public var expectsContinue: Bool

    /// Creates a request, e.g. in tests of the routes.
    public init(method: HTTPMethod, target: String, path: String, rawQuery: Substring = "",
                query: [(String, String)] = [], version: (major: Int, minor: Int) = (1, 1),
                keepAlive: Bool = true, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                expectsContinue: Bool = false) {
        self.method = method
        self.target = target
        self.path = path
        self.rawQuery = rawQuery
        self.query = query
        self.version = version
        self.keepAlive = keepAlive
        self.headers = headers
        self.body = body
        self.expectsContinue = expectsContinue
    }

    /// The first value of the header `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        for h in headers where ASCII.equalsIgnoringCase(h.name.utf8, name.utf8) { return h.value }
        return nil
    }

    /// Every value of the header `name`, in order.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { ASCII.equalsIgnoringCase($0.name.utf8, name.utf8) }.map(\.value)
    }

    /// The first decoded value of the query parameter `name` (compared exactly).
    public func queryValue(_ name: String) -> String? {
        for (k, v) in query where k == name { return v }
        return nil
    }
}
