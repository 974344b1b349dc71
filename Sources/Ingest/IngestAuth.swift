import Auth
import Glibc
import HTTPServer
import RingLog
import WireProtocol

extension Ingest {
    /// A refused publisher: the answer's status, code, detail and challenge, counted by reason.
    struct AuthRefusal: Error {
        let status: Int
        let error: String
        let detail: String
        let challenge: String
    }

    /// The publisher's verdict on `request`, or the refusal to answer. `slot`: the slot of a
    /// single publish, checked against a JWT's `publish` claim here; a batch's slots are
    /// checked by `refusal(claims:items:)` once its body is parsed.
    func authorize(_ request: HTTPRequest, slot: UnsafeRawBufferPointer?) -> Result<PublishAuthorizer.Verdict, AuthRefusal> {
        if publishAuth.isOpen { return .success(.open) }
        let verdict = request.withHeader("Authorization") { publishAuth.check($0, nowSeconds: JWTVerifier.nowSeconds()) }
        switch verdict {
        case .open, .token:
            return .success(verdict)
        case .jwt(let claims):
            if let slot, !claims.allows(publishingTo: slot) {
                return .failure(forbidden("the token does not allow publishing to slot \(String(decoding: slot, as: UTF8.self))"))
            }
            return .success(verdict)
        case .refused(let failure):
            return .failure(refusal(failure))
        }
    }

    /// With a JWT: the first line of a batch whose slot its `publish` claim does not name.
    func refusal(claims verdict: PublishAuthorizer.Verdict, items: [BatchItem]) -> AuthRefusal? {
        guard case .jwt(let claims) = verdict,
              let i = items.firstIndex(where: { !claims.allows(publishingTo: $0.slot) }) else { return nil }
        return forbidden("line \(i + 1): the token does not allow publishing to slot \(String(decoding: items[i].slot, as: UTF8.self)); nothing was appended")
    }

    func forbidden(_ detail: String) -> AuthRefusal {
        counters.add(.publishAuthForbidden)
        return AuthRefusal(status: 403, error: "forbidden", detail: detail,
                           challenge: #"Bearer realm="ringgate", error="insufficient_scope""#)
    }

    func refusal(_ failure: AuthFailure) -> AuthRefusal {
        switch failure {
        case .missing: counters.add(.publishAuthMissing)
        case .invalid: counters.add(.publishAuthInvalid)
        case .expired: counters.add(.publishAuthExpired)
        case .forbidden: counters.add(.publishAuthForbidden)
        }
        // Without --publish-auth jwt the only token is --publish-token: the answer says no more.
        guard publishAuth.acceptsJWT else {
            return AuthRefusal(status: 401, error: "unauthorized", detail: "publishing needs Authorization: Bearer <token>",
                               challenge: "Bearer")
        }
        switch failure {
        case .missing:
            return AuthRefusal(status: 401, error: "unauthorized",
                               detail: "publishing needs Authorization: Bearer <token>, the publish token or a JWT with a publish claim",
                               challenge: #"Bearer realm="ringgate""#)
        case .forbidden(let why):
            return AuthRefusal(status: 403, error: "forbidden", detail: why,
                               challenge: #"Bearer realm="ringgate", error="insufficient_scope""#)
        case .invalid, .expired:
            return AuthRefusal(status: 401, error: "unauthorized", detail: failure.detail,
                               challenge: #"Bearer realm="ringgate", error="invalid_token", error_description=""# + failure.reason + #"""#)
        }
    }
}
