import Auth
import Crypto
import _CryptoExtras
import Foundation
import Testing

@Suite struct JWTKeyLoadingTests {
    func write(_ text: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rg-auth-\(UUID().uuidString)").path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func load(hs: String? = nil, pem: String? = nil, jwks: String? = nil, algorithms: [JWTAlgorithm]? = nil) throws(JWTConfigError) -> JWTVerifier {
        try JWTVerifier.load(hs256SecretFile: hs, publicKeyFile: pem, jwksFile: jwks, algorithms: algorithms,
                             audience: nil, issuer: nil, leewaySeconds: 30)
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return (error as? JWTConfigError)?.description ?? "\(error)" }
    }

    @Test func pemKeysByType() throws {
        let rsa = try load(pem: write(Keys.rsa.publicKey.pemRepresentation))
        #expect(rsa.algorithms == [.rs256])
        _ = try rsa.verify(Mint.rs256(claims(), key: Keys.rsa), nowSeconds: now).get()
        let ec = try load(pem: write(Keys.p256.publicKey.pemRepresentation))
        #expect(ec.algorithms == [.es256])
        _ = try ec.verify(Mint.es256(claims(), key: Keys.p256), nowSeconds: now).get()
    }

    @Test func secretFile() throws {
        let v = try load(hs: write(String(decoding: Keys.secret, as: UTF8.self) + "\n"))
        _ = try v.verify(Mint.hs256(claims(), secret: Keys.secret), nowSeconds: now).get()
        #expect(message { _ = try load(hs: write("short\n")) }.contains("needs at least 32"))
    }

    @Test func jwks() throws {
        let ec = Keys.p256.publicKey.rawRepresentation
        let (modulus, exponent) = Self.rsaParameters(Keys.rsa.publicKey)
        let doc = """
        {"keys":[
          {"kty":"EC","crv":"P-256","kid":"ec1","x":"\(Base64URL.encode(ec.prefix(32)))","y":"\(Base64URL.encode(ec.suffix(32)))"},
          {"kty":"RSA","kid":"rsa1","alg":"RS256","n":"\(Base64URL.encode(modulus))","e":"\(Base64URL.encode(exponent))"},
          {"kty":"oct","kid":"hs1","k":"\(Base64URL.encode(Keys.secret))"},
          {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}
        ]}
        """
        let v = try load(jwks: write(doc))
        #expect(v.algorithms == [.es256, .rs256, .hs256])
        _ = try v.verify(Mint.es256(claims(), key: Keys.p256, header: ["kid": "ec1"]), nowSeconds: now).get()
        _ = try v.verify(Mint.rs256(claims(), key: Keys.rsa, header: ["kid": "rsa1"]), nowSeconds: now).get()
        _ = try v.verify(Mint.hs256(claims(), secret: Keys.secret, header: ["kid": "hs1"]), nowSeconds: now).get()
        #expect(message { _ = try load(jwks: write(#"{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}"#)) }.contains("only P-256"))
        #expect(message { _ = try load(jwks: write(#"{"keys":[{"kty":"oct","alg":"RS256","k":"\#(Base64URL.encode(Keys.secret))"}]}"#)) }
                .contains("says alg RS256"))
        #expect(message { _ = try load(jwks: write("[]")) }.contains("not a JWKS"))
        #expect(message { _ = try load(jwks: write(#"{"keys":[]}"#)) }.contains("no signing keys"))
    }

    @Test func badFilesSayWhich() {
        #expect(message { _ = try load(pem: "/nonexistent/key.pem") }.contains("--jwt-public-key-file /nonexistent/key.pem: cannot open"))
        #expect(message { _ = try load(pem: write("hello")) }.contains("not a PEM public key"))
        let priv = Keys.p256.pemRepresentation
        let m = message { _ = try load(pem: write(priv)) }
        #expect(m.contains("private key"))
        #expect(!m.contains(String(priv.split(separator: "\n")[1])))   // never the key bytes
        #expect(message { _ = try load() }.contains("needs a key"))
        #expect(message { _ = try load(hs: write(String(decoding: Keys.secret, as: UTF8.self)), algorithms: [.es256]) }
                .contains("no configured key verifies it"))
    }

    /// n and e of an RSA public key, from its PKCS#1 DER (SEQUENCE { INTEGER n, INTEGER e }).
    static func rsaParameters(_ key: _RSA.Signing.PublicKey) -> ([UInt8], [UInt8]) {
        let der = Array(key.pkcs1DERRepresentation)
        var i = 0
        func length() -> Int {
            var n = Int(der[i]); i += 1
            if n & 0x80 != 0 {
                let count = n & 0x7f
                n = 0
                for _ in 0..<count { n = n << 8 | Int(der[i]); i += 1 }
            }
            return n
        }
        func integer() -> [UInt8] {
            precondition(der[i] == 0x02); i += 1
            let n = length()
            var bytes = Array(der[i..<(i + n)]); i += n
            while bytes.count > 1 && bytes[0] == 0 { bytes.removeFirst() }
            return bytes
        }
        precondition(der[i] == 0x30); i += 1
        _ = length()
        return (integer(), integer())
    }
}
