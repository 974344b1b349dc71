/// Writes HTTP/1.1 response heads and small complete responses.
public enum HTTPResponseWriter {
    /// The interim response sent when a request carried `Expect: 100-continue`.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Builds a response head ending with the blank line.
    ///
    /// `Connection` is always written (`keep-alive` or `close`) so HTTP/1.0 clients keep the
    /// connection when we do. `contentLength` `nil` writes no `Content-Length` (a stream whose
    /// end is the connection's end). `extraHeaders` are written as given, in order; the caller
    /// must not pass CR or LF in them.
    public static func head(status: Int, contentType: String?, contentLength: Int?, keepAlive: Bool,
                            extraHeaders: [(String, String)] = []) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + extraHeaders.count * 32)
        appendHead(status: status, contentType: contentType, contentLength: contentLength, keepAlive: keepAlive,
                   extraHeaders: extraHeaders, to: &out)
        return out
    }

    /// Appends the same head as `head(…)` to `out`: a caller that answers many requests keeps
    /// one array and reuses its capacity instead of allocating a head per response.
    public static func appendHead(status: Int, contentType: String?, contentLength: Int?, keepAlive: Bool,
                                  extraHeaders: [(String, String)] = [], to out: inout [UInt8]) {
        ASCII.append("HTTP/1.1 ", to: &out)
        ASCII.appendDecimal(UInt64(status), to: &out)
        out.append(ASCII.space)
        ASCII.append(HTTPStatus.reasonPhrase(status), to: &out)
        ASCII.append("\r\n", to: &out)
        if let contentType {
            ASCII.append("Content-Type: ", to: &out)
            ASCII.append(contentType, to: &out)
            ASCII.append("\r\n", to: &out)
        }
        if let contentLength {
            precondition(contentLength >= 0, "negative Content-Length")
            ASCII.append("Content-Length: ", to: &out)
            ASCII.appendDecimal(UInt64(contentLength), to: &out)
            ASCII.append("\r\n", to: &out)
        }
        ASCII.append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n", to: &out)
        for (name, value) in extraHeaders {
            assert(!name.utf8.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }), "CR/LF in header name")
            assert(!value.utf8.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }), "CR/LF in header value")
            ASCII.append(name, to: &out)
            ASCII.append(": ", to: &out)
            ASCII.append(value, to: &out)
            ASCII.append("\r\n", to: &out)
        }
        ASCII.append("\r\n", to: &out)
    }

    /// Builds a complete `application/json` response: head plus `body`.
    public static func json(status: Int, body: [UInt8], keepAlive: Bool,
                            extraHeaders: [(String, String)] = [], headOnly: Bool = false) -> [UInt8] {
        var out = head(status: status, contentType: "application/json", contentLength: body.count,
                       keepAlive: keepAlive, extraHeaders: extraHeaders)
        // A HEAD answer: the GET's Content-Length (RFC 9110 §9.3.2), no body.
        if !headOnly { out.append(contentsOf: body) }
        return out
    }

    /// Builds a complete error response with the body `{"error":code,"detail":detail}`.
    public static func error(status: Int, code: String, detail: String, keepAlive: Bool,
                             extraHeaders: [(String, String)] = []) -> [UInt8] {
        json(status: status, body: ErrorBody.json(error: code, detail: detail), keepAlive: keepAlive,
             extraHeaders: extraHeaders)
    }

    /// Builds the response for a parse error; the connection is always closed after it.
    public static func error(_ e: HTTPParseError) -> [UInt8] {
        error(status: e.status, code: e.code, detail: e.detail, keepAlive: false)
    }

    /// A response head fixed but for its `Content-Length`, split once around the length so a
    /// server answering many requests alike (the ingest's 201s) writes each head with two
    /// copies and the digits. The bytes are exactly those of `head(…)` with that length.
    public struct HeadTemplate: Sendable {
        let prefix: [UInt8]
        let suffix: [UInt8]

        public init(status: Int, contentType: String?, keepAlive: Bool, extraHeaders: [(String, String)] = []) {
            let sample = HTTPResponseWriter.head(status: status, contentType: contentType, contentLength: 0,
                                                 keepAlive: keepAlive, extraHeaders: extraHeaders)
            guard let field = sample.firstRange(of: Array("\r\nContent-Length: 0\r\n".utf8)) else {
                preconditionFailure("head(…) wrote no Content-Length field")
            }
            let digit = field.upperBound - 3   // the "0"
            prefix = Array(sample[..<digit])
            suffix = Array(sample[(digit + 1)...])
        }

        /// The most bytes `write` can take (the longest Content-Length has 20 digits).
        public var maxBytes: Int { prefix.count + 20 + suffix.count }

        /// Writes the head with `contentLength` into `out` at `offset` (at least `maxBytes`
        /// from there); returns where it ends.
        public func write(contentLength: Int, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
            precondition(contentLength >= 0, "negative Content-Length")
            precondition(offset >= 0 && offset + maxBytes <= out.count, "head does not fit")
            var k = offset
            prefix.withUnsafeBytes { (out.baseAddress! + k).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            k += prefix.count
            k += ASCII.writeDecimal(UInt64(contentLength), into: out, at: k)
            suffix.withUnsafeBytes { (out.baseAddress! + k).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            return k + suffix.count
        }

        /// Appends the head with `contentLength` to `out`.
        public func append(contentLength: Int, to out: inout [UInt8]) {
            precondition(contentLength >= 0, "negative Content-Length")
            out.append(contentsOf: prefix)
            ASCII.appendDecimal(UInt64(contentLength), to: &out)
            out.append(contentsOf: suffix)
        }
    }
}
