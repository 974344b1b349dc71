/// The ingest's check of a publisher's `Authorization` header: the static `--publish-token`
/// (compared in constant time) and, with `--publish-auth jwt`, a JWT whose `publish` claim the
/// caller then checks for every slot of the request (`JWTClaims.allows(publishingTo:)`).
///
/// The last verified token is remembered (`RememberingVerifier`), so a publisher that sends
/// the same token on every request costs one signature check, not one per publish.
public struct PublishAuthorizer {
    /// What a request's header allows.
    public enum Verdict: Equatable {
        /// Neither `--publish-token` nor `--publish-auth jwt`: anyone may publish.
        case open
        /// The static `--publish-token`: every slot.
        case token
        /// A valid JWT: the slots its `publish` claim allows.
        case jwt(JWTClaims)
        case refused(AuthFailure)
    }

    /// `Bearer <--publish-token>`, byte for byte.
    let expected: [UInt8]?
    var verifier: RememberingVerifier?

    public init(publishToken: String?, verifier: JWTVerifier?) {
        expected = publishToken.map { Array("Bearer \($0)".utf8) }
        self.verifier = verifier.map(RememberingVerifier.init)
    }

    public var isOpen: Bool { expected == nil && verifier == nil }
    public var acceptsJWT: Bool { verifier != nil }

    /// The verdict on a request whose `Authorization` value is `authorization` (nil: none).
    public mutating func check(_ authorization: UnsafeRawBufferPointer?, nowSeconds: Double) -> Verdict {
        if isOpen { return .open }
        guard let header = authorization else { return .refused(.missing) }
        if let expected, PublishAuthorizer.equalInConstantTime(header, expected) { return .token }
        guard verifier != nil else { return .refused(.invalid("not the publish token")) }
        guard let token = PublishAuthorizer.bearerToken(header) else { return .refused(.missing) }
        switch verifier!.verify(token, nowSeconds: nowSeconds) {
        case .success(let claims): return .jwt(claims)
        case .failure(let failure): return .refused(failure)
        }
    }

    /// Constant time in the given value's length, so a timing probe learns nothing but the length.
    static func equalInConstantTime(_ given: UnsafeRawBufferPointer, _ expected: [UInt8]) -> Bool {
        guard given.count == expected.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<given.count { diff |= given[i] ^ expected[i] }
        return diff == 0
    }

    /// The token of `Bearer <token>` (the scheme in any case, RFC 6750 §2.1), spaces trimmed;
    /// nil for another scheme or an empty token.
    static func bearerToken(_ header: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer.SubSequence? {
        var start = header.startIndex
        while start < header.endIndex, header[start] == UInt8(ascii: " ") { start += 1 }
        let scheme = Array("bearer ".utf8)
        guard header.endIndex - start > scheme.count else { return nil }
        for (i, c) in scheme.enumerated() where header[start + i] | 0x20 != c { return nil }
        var lower = start + scheme.count
        var upper = header.endIndex
        while lower < upper, header[lower] == UInt8(ascii: " ") { lower += 1 }
        while upper > lower, header[upper - 1] == UInt8(ascii: " ") { upper -= 1 }
        return lower < upper ? header[lower..<upper] : nil
    }
}

/// A verifier that remembers the last token it accepted with its claims: a client that sends
/// the same token again (a publisher on every request, a page pulling history) costs a byte
/// comparison instead of a signature check. A remembered token is still refused once its `exp`
/// (plus the leeway) is past; `nbf` and `iat` only ever become valid. One entry, not a table: a
/// second token replaces the first.
public struct RememberingVerifier {
    public let verifier: JWTVerifier
    var rememberedToken: [UInt8] = []
    var rememberedClaims: JWTClaims? = nil

    public init(_ verifier: JWTVerifier) {
        self.verifier = verifier
    }

    public var leewaySeconds: Double { verifier.leewaySeconds }

    public mutating func verify(_ token: some Collection<UInt8>, nowSeconds: Double) -> Result<JWTClaims, AuthFailure> {
        if let claims = rememberedClaims, token.elementsEqual(rememberedToken) {
            if nowSeconds >= claims.expiresAtSeconds + verifier.leewaySeconds {
                rememberedClaims = nil
                rememberedToken = []
                return .failure(.expired)
            }
            return .success(claims)
        }
        let result = verifier.verify(String(decoding: token, as: UTF8.self), nowSeconds: nowSeconds)
        if case .success(let claims) = result {
            rememberedToken = Array(token)
            rememberedClaims = claims
        }
        return result
    }
}
