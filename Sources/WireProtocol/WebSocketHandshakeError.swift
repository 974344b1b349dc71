/// Why an upgrade request was refused, with the response to send.
public struct WebSocketHandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The response status: 400, 405 or 426.
    public var status: Int
    /// The `error` field of the JSON body, e.g. `bad_request`.
    public var code: String
    /// A human-readable explanation for the `detail` field.
    public var detail: String
    /// Headers the response must carry: `Sec-WebSocket-Version: 13` with 426, `Allow: GET` with 405.
    public var extraHeaders: [(String, String)]

    /// Creates an error with the response it calls for.
    public init(status: Int, code: String, detail: String, extraHeaders: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.detail = detail
        self.extraHeaders = extraHeaders
    }

    /// The complete response: head plus `{"error":…,"detail":…}`.
    public func response(keepAlive: Bool) -> [UInt8] {
        HTTPResponseWriter.error(status: status, code: code, detail: detail, keepAlive: keepAlive,
                                 extraHeaders: extraHeaders)
    }

    /// `STATUS code: detail`, for logs.
    public var description: String { "\(status) \(code): \(detail)" }

    public static func == (a: WebSocketHandshakeError, b: WebSocketHandshakeError) -> Bool {
        a.status == b.status && a.code == b.code && a.detail == b.detail
            && a.extraHeaders.elementsEqual(b.extraHeaders, by: { $0 == $1 })
    }

    static func badRequest(_ detail: String) -> WebSocketHandshakeError {
        WebSocketHandshakeError(status: 400, code: "bad_request", detail: detail)
    }
}
