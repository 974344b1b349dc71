import Auth
import Testing

@Suite struct SlotPatternTests {
    func allows(_ patterns: [String], _ slot: String) -> Bool {
        JWTClaims(expiresAtSeconds: 0, slots: patterns.map(SlotPattern.init)).allows(slot: slot.utf8)
    }

    @Test func exactPrefixAndAll() {
        #expect(allows(["news"], "news"))
        #expect(!allows(["news"], "news.x"))
        #expect(!allows(["news"], "new"))
        #expect(allows(["news.*"], "news.x"))
        #expect(allows(["news.*"], "news.a.b"))
        #expect(!allows(["news.*"], "news"))
        #expect(!allows(["news.*"], "newsx"))
        #expect(allows(["*"], "anything"))
        #expect(allows(["a", "b.*"], "b.c"))
        #expect(!allows([], "news"))
        #expect(!allows(["n*ws"], "news"))   // `*` only at the end
    }
}

@Suite struct BearerTokenTests {
    @Test func sourcesInOrder() {
        #expect(BearerToken.find(authorization: "Bearer abc", cookies: ["t=c"], cookieName: "t", query: "q") == "abc")
        #expect(BearerToken.find(authorization: "bearer  abc ", cookies: [], cookieName: nil, query: nil) == "abc")
        #expect(BearerToken.find(authorization: "Basic dXNlcg==", cookies: [], cookieName: nil, query: nil) == nil)
        #expect(BearerToken.find(authorization: nil, cookies: ["a=1; t=cookie; b=2"], cookieName: "t", query: "q") == "cookie")
        #expect(BearerToken.find(authorization: nil, cookies: ["tt=1"], cookieName: "t", query: "q") == "q")
        #expect(BearerToken.find(authorization: nil, cookies: ["t=\"v\""], cookieName: "t", query: nil) == "v")
        #expect(BearerToken.find(authorization: nil, cookies: ["t=1"], cookieName: nil, query: nil) == nil)
        #expect(BearerToken.find(authorization: "Bearer ", cookies: [], cookieName: nil, query: "") == nil)
    }

    @Test func base64URLRoundTrip() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes).utf8) == bytes)
        }
        #expect(Base64URL.decode("A".utf8) == nil)
        #expect(Base64URL.decode("AA==".utf8) == nil)
        #expect(Base64URL.decode("a+b/".utf8) == nil)
    }
}
