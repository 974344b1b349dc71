import Testing
@testable import WireProtocol

@Suite struct CORSPolicyTests {
    func header(_ headers: [(String, String)], _ name: String) -> String? {
        headers.first { $0.0 == name }?.1
    }

    @Test func originListParsing() throws {
        #expect(try OriginList(parsing: "*") == .any)
        #expect(try OriginList(parsing: "none") == .only([]))
        #expect(try OriginList(parsing: "https://App.example, http://localhost:3000")
                == .only(["https://app.example", "http://localhost:3000"]))
        #expect(try OriginList(parsing: "http://[::1]:8080") == .only(["http://[::1]:8080"]))
        for bad in ["", "app.example", "https://app.example/", "https://app.example/path", "ftp://x",
                    "https://", "http://a.example:0", "http://a.example:99999", "http://a b", "null",
                    "https://a.example,,https://b.example", "http://[::1"] {
            #expect(throws: OriginList.ParseError.self, "\(bad)") { try OriginList(parsing: bad) }
        }
    }

    @Test func anyOriginAnswersStarWithoutVary() {
        let policy = CORSPolicy(origins: .any)
        for origin in [nil, "http://a.example"] as [String?] {
            let h = policy.responseHeaders(origin: origin)
            #expect(header(h, "Access-Control-Allow-Origin") == "*")
            #expect(header(h, "Access-Control-Expose-Headers") == "Content-Type")
            #expect(header(h, "Vary") == nil)
        }
    }

    @Test func listEchoesAMatchingOriginWithVary() {
        let policy = CORSPolicy(origins: .only(["https://app.example"]))
        let h = policy.responseHeaders(origin: "https://APP.example")
        #expect(header(h, "Access-Control-Allow-Origin") == "https://APP.example")
        #expect(header(h, "Vary") == "Origin")
        let refused = policy.responseHeaders(origin: "https://evil.example")
        #expect(header(refused, "Access-Control-Allow-Origin") == nil)
        #expect(header(refused, "Vary") == "Origin")
        #expect(!policy.allows(origin: "https://evil.example"))
        #expect(policy.allows(origin: nil), "a request without Origin is not from a page")
        #expect(header(policy.responseHeaders(origin: nil), "Access-Control-Allow-Origin") == nil)
    }

    @Test func preflightAnswer() throws {
        let h = try #require(CORSPolicy(origins: .only(["http://a.example"])).preflightHeaders(origin: "http://a.example"))
        #expect(header(h, "Access-Control-Allow-Origin") == "http://a.example")
        #expect(header(h, "Access-Control-Allow-Methods") == "GET, HEAD, OPTIONS")
        #expect(header(h, "Access-Control-Allow-Headers") == "Last-Event-ID, Authorization, Cache-Control")
        #expect(header(h, "Access-Control-Max-Age") == "600")
        #expect(header(h, "Vary") == "Origin")
        let ws = try #require(CORSPolicy(origins: .any).preflightHeaders(origin: "http://a.example", methods: "GET, OPTIONS"))
        #expect(header(ws, "Access-Control-Allow-Methods") == "GET, OPTIONS", "a WebSocket route has no HEAD")
        #expect(CORSPolicy(origins: .only(["http://a.example"])).preflightHeaders(origin: "http://b.example") == nil)
        let star = try #require(CORSPolicy(origins: .any).preflightHeaders(origin: "http://b.example"))
        #expect(header(star, "Access-Control-Allow-Origin") == "*")
        #expect(header(star, "Vary") == nil)
    }
}
