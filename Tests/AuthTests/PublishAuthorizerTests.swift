import Auth
import Crypto
import Testing

@Suite struct PublishAuthorizerTests {
    let verifier = try! JWTVerifier(keys: [JWTKey(material: .hmac(SymmetricKey(data: Keys.secret)))], leewaySeconds: 0)

    func check(_ a: inout PublishAuthorizer, _ header: String?, at time: Double = now) -> PublishAuthorizer.Verdict {
        guard var h = header else { return a.check(nil, nowSeconds: time) }
        return h.withUTF8 { a.check(UnsafeRawBufferPointer($0), nowSeconds: time) }
    }

    @Test func openWithoutTokenOrJWT() {
        var a = PublishAuthorizer(publishToken: nil, verifier: nil)
        #expect(a.isOpen)
        #expect(check(&a, nil) == .open)
        #expect(check(&a, "Bearer anything") == .open)
    }

    @Test func staticTokenOnly() {
        var a = PublishAuthorizer(publishToken: "s3cret", verifier: nil)
        #expect(check(&a, "Bearer s3cret") == .token)
        #expect(check(&a, nil) == .refused(.missing))
        #expect(check(&a, "Bearer s3cre") == .refused(.invalid("not the publish token")))
        #expect(check(&a, "Bearer s3cretX") == .refused(.invalid("not the publish token")))
        // Without --publish-auth jwt a JWT is just a wrong static token.
        #expect(check(&a, "Bearer " + Mint.hs256(claims(["publish": ["*"]]), secret: Keys.secret))
                == .refused(.invalid("not the publish token")))
    }

    @Test func jwtPublishClaimBesideTheStaticToken() throws {
        var a = PublishAuthorizer(publishToken: "s3cret", verifier: verifier)
        #expect(check(&a, "Bearer s3cret") == .token)
        let token = Mint.hs256(claims(["publish": ["news.*", "alerts"]]), secret: Keys.secret)
        guard case .jwt(let c) = check(&a, "bearer  \(token) ") else {   // any case, spaces trimmed
            Issue.record("the JWT was not accepted")
            return
        }
        #expect(c.allows(publishingTo: "news.a".utf8))
        #expect(c.allows(publishingTo: "alerts".utf8))
        #expect(!c.allows(publishingTo: "news".utf8))
        #expect(!c.allows(publishingTo: "chat".utf8), "slots (reading) grant no publishing")
        #expect(c.allows(slot: "chat".utf8))
        #expect(check(&a, "Basic czNjcmV0") == .refused(.missing))
        #expect(check(&a, "Bearer ") == .refused(.missing))
        #expect(check(&a, "Bearer a.b.c").isRefused)
    }

    @Test func rememberedTokenExpires() {
        var a = PublishAuthorizer(publishToken: nil, verifier: verifier)
        let token = Mint.hs256(claims(["publish": ["*"], "exp": now + 10]), secret: Keys.secret)
        #expect(!check(&a, "Bearer \(token)").isRefused)
        #expect(!check(&a, "Bearer \(token)", at: now + 9.9).isRefused, "remembered, still valid")
        #expect(check(&a, "Bearer \(token)", at: now + 10) == .refused(.expired), "remembered, then expired")
        #expect(check(&a, "Bearer \(token)", at: now + 10) == .refused(.expired), "verified again: expired")
        // A token signed with another key is not accepted because an earlier one was.
        let forged = Mint.hs256(claims(["publish": ["*"]]), secret: Array("another secret of at least 32 bytes!".utf8))
        #expect(check(&a, "Bearer \(forged)") == .refused(.invalid("bad signature")))
    }

    @Test func publishClaimOfTheWrongType() {
        var a = PublishAuthorizer(publishToken: nil, verifier: verifier)
        #expect(check(&a, "Bearer " + Mint.hs256(claims(["publish": "news"]), secret: Keys.secret))
                == .refused(.invalid("publish is not an array")))
        #expect(check(&a, "Bearer " + Mint.hs256(claims(["publish": [1]]), secret: Keys.secret))
                == .refused(.invalid("publish holds a non-string")))
    }
}

extension PublishAuthorizer.Verdict {
    var isRefused: Bool {
        if case .refused = self { return true }
        return false
    }
}
