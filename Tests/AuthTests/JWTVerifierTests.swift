import Auth
import Crypto
import _CryptoExtras
import Foundation
import Testing

@Suite struct JWTVerifierTests {
    let hmac = JWTKey(material: .hmac(SymmetricKey(data: Keys.secret)))
    let rsa = JWTKey(material: .rsa(Keys.rsa.publicKey))
    let ec = JWTKey(material: .p256(Keys.p256.publicKey))

    func verifier(_ keys: [JWTKey], algorithms: [JWTAlgorithm]? = nil, audience: String? = nil,
                  issuer: String? = nil, leeway: Double = 30) -> JWTVerifier {
        try! JWTVerifier(keys: keys, algorithms: algorithms, audience: audience, issuer: issuer, leewaySeconds: leeway)
    }

    func failure(_ r: Result<JWTClaims, AuthFailure>) -> AuthFailure? {
        if case .failure(let f) = r { return f }
        return nil
    }

    @Test func validTokensOfEachAlgorithm() throws {
        let v = verifier([hmac, rsa, ec])
        for token in [Mint.hs256(claims(), secret: Keys.secret), Mint.rs256(claims(), key: Keys.rsa),
                      Mint.es256(claims(), key: Keys.p256)] {
            let c = try v.verify(token, nowSeconds: now).get()
            #expect(c.subject == "alice")
            #expect(c.expiresAtSeconds == now + 600)
            #expect(c.allows(slot: "news.sport".utf8))
            #expect(c.allows(slot: "chat".utf8))
            #expect(!c.allows(slot: "chatter".utf8))
        }
    }

