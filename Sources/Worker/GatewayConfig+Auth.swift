import Auth
import GatewayCore

extension GatewayConfig {
    /// The verifier of `--subscribe-auth jwt`, from the key files; nil when auth is off.
    /// The CLI calls it once to fail at start-up (exit 64), each worker again to serve.
    public func subscriberVerifier() throws(JWTConfigError) -> JWTVerifier? {
        guard subscribeAuth == .jwt else { return nil }
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
}
