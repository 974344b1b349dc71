import Auth
import GatewayCore

extension GatewayConfig {
    /// Whether any listener checks JWTs: `--subscribe-auth jwt` or `--publish-auth jwt`.
    public var usesJWT: Bool { subscribeAuth == .jwt || publishAuth == .jwt }

    /// The verifier of the `--jwt-*` key files and claim checks. The CLI calls it once to fail
    /// at start-up (exit 64); each worker and the ingest again to serve.
    public func jwtVerifier() throws(JWTConfigError) -> JWTVerifier {
        var algorithms: [JWTAlgorithm]? = nil
        if let text = jwtAlgorithms {
            switch JWTAlgorithm.parseList(text) {
            case .success(let list): algorithms = list
            case .failure(let error): throw error
            }
        }
        return try JWTVerifier.load(hs256SecretFile: jwtHS256SecretFile, publicKeyFile: jwtPublicKeyFile,
                                    jwksFile: jwksFile, algorithms: algorithms, audience: jwtAudience,
                                    issuer: jwtIssuer, leewaySeconds: Double(jwtLeewayNanoseconds) / 1e9)
    }

    /// The verifier of `--subscribe-auth jwt`; nil when subscribers need no token.
    public func subscriberVerifier() throws(JWTConfigError) -> JWTVerifier? {
        subscribeAuth == .jwt ? try jwtVerifier() : nil
    }

    /// The verifier of `--publish-auth jwt`; nil when publishers need at most `--publish-token`.
    public func publisherVerifier() throws(JWTConfigError) -> JWTVerifier? {
        publishAuth == .jwt ? try jwtVerifier() : nil
    }
}
