import CRinggateSys

/// A serving role's stop on SIGTERM: stop accepting, close what is idle, let what is in
/// flight finish, and end the loop when no connection is left or the grace period is over.
///
/// Pure state (the caller passes the clock), so the order of a stop is tested without a loop.
public struct RoleShutdown: Sendable {
    /// How long connections in flight may take to finish once the stop began.
    public let graceNanoseconds: UInt64
    public private(set) var isStopping = false
    /// The loop ends past this even with connections left (0 until the stop began).
    public private(set) var deadlineNanoseconds: UInt64 = 0

    public init(graceNanoseconds: UInt64) {
        self.graceNanoseconds = graceNanoseconds
    }

    /// Begins the stop at `nowNanoseconds`; false when it had begun already (a second
    /// SIGTERM does not move the deadline).
    public mutating func begin(nowNanoseconds: UInt64) -> Bool {
        guard !isStopping else { return false }
        isStopping = true
        deadlineNanoseconds = nowNanoseconds &+ graceNanoseconds
        return true
    }

    /// Whether the loop may end: stopping, and every connection gone or the deadline passed.
    public func isFinished(connectionCount: Int, nowNanoseconds: UInt64) -> Bool {
        isStopping && (connectionCount == 0 || nowNanoseconds > deadlineNanoseconds)
    }

    /// Whether a SIGTERM arrived since the last call. Takes (clears) every signal flag: a
    /// serving role acts on no other signal.
    public static func takeTermination() -> Bool {
        rg_signal_take() & Int32(RG_SIG_TERM) != 0
    }
}
