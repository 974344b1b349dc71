/// The claims of a verified token that Ringgate acts on.
public struct JWTClaims: Sendable, Equatable {
    /// `exp`, seconds since the epoch (required).
    public var expiresAtSeconds: Double
    public var subject: String?
    /// The `slots` claim; empty (or absent) allows no slot.
    public var slots: [SlotPattern]
    /// The `publish` claim (`--publish-auth jwt`): the slots the bearer may publish to; empty
    /// (or absent) allows none. Reading and publishing are separate grants.
    public var publish: [SlotPattern]

    public init(expiresAtSeconds: Double, subject: String? = nil, slots: [SlotPattern], publish: [SlotPattern] = []) {
        self.expiresAtSeconds = expiresAtSeconds
        self.subject = subject
        self.slots = slots
        self.publish = publish
    }

    /// Whether the token may read `slot`.
    public func allows(slot: some Collection<UInt8>) -> Bool {
        slots.contains { $0.matches(slot) }
    }

    /// Whether the token may publish to `slot`.
    public func allows(publishingTo slot: some Collection<UInt8>) -> Bool {
        publish.contains { $0.matches(slot) }
    }
}

/// Why a request was refused; `reason` is the `auth_failures_total` label.
public enum AuthFailure: Error, Equatable, Sendable {
    /// No token in the Authorization header, the cookie or `?token=`.
    case missing
    /// Not a well-formed, correctly signed token with valid claims; the detail says which check.
    case invalid(String)
    /// `exp` (plus the leeway) is past.
    case expired
    /// A valid token whose `slots` (or, publishing, `publish`) do not include the slot asked for.
    case forbidden(String)

    public var reason: String {
        switch self {
        case .missing: "missing"
        case .invalid: "invalid"
        case .expired: "expired"
        case .forbidden: "forbidden"
        }
    }

    public var detail: String {
        switch self {
        case .missing: "a bearer token is required (Authorization: Bearer, the token cookie, or ?token=)"
        case .invalid(let why): "invalid token: \(why)"
        case .expired: "the token has expired"
        case .forbidden(let why): why
        }
    }
}
