import Testing
import WireProtocol
@testable import RoleSupport

/// The `/healthz` answer both listeners give.
@Suite struct HealthResponseTests {
    @Test func healthAnswersHeadWithoutTheBody() {
        let get = HealthResponse.ok(HTTPRequest(method: .get, target: "/healthz", path: "/healthz"))
        let head = HealthResponse.ok(HTTPRequest(method: .head, target: "/healthz", path: "/healthz"))
        let text = String(decoding: get, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 "))
        #expect(text.hasSuffix("\r\n\r\n{\"status\":\"ok\"}"))
        #expect(text.contains("Content-Length: 15\r\n"))
        // HEAD: the GET's status and headers, its Content-Length included (RFC 9110 §9.3.2),
        // never the body bytes, which would break keep-alive framing.
        let headText = String(decoding: head, as: UTF8.self)
        #expect(headText.hasPrefix("HTTP/1.1 200 "))
        #expect(headText.hasSuffix("Content-Length: 15\r\nConnection: keep-alive\r\n\r\n"))
    }
}
