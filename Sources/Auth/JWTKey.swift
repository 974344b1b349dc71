import Crypto
import _CryptoExtras
import Foundation

/// A key that verifies token signatures, and the one algorithm it verifies: an HMAC secret
/// only HS256, an RSA public key only RS256, a P-256 public key only ES256. Binding the
/// algorithm to the key type is what stops algorithm confusion (an `HS256` token "signed"
/// with an RSA public key's bytes as the HMAC secret finds no HMAC key and is refused).
public struct JWTKey: @unchecked Sendable {
    public enum Material {
        case hmac(SymmetricKey)
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
    }

    /// The JWK `kid`, when the key came from a JWKS that named it.
    public let id: String?
    public let material: Material

    public init(id: String? = nil, material: Material) {
        self.id = id
        self.material = material
    }

    public var algorithm: JWTAlgorithm {
        switch material {
        case .hmac: .hs256
        case .rsa: .rs256
        case .p256: .es256
        }
    }

    /// The shortest HS256 secret accepted: RFC 7518 §3.2 asks for at least the hash's size.
    public static let hmacSecretBytesMin = 32

    /// Checks `signature` over `signingInput` (the token's `header.payload` bytes).
    func verifies(signature: [UInt8], signingInput: [UInt8]) -> Bool {
        switch material {
        case .hmac(let key):
            return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key)
        case .rsa(let key):
            let sig = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(sig, for: signingInput, padding: .insecurePKCS1v1_5)
        case .p256(let key):
            // JWS carries R || S (64 bytes), not DER (RFC 7518 §3.4).
            guard signature.count == 64, let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return false
            }
            return key.isValidSignature(sig, for: signingInput)
        }
    }

    // MARK: Loading

    /// An HS256 secret from the bytes of `--jwt-hs256-secret-file`; one trailing newline (as
    /// editors and `echo` leave) is not part of it.
    public static func hmacSecret(fileBytes: [UInt8], path: String) throws(JWTConfigError) -> JWTKey {
        var bytes = fileBytes
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard bytes.count >= hmacSecretBytesMin else {
            throw JWTConfigError("--jwt-hs256-secret-file \(path): the secret is \(bytes.count) bytes; HS256 needs at least \(hmacSecretBytesMin) (e.g. head -c 48 /dev/urandom | base64 > \(path))")
        }
        return JWTKey(material: .hmac(SymmetricKey(data: bytes)))
    }

    /// A public key from a PEM file: `PUBLIC KEY` (SubjectPublicKeyInfo, RSA or P-256) or
    /// `RSA PUBLIC KEY` (PKCS#1). Private keys and certificates are refused.
    public static func publicKey(pem: String, path: String) throws(JWTConfigError) -> JWTKey {
        let flag = "--jwt-public-key-file \(path)"
        if pem.contains("PRIVATE KEY-----") {
            throw JWTConfigError("\(flag): this is a private key; give the public key (openssl pkey -in KEY -pubout)")
        }
        if pem.contains("BEGIN CERTIFICATE") {
            throw JWTConfigError("\(flag): this is a certificate; give its public key (openssl x509 -in CERT -pubkey -noout)")
        }
        guard pem.contains("-----BEGIN ") && pem.contains("PUBLIC KEY-----") else {
            throw JWTConfigError("\(flag): not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
        }
        if let key = try? P256.Signing.PublicKey(pemRepresentation: pem) {
            return JWTKey(material: .p256(key))
        }
        do {
            return JWTKey(material: .rsa(try _RSA.Signing.PublicKey(pemRepresentation: pem)))
        } catch {
            throw JWTConfigError("\(flag): neither an RSA public key of at least 2048 bits nor a P-256 (prime256v1) public key; other EC curves are not supported")
        }
    }

    /// The signing keys of a JWKS document (RFC 7517): `kty` `RSA` (n, e), `EC` with `crv`
    /// `P-256` (x, y) or `oct` (k). Keys marked `"use":"enc"` are skipped; a key whose `alg`
    /// disagrees with its type is refused.
    public static func keySet(jwks: [UInt8], path: String) throws(JWTConfigError) -> [JWTKey] {
        let flag = "--jwks-file \(path)"
        guard let object = try? JSONSerialization.jsonObject(with: Data(jwks)) as? [String: Any],
              let list = object["keys"] as? [Any] else {
            throw JWTConfigError("\(flag): not a JWKS (expected a JSON object with a \"keys\" array)")
        }
        var keys: [JWTKey] = []
        for (index, item) in list.enumerated() {
            guard let jwk = item as? [String: Any], let kty = jwk["kty"] as? String else {
                throw JWTConfigError("\(flag): keys[\(index)] has no \"kty\"")
            }
            let kid = jwk["kid"] as? String
            let name = "keys[\(index)]" + (kid.map { " (kid \($0))" } ?? "")
            if let use = jwk["use"] as? String, use != "sig" { continue }
            func member(_ m: String) throws(JWTConfigError) -> [UInt8] {
                guard let text = jwk[m] as? String, let bytes = Base64URL.decode(text.utf8), !bytes.isEmpty else {
                    throw JWTConfigError("\(flag): \(name) has no valid base64url \"\(m)\"")
                }
                return bytes
            }
            let key: JWTKey
            switch kty {
            case "oct":
                let k = try member("k")
                guard k.count >= hmacSecretBytesMin else {
                    throw JWTConfigError("\(flag): \(name) is an oct key of \(k.count) bytes; HS256 needs at least \(hmacSecretBytesMin)")
                }
                key = JWTKey(id: kid, material: .hmac(SymmetricKey(data: k)))
            case "RSA":
                let n = try member("n"), e = try member("e")
                do {
                    key = JWTKey(id: kid, material: .rsa(try _RSA.Signing.PublicKey(n: n, e: e)))
                } catch {
                    throw JWTConfigError("\(flag): \(name) is not a usable RSA public key (n, e)")
                }
                guard key.rsaBits >= 2048 else {
                    throw JWTConfigError("\(flag): \(name) is an RSA key of \(key.rsaBits) bits; at least 2048 are needed")
                }
            case "EC":
                guard (jwk["crv"] as? String) == "P-256" else {
                    throw JWTConfigError("\(flag): \(name) is on curve \(jwk["crv"] as? String ?? "(none)"); only P-256 (ES256) is supported")
                }
                let x = try member("x"), y = try member("y")
                guard x.count == 32, y.count == 32,
                      let p = try? P256.Signing.PublicKey(rawRepresentation: x + y) else {
                    throw JWTConfigError("\(flag): \(name) is not a valid P-256 point (x, y)")
                }
                key = JWTKey(id: kid, material: .p256(p))
            default:
                throw JWTConfigError("\(flag): \(name) has kty \(kty); expected RSA, EC or oct")
            }
            if let alg = jwk["alg"] as? String, alg != key.algorithm.rawValue {
                throw JWTConfigError("\(flag): \(name) says alg \(alg) but is a \(kty) key, which verifies only \(key.algorithm.rawValue)")
            }
            keys.append(key)
        }
        guard !keys.isEmpty else { throw JWTConfigError("\(flag): no signing keys in \"keys\"") }
        return keys
    }

    var rsaBits: Int {
        guard case .rsa(let key) = material else { return 0 }
        return key.keySizeInBits
    }
}
