import WireProtocol

/// The answer to `/healthz` on either listener: the process is up and its loop turns.
public enum HealthResponse {
    public static let body = Array(#"{"status":"ok"}"#.utf8)

    /// `200 {"status":"ok"}`; a `HEAD` gets the same head without the body.
    public static func ok(_ request: HTTPRequest, extraHeaders: [(String, String)] = []) -> [UInt8] {
        HTTPResponseWriter.json(status: 200, body: body, keepAlive: request.keepAlive, extraHeaders: extraHeaders,
                                headOnly: request.method == .head)
    }
}
