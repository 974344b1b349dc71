import Testing
@testable import WireProtocol

@Suite struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    func request(method: HTTPMethod = .get, version: (Int, Int) = (1, 1),
                 headers: [(String, String)]? = nil, dropping: String? = nil,
                 replacing: (String, String)? = nil) -> HTTPRequest {
        var h = headers ?? [("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", Self.key), ("Sec-WebSocket-Version", "13")]
        if let dropping { h.removeAll { $0.0 == dropping } }
        if let (name, value) = replacing {
            h.removeAll { $0.0 == name }
            h.append((name, value))
        }
        return HTTPRequest(method: method, target: "/v1/slots/news/ws", path: "/v1/slots/news/ws", version: version,
                           headers: h.map { (name: $0.0, value: $0.1) })
    }

    func error(_ r: HTTPRequest) -> WebSocketHandshakeError? {
        if case .failure(let e) = WebSocketHandshake.accept(r) { return e }
        return nil
    }

    @Test func acceptValueMatchesRFC6455Example() {
        #expect(WebSocketHandshake.acceptValue(forKey: Self.key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func switchingProtocolsResponse() throws {
        let bytes = try WebSocketHandshake.accept(request()).get()
        #expect(bytes.text == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }

    @Test func tokenListsAndCaseAreAccepted() throws {
        var r = request(replacing: ("Connection", "keep-alive, UPGRADE"))
        r.headers.removeAll { $0.name == "Upgrade" }
        r.headers.append((name: "upgrade", value: "h2c ,  WebSocket"))
        _ = try WebSocketHandshake.accept(r).get()
        // Extension and subprotocol offers are declined by omission.
        var r2 = request()
        r2.headers.append((name: "Sec-WebSocket-Extensions", value: "permessage-deflate"))
        let bytes = try WebSocketHandshake.accept(r2).get()
        #expect(!bytes.text.contains("Extensions"))
    }

    @Test func wrongOrMissingVersionIs426() throws {
        for r in [request(dropping: "Sec-WebSocket-Version"), request(replacing: ("Sec-WebSocket-Version", "8"))] {
            let e = try #require(error(r))
            #expect(e.status == 426)
            #expect(e.code == "upgrade_required")
            #expect(e.extraHeaders.contains { $0.0 == "Sec-WebSocket-Version" && $0.1 == "13" })
            let response = e.response(keepAlive: false).text
            #expect(response.hasPrefix("HTTP/1.1 426 Upgrade Required\r\n"))
            #expect(response.contains("\r\nSec-WebSocket-Version: 13\r\n"))
            #expect(response.hasSuffix("{\"error\":\"upgrade_required\",\"detail\":\"Sec-WebSocket-Version must be 13\"}"))
        }
    }

    @Test func malformedHandshakesAre400() throws {
        let cases: [HTTPRequest] = [
            request(version: (1, 0)),
            request(dropping: "Upgrade"),
            request(replacing: ("Upgrade", "h2c")),
            request(dropping: "Connection"),
            request(replacing: ("Connection", "keep-alive")),
            request(replacing: ("Connection", "upgraded")),
            request(dropping: "Sec-WebSocket-Key"),
            request(replacing: ("Sec-WebSocket-Key", "")),
            request(replacing: ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ")),     // no padding
            request(replacing: ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=")),    // 23 chars
            request(replacing: ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j*Q==")),   // bad digit
            request(replacing: ("Sec-WebSocket-Key", "c2hvcnQ=")),                   // 5 bytes
            request(replacing: ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZSBh")),   // 18 bytes
        ]
        for r in cases {
            let e = try #require(error(r), "\(r.headers) v\(r.version)")
            #expect(e.status == 400)
            #expect(e.code == "bad_request")
            #expect(e.response(keepAlive: true).text.contains("{\"error\":\"bad_request\",\"detail\":"))
        }
        var twoKeys = request()
        twoKeys.headers.append((name: "Sec-WebSocket-Key", value: Self.key))
        #expect(error(twoKeys)?.status == 400)
    }

    @Test func nonGetIs405WithAllow() throws {
        let e = try #require(error(request(method: .post)))
        #expect(e.status == 405)
        #expect(e.extraHeaders.contains { $0.0 == "Allow" && $0.1 == "GET" })
    }

    @Test func base64() {
        func enc(_ s: String) -> String { Array(s.utf8).withUnsafeBytes { WebSocketBase64.encode($0) } }
        #expect(enc("") == "")
        #expect(enc("f") == "Zg==")
        #expect(enc("fo") == "Zm8=")
        #expect(enc("foo") == "Zm9v")
        #expect(enc("foobar") == "Zm9vYmFy")
    }
}
