import Auth
import Crypto
import _CryptoExtras
import Foundation

/// Mints compact JWS tokens for the tests with swift-crypto's private keys.
enum Mint {
    static func json(_ object: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func unsigned(header: [String: Any], claims: [String: Any]) -> String {
        Base64URL.encode(json(header)) + "." + Base64URL.encode(json(claims))
    }

    static func hs256(_ claims: [String: Any], secret: [UInt8], header extra: [String: Any] = [:]) -> String {
        let input = unsigned(header: ["alg": "HS256", "typ": "JWT"].merging(extra) { $1 }, claims: claims)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
        return input + "." + Base64URL.encode(Array(mac))
    }

    static func rs256(_ claims: [String: Any], key: _RSA.Signing.PrivateKey, header extra: [String: Any] = [:]) -> String {
        let input = unsigned(header: ["alg": "RS256", "typ": "JWT"].merging(extra) { $1 }, claims: claims)
        let sig = try! key.signature(for: Array(input.utf8), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(Array(sig.rawRepresentation))
    }

    static func es256(_ claims: [String: Any], key: P256.Signing.PrivateKey, header extra: [String: Any] = [:]) -> String {
        let input = unsigned(header: ["alg": "ES256", "typ": "JWT"].merging(extra) { $1 }, claims: claims)
        let sig = try! key.signature(for: Array(input.utf8))
        return input + "." + Base64URL.encode(Array(sig.rawRepresentation))
    }
}

/// Keys made once per test run (RSA generation is slow).
enum Keys {
    static let secret = Array("0123456789abcdef0123456789abcdef-test".utf8)
    nonisolated(unsafe) static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    nonisolated(unsafe) static let p256 = P256.Signing.PrivateKey()
}

let now: Double = 1_800_000_000
func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
    ["exp": now + 600, "sub": "alice", "slots": ["news.*", "chat"]].merging(extra) { $1 }
}
