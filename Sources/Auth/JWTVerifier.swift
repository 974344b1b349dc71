import Foundation

/// Verifies compact JWS tokens (RFC 7519) against configured keys: the signature with
/// swift-crypto, then `exp` (required), `nbf`, `iat`, `iss` and `aud` with a leeway for clock
/// skew. Called once per admitted stream or history pull (and by the ingest once per new
/// publisher token, see `PublishAuthorizer`), so it may use Foundation's JSON.
public struct JWTVerifier: Sendable {
    public let keys: [JWTKey]
    /// The algorithms a token may name; each has a key (checked by `init`).
    public let algorithms: Set<JWTAlgorithm>
    public let audience: String?
    public let issuer: String?
    public let leewaySeconds: Double

    /// A longer token is refused before it is decoded (headers are bounded anyway).
    public static let tokenBytesMax = 8192

    public init(keys: [JWTKey], algorithms: [JWTAlgorithm]? = nil, audience: String? = nil,
                issuer: String? = nil, leewaySeconds: Double = 30) throws(JWTConfigError) {
        guard !keys.isEmpty else {
            throw JWTConfigError("--subscribe-auth jwt or --publish-auth jwt needs a key: --jwt-hs256-secret-file, --jwt-public-key-file or --jwks-file")
        }
        let available = Set(keys.map(\.algorithm))
        let allowed = Set(algorithms ?? Array(available))
        guard !allowed.isEmpty else { throw JWTConfigError("--jwt-algorithms: the list is empty") }
        for alg in allowed.sorted() where !available.contains(alg) {
            throw JWTConfigError("--jwt-algorithms allows \(alg.rawValue) but no configured key verifies it (HS256: --jwt-hs256-secret-file or an oct JWK; RS256/ES256: an RSA/P-256 public key)")
        }
        self.keys = keys
        self.algorithms = allowed
        self.audience = audience
        self.issuer = issuer
        self.leewaySeconds = leewaySeconds
    }

    /// The claims of `token` when it is valid at `nowSeconds` (seconds since the epoch).
    public func verify(_ token: String, nowSeconds: Double) -> Result<JWTClaims, AuthFailure> {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.tokenBytesMax else { return .failure(.invalid("longer than \(Self.tokenBytesMax) bytes")) }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return .failure(.invalid("expected three dot-separated parts, found \(parts.count)")) }
        guard let headerBytes = Base64URL.decode(parts[0]),
              let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
            return .failure(.invalid("the header is not base64url JSON"))
        }
        guard let algName = header["alg"] as? String else { return .failure(.invalid("the header has no alg")) }
        guard let alg = JWTAlgorithm(rawValue: algName), algorithms.contains(alg) else {
            return .failure(.invalid("alg \(algName) is not allowed"))
        }
        if header["crit"] != nil { return .failure(.invalid("crit header parameters are not supported")) }
        let kid = header["kid"] as? String
        if header["kid"] != nil && kid == nil { return .failure(.invalid("kid is not a string")) }
        // A token naming a kid is checked against that key only (and keys without a kid);
        // whatever the kid, only keys of the algorithm's own type are tried.
        let named = kid.map { k in keys.filter { $0.id == k } } ?? []
        let candidates = (named.isEmpty ? keys.filter { $0.id == nil || kid == nil } : named)
            .filter { $0.algorithm == alg }
        guard !candidates.isEmpty else {
            return .failure(.invalid(kid.map { "no \(alg.rawValue) key with kid \($0)" } ?? "no \(alg.rawValue) key"))
        }
        guard let signature = Base64URL.decode(parts[2]), !signature.isEmpty else {
            return .failure(.invalid("the signature is not base64url"))
        }
        let signingInput = Array(bytes[..<parts[1].endIndex])
        guard candidates.contains(where: { $0.verifies(signature: signature, signingInput: signingInput) }) else {
            return .failure(.invalid("bad signature"))
        }
        guard let payloadBytes = Base64URL.decode(parts[1]),
              let claims = try? JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any] else {
            return .failure(.invalid("the claims are not base64url JSON"))
        }
        return check(claims, nowSeconds: nowSeconds)
    }

    func check(_ claims: [String: Any], nowSeconds: Double) -> Result<JWTClaims, AuthFailure> {
        func number(_ name: String) -> Double?? {
            guard let value = claims[name] else { return .some(nil) }
            guard let n = value as? NSNumber else { return nil }
            let d = n.doubleValue
            return d.isFinite ? .some(d) : nil
        }
        guard let expOptional = number("exp") else { return .failure(.invalid("exp is not a number")) }
        guard let exp = expOptional else { return .failure(.invalid("exp is required")) }
        if nowSeconds >= exp + leewaySeconds { return .failure(.expired) }
        guard let nbf = number("nbf") else { return .failure(.invalid("nbf is not a number")) }
        if let nbf, nbf > nowSeconds + leewaySeconds { return .failure(.invalid("not valid before nbf")) }
        guard let iat = number("iat") else { return .failure(.invalid("iat is not a number")) }
        if let iat, iat > nowSeconds + leewaySeconds { return .failure(.invalid("iat is in the future")) }
        if let issuer {
            guard (claims["iss"] as? String) == issuer else { return .failure(.invalid("iss is not \(issuer)")) }
        }
        if let audience {
            let aud = claims["aud"]
            let ok = (aud as? String) == audience || ((aud as? [Any])?.contains { ($0 as? String) == audience } ?? false)
            guard ok else { return .failure(.invalid("aud does not include \(audience)")) }
        }
        var sub: String? = nil
        if let value = claims["sub"] {
            guard let s = value as? String else { return .failure(.invalid("sub is not a string")) }
            sub = s
        }
        func patterns(_ name: String) -> Result<[SlotPattern], AuthFailure> {
            guard let value = claims[name] else { return .success([]) }
            guard let list = value as? [Any] else { return .failure(.invalid("\(name) is not an array")) }
            var out: [SlotPattern] = []
            for item in list {
                guard let s = item as? String else { return .failure(.invalid("\(name) holds a non-string")) }
                out.append(SlotPattern(s))
            }
            return .success(out)
        }
        let slots: [SlotPattern]
        switch patterns("slots") {
        case .success(let list): slots = list
        case .failure(let f): return .failure(f)
        }
        let publish: [SlotPattern]
        switch patterns("publish") {
        case .success(let list): publish = list
        case .failure(let f): return .failure(f)
        }
        return .success(JWTClaims(expiresAtSeconds: exp, subject: sub, slots: slots, publish: publish))
    }
}

extension JWTVerifier {
    /// Seconds since the epoch, now: token times (`exp`, `nbf`, `iat`) are wall-clock times.
    public static func nowSeconds() -> Double {
        Date().timeIntervalSince1970
    }
}
