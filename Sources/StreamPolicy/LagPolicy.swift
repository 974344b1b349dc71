/// What a subscriber's catch-up does with a window of its slot.
public enum CatchUpAction: Equatable, Sendable {
    /// Deliver the window's events.
    case deliver
    /// Send `event: reset` with this reason first, then deliver from the oldest retained event.
    case reset(reason: ResetReason)
    /// Lapped under the disconnect policy: send a best-effort `event: close` and close.
    case disconnect
}

public enum ResetReason: String, Sendable {
    /// The ring overwrote events after the subscriber's cursor.
    case lapped
    /// The subscriber's id is not from this log (wiped data dir, another cluster, a future id).
    case epoch
}

public enum LagPolicy: String, Sendable {
    case resync
    case disconnect

    /// Decides how catch-up treats a window.
    /// - Parameters:
    ///   - windowReset: the log reports events after the cursor were overwritten.
    ///   - gapAccepted: a reset was already sent for this gap (the window may start later).
    ///   - unknownID: the subscriber resumed with an id from another log.
    public func action(windowReset: Bool, gapAccepted: Bool, unknownID: Bool) -> CatchUpAction {
        if unknownID { return .reset(reason: .epoch) }
        guard windowReset && !gapAccepted else { return .deliver }
        switch self {
        case .resync: return .reset(reason: .lapped)
        case .disconnect: return .disconnect
        }
    }
}

/// Deadlines that are spread so that a fleet of clients does not act at once.
public enum Jitter {
    /// A stream's end: `lifetime` shortened by up to 10%, so reconnects spread out.
    public static func lifetimeDeadline(startNanoseconds: UInt64, lifetimeNanoseconds: UInt64,
                                        random: UInt64) -> UInt64 {
        let spread = lifetimeNanoseconds / 10
        let cut = spread == 0 ? 0 : random % (spread + 1)
        return startNanoseconds &+ (lifetimeNanoseconds - cut)
    }

    /// The SSE `retry:` value: 1000–2000 ms.
    public static func retryMilliseconds(random: UInt64) -> Int { 1000 + Int(random % 1001) }
}