    @Test func wrongSignatureIsInvalid() {
        let v = verifier([hmac, rsa, ec])
        let other = P256.Signing.PrivateKey()
        #expect(failure(v.verify(Mint.es256(claims(), key: other), nowSeconds: now)) == .invalid("bad signature"))
        #expect(failure(v.verify(Mint.hs256(claims(), secret: Array("another secret of at least 32 bytes!".utf8)), nowSeconds: now))
                == .invalid("bad signature"))
        let otherRSA = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
        #expect(failure(v.verify(Mint.rs256(claims(), key: otherRSA), nowSeconds: now)) == .invalid("bad signature"))
        // A valid token whose claims were changed after signing.
        let token = Mint.hs256(claims(), secret: Keys.secret)
        let parts = token.split(separator: ".")
        let forged = parts[0] + "." + Base64URL.encode(Mint.json(claims(["slots": ["*"]]))) + "." + parts[2]
        #expect(failure(v.verify(String(forged), nowSeconds: now)) == .invalid("bad signature"))
    }

    @Test func algNoneIsRefused() {
        let v = verifier([hmac, rsa, ec])
        let token = Mint.unsigned(header: ["alg": "none"], claims: claims()) + "."
        #expect(failure(v.verify(token, nowSeconds: now)) == .invalid("alg none is not allowed"))
        #expect(throws: JWTConfigError.self) { try JWTAlgorithm.parseList("HS256,none").get() }
    }

    @Test func algNotAllowedIsRefused() {
        let v = verifier([hmac, ec], algorithms: [.es256])
        #expect(failure(v.verify(Mint.hs256(claims(), secret: Keys.secret), nowSeconds: now)) == .invalid("alg HS256 is not allowed"))
        #expect(throws: JWTConfigError.self) { try JWTVerifier(keys: [hmac], algorithms: [.rs256]) }
        #expect(throws: JWTConfigError.self) { try JWTVerifier(keys: []) }
    }

    /// The classic confusion: an attacker signs HS256 with the server's RSA public key (which
    /// is public) as the HMAC secret. With only the RSA key configured, HS256 is not allowed;
    /// even with HS256 allowed for another key, the RSA key never verifies an HMAC.
    @Test func hmacWithRSAPublicKeyBytesIsRefused() {
        let pem = Keys.rsa.publicKey.pemRepresentation
        let forged = Mint.hs256(claims(["slots": ["*"]]), secret: Array(pem.utf8))
        #expect(failure(verifier([rsa]).verify(forged, nowSeconds: now)) == .invalid("alg HS256 is not allowed"))
        let der = Array(Keys.rsa.publicKey.derRepresentation)
        let forgedDER = Mint.hs256(claims(), secret: der)
        #expect(failure(verifier([rsa]).verify(forgedDER, nowSeconds: now)) == .invalid("alg HS256 is not allowed"))
        // HS256 allowed (an HMAC key exists): the forged token still fails, against the real secret.
        #expect(failure(verifier([rsa, hmac]).verify(forged, nowSeconds: now)) == .invalid("bad signature"))
        // An RS256 key named by kid is never used for HS256.
        let rsaWithID = JWTKey(id: "k1", material: .rsa(Keys.rsa.publicKey))
        let hmacOther = JWTKey(id: "k2", material: .hmac(SymmetricKey(data: Keys.secret)))
        let forgedKid = Mint.hs256(claims(), secret: Array(pem.utf8), header: ["kid": "k1"])
        #expect(failure(verifier([rsaWithID, hmacOther]).verify(forgedKid, nowSeconds: now)) == .invalid("no HS256 key with kid k1"))
    }

    @Test func kidSelectsTheKey() throws {
        let a = P256.Signing.PrivateKey(), b = P256.Signing.PrivateKey()
        let v = verifier([JWTKey(id: "a", material: .p256(a.publicKey)), JWTKey(id: "b", material: .p256(b.publicKey))])
        _ = try v.verify(Mint.es256(claims(), key: b, header: ["kid": "b"]), nowSeconds: now).get()
        #expect(failure(v.verify(Mint.es256(claims(), key: b, header: ["kid": "a"]), nowSeconds: now)) == .invalid("bad signature"))
        #expect(failure(v.verify(Mint.es256(claims(), key: b, header: ["kid": "c"]), nowSeconds: now)) == .invalid("no ES256 key with kid c"))
        // No kid: every key of the type is tried.
        _ = try v.verify(Mint.es256(claims(), key: a), nowSeconds: now).get()
    }

    @Test func expiryAndLeeway() {
        let v = verifier([hmac], leeway: 30)
        func at(_ extra: [String: Any], _ t: Double) -> AuthFailure? {
            failure(v.verify(Mint.hs256(claims(extra), secret: Keys.secret), nowSeconds: t))
        }
        #expect(at(["exp": now - 10], now) == nil)          // within the leeway
        #expect(at(["exp": now - 30], now) == .expired)
        #expect(at(["exp": now - 3600], now) == .expired)
        var noExp = claims(); noExp["exp"] = nil
        #expect(failure(v.verify(Mint.hs256(noExp, secret: Keys.secret), nowSeconds: now)) == .invalid("exp is required"))
        #expect(at(["exp": "1900000000"], now) == .invalid("exp is not a number"))
        #expect(at(["nbf": now + 10], now) == nil)
        #expect(at(["nbf": now + 60], now) == .invalid("not valid before nbf"))
        #expect(at(["nbf": "x"], now) == .invalid("nbf is not a number"))
        #expect(at(["iat": now + 10], now) == nil)
        #expect(at(["iat": now + 60], now) == .invalid("iat is in the future"))
        let strict = verifier([hmac], leeway: 0)
        #expect(failure(strict.verify(Mint.hs256(claims(["exp": now]), secret: Keys.secret), nowSeconds: now)) == .expired)
    }

    @Test func audienceAndIssuer() {
        let v = verifier([hmac], audience: "ringgate", issuer: "https://auth.example")
        func check(_ extra: [String: Any]) -> AuthFailure? {
            failure(v.verify(Mint.hs256(claims(extra), secret: Keys.secret), nowSeconds: now))
        }
        #expect(check(["aud": "ringgate", "iss": "https://auth.example"]) == nil)
        #expect(check(["aud": ["other", "ringgate"], "iss": "https://auth.example"]) == nil)
        #expect(check(["aud": "other", "iss": "https://auth.example"]) == .invalid("aud does not include ringgate"))
        #expect(check(["iss": "https://auth.example"]) == .invalid("aud does not include ringgate"))
        #expect(check(["aud": "ringgate", "iss": "https://evil.example"]) == .invalid("iss is not https://auth.example"))
        #expect(check(["aud": "ringgate"]) == .invalid("iss is not https://auth.example"))
        // Not configured: not checked.
        #expect(failure(verifier([hmac]).verify(Mint.hs256(claims(["aud": "x", "iss": "y"]), secret: Keys.secret), nowSeconds: now)) == nil)
    }

    @Test func malformedTokensAreInvalidNotCrashes() {
        let v = verifier([hmac, rsa, ec])
        let good = Mint.hs256(claims(), secret: Keys.secret)
        let parts = good.split(separator: ".").map(String.init)
        let cases: [String] = [
            "", ".", "..", "...", "a.b", parts[0] + "." + parts[1],            // 2 parts
            good + ".x",                                                      // 4 parts
            "!!!." + parts[1] + "." + parts[2],                               // bad base64
            parts[0] + ".@@@." + parts[2],
            parts[0] + "." + parts[1] + ".***",
            parts[0] + "=." + parts[1] + "." + parts[2],                      // padding
            "e30." + parts[1] + "." + parts[2],                               // {} header: no alg
            Base64URL.encode(Array("not json".utf8)) + "." + parts[1] + "." + parts[2],
            Base64URL.encode(Array("[1,2]".utf8)) + "." + parts[1] + "." + parts[2],
            Base64URL.encode(Mint.json(["alg": 7])) + "." + parts[1] + "." + parts[2],
            String(repeating: "A", count: 100_000) + "." + parts[1] + "." + parts[2],   // huge header
            Base64URL.encode(Array(repeating: UInt8(ascii: "["), count: 6000)) + ".e30.AAAA",
            Mint.unsigned(header: ["alg": "ES256"], claims: claims()) + "." + Base64URL.encode([1, 2, 3]),  // short ECDSA sig
            Mint.unsigned(header: ["alg": "RS256"], claims: claims()) + "." + Base64URL.encode([1, 2, 3]),
            Mint.unsigned(header: ["alg": "HS256", "crit": ["exp"]], claims: claims()) + "." + parts[2],
            "\u{0}.\u{0}.\u{0}", "ä.ö.ü",
        ]
        for token in cases {
            guard case .failure(let f) = v.verify(token, nowSeconds: now) else {
                Issue.record("accepted \(token.prefix(60))")
                continue
            }
            #expect(f.reason == "invalid", "\(token.prefix(60)): \(f)")
        }
        // Claims that are not an object, or slots of the wrong type, signed correctly.
        let arrayClaims = Base64URL.encode(Mint.json(["alg": "HS256"])) + "." + Base64URL.encode(Array("[1]".utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(arrayClaims.utf8), using: SymmetricKey(data: Keys.secret))
        #expect(failure(v.verify(arrayClaims + "." + Base64URL.encode(Array(mac)), nowSeconds: now))
                == .invalid("the claims are not base64url JSON"))
        #expect(failure(v.verify(Mint.hs256(claims(["slots": "news"]), secret: Keys.secret), nowSeconds: now))
                == .invalid("slots is not an array"))
        #expect(failure(v.verify(Mint.hs256(claims(["slots": [1]]), secret: Keys.secret), nowSeconds: now))
                == .invalid("slots holds a non-string"))
    }
}
