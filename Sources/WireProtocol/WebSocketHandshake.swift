import Crypto

/// The server side of the WebSocket opening handshake (RFC 6455 §4.2).
///
/// No subprotocol and no extension is ever accepted: `Sec-WebSocket-Protocol` and
/// `Sec-WebSocket-Extensions` offers (permessage-deflate) are declined by leaving them out of
/// the 101, which is how the frame decoder can refuse every RSV bit.
public enum WebSocketHandshake {
    /// The GUID of RFC 6455 §1.3, appended to the key before hashing.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Checks an upgrade request and builds the `101 Switching Protocols` response, or the
    /// error to answer with.
    ///
    /// - A method other than GET: 405 `method_not_allowed` with `Allow: GET` (the API's rule
    ///   for a known route and a wrong method).
    /// - `Sec-WebSocket-Version` missing or not 13: 426 `upgrade_required` with
    ///   `Sec-WebSocket-Version: 13`, so the client can retry with a version we speak.
    /// - Anything else malformed (HTTP/1.0, no `Upgrade: websocket`, no `upgrade` in
    ///   `Connection`, a key that is not the base64 of 16 bytes): 400 `bad_request`.
    ///
    /// After a 101 the connection speaks frames; after an error it may stay HTTP.
    public static func accept(_ request: HTTPRequest) -> Result<[UInt8], WebSocketHandshakeError> {
        guard request.method == .get else {
            return .failure(WebSocketHandshakeError(
                status: 405, code: "method_not_allowed", detail: "a WebSocket upgrade must be a GET",
                extraHeaders: [("Allow", "GET")]))
        }
        guard request.version.major > 1 || (request.version.major == 1 && request.version.minor >= 1) else {
            return .failure(.badRequest("a WebSocket upgrade needs HTTP/1.1"))
        }
        guard hasToken(request.headerValues("Upgrade"), "websocket") else {
            return .failure(.badRequest("missing Upgrade: websocket"))
        }
        guard hasToken(request.headerValues("Connection"), "upgrade") else {
            return .failure(.badRequest("missing Connection: Upgrade"))
        }
        guard hasToken(request.headerValues("Sec-WebSocket-Version"), "13") else {
            return .failure(WebSocketHandshakeError(
                status: 426, code: "upgrade_required", detail: "Sec-WebSocket-Version must be 13",
                extraHeaders: [("Sec-WebSocket-Version", "13")]))
        }
        let keys = request.headerValues("Sec-WebSocket-Key")
        guard keys.count == 1, let key = keys.first, isValidKey(key) else {
            return .failure(.badRequest("Sec-WebSocket-Key must be one base64-encoded 16-byte value"))
        }
        return .success(response(acceptValue: acceptValue(forKey: key)))
    }

    /// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
    public static func acceptValue(forKey key: String) -> String {
        var hasher = Insecure.SHA1()
        var text = key + guid
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        let digest = hasher.finalize()
        return digest.withUnsafeBytes { WebSocketBase64.encode($0) }
    }

    /// The 101 response head with `acceptValue`.
    public static func response(acceptValue: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        ASCII.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", to: &out)
        ASCII.append("Sec-WebSocket-Accept: ", to: &out)
        ASCII.append(acceptValue, to: &out)
        ASCII.append("\r\n\r\n", to: &out)
        return out
    }

    /// Whether `key` is 24 base64 characters encoding 16 bytes (22 digits and `==`).
    static func isValidKey(_ key: String) -> Bool {
        let b = Array(key.utf8)
        guard b.count == 24, b[22] == ASCII.equals, b[23] == ASCII.equals else { return false }
        return b[0..<22].allSatisfy { WebSocketBase64.value(of: $0) != nil }
    }

    /// Whether any comma-separated element of `values` equals `token`, ignoring case and
    /// surrounding whitespace.
    static func hasToken(_ values: [String], _ token: String) -> Bool {
        for value in values {
            for element in value.utf8.split(separator: ASCII.comma, omittingEmptySubsequences: true) {
                let trimmed = element.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
                if ASCII.equalsIgnoringCase(trimmed, token.utf8) { return true }
            }
        }
        return false
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == ASCII.space || b == ASCII.tab }
}
