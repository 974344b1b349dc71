import Auth
import Glibc
import HTTPServer
import RingLog
import WireProtocol

extension Worker {
    /// `--subscribe-auth jwt`: checks the request's token for `slot`. Returns the monotonic
    /// time the token stops being valid (exp + leeway), 0 when auth is off; nil after it
    /// answered 401 (no token, a bad or expired one) or 403 (the token does not name the slot).
    /// `slot` nil: the status page and its stream, which show every slot, so the token must
    /// allow every slot (`"slots":["*"]`).
    func authorize(_ conn: Int32, _ request: HTTPRequest, slot: String?) -> UInt64? {
        authorize(conn, request, slots: slot.map { [$0] })
    }

    /// A stream or pull of several slots: the token must allow every one.
    func authorize(_ conn: Int32, _ request: HTTPRequest, slots: [String]?) -> UInt64? {
        guard verifier != nil else { return 0 }
        let token = BearerToken.find(authorization: request.header("Authorization"),
                                     cookies: request.headerValues("Cookie"), cookieName: config.jwtCookie,
                                     query: request.queryValue("token"))
        let nowSeconds = JWTVerifier.nowSeconds()
        let failure: AuthFailure
        if let token {
            switch verifier!.verify(token.utf8, nowSeconds: nowSeconds) {
            case .success(let claims):
                let refused = slots?.first { !claims.allows(slot: $0.utf8) }
                let allowed = slots == nil ? claims.slots.contains { $0.isPrefix && $0.prefix.isEmpty } : refused == nil
                if allowed {
                    let remainingSeconds = max(0, claims.expiresAtSeconds + verifier!.leewaySeconds - nowSeconds)
                    let remaining = UInt64(min(remainingSeconds, 1e9) * 1e9)
                    return max(1, engine.nowNanoseconds &+ remaining)
                }
                failure = .forbidden(refused.map { "the token does not allow slot \($0)" }
                                     ?? "the status page shows every slot: it needs a token whose slots include \"*\"")
            case .failure(let f):
                failure = f
            }
        } else {
            failure = .missing
        }
        let counter: LogCounter
        switch failure {
        case .missing: counter = .authFailuresMissing
        case .invalid: counter = .authFailuresInvalid
        case .expired: counter = .authFailuresExpired
        case .forbidden: counter = .authFailuresForbidden
        }
        counters.add(counter)
        // RFC 6750 §3: the challenge says what was wrong (no error code when there was no token).
        let challenge: String
        switch failure {
        case .missing: challenge = #"Bearer realm="ringgate""#
        case .forbidden: challenge = #"Bearer realm="ringgate", error="insufficient_scope""#
        case .invalid, .expired:
            challenge = #"Bearer realm="ringgate", error="invalid_token", error_description=""# + failure.reason + #"""#
        }
        if case .forbidden(let why) = failure {
            engine.respondError(conn, status: 403, error: "forbidden", detail: why,
                                extraHeaders: [("WWW-Authenticate", challenge)] + corsHeaders)
        } else {
            engine.respondError(conn, status: 401, error: "unauthorized", detail: failure.detail,
                                extraHeaders: [("WWW-Authenticate", challenge)] + corsHeaders)
        }
        return nil
    }
}
