/// Judges a connection's liveness by what the peer's kernel acknowledges, never by what the
/// peer's application says, and never from inside the send path.
///
/// Fed from the event loop's timer with the kernel's counters for the socket (`TCP_INFO`
/// bytes acknowledged and segments in flight, `SIOCOUTQ`). A client that is slow but drains is
/// never reaped: any progress restarts the clock. A client that acknowledges nothing for
/// `timeoutNanoseconds` while the kernel holds data for it is. Bytes only the server holds
/// (written but not yet handed to the kernel, a deferred send) are no stall of the peer's:
/// with the kernel's queue empty the peer has acknowledged everything it was given, and a loop
/// that ran late past the timeout must not close a healthy reader.
public struct SendProgress: Sendable, Equatable {
    public enum Verdict: Equatable, Sendable {
        case healthy
        /// Data waited for a full timeout and the peer's window stayed shut (it stopped reading).
        case sendTimeout
        /// Data waited for a full timeout with segments in flight and unacknowledged: the peer
        /// is gone without a FIN or RST (a vanished host, a dropped tunnel).
        case halfOpen
    }

    /// The socket's counters at one instant.
    public struct Sample: Sendable, Equatable {
        public var bytesAcked: UInt64
        public var unackedSegments: UInt32
        public var kernelQueuedBytes: Int
        public var established: Bool

        public init(bytesAcked: UInt64, unackedSegments: UInt32, kernelQueuedBytes: Int,
                    established: Bool = true) {
            self.bytesAcked = bytesAcked
            self.unackedSegments = unackedSegments
            self.kernelQueuedBytes = kernelQueuedBytes
            self.established = established
        }
    }

    public private(set) var lastBytesAcked: UInt64 = 0
    /// When the data that is waiting last saw progress; 0 while nothing waits.
    public private(set) var stalledSinceNanoseconds: UInt64 = 0

    public init() {}

    public mutating func observe(_ sample: Sample, nowNanoseconds now: UInt64,
                                 timeoutNanoseconds timeout: UInt64) -> Verdict {
        defer { lastBytesAcked = sample.bytesAcked }
        guard sample.kernelQueuedBytes > 0 else {
            stalledSinceNanoseconds = 0
            return .healthy
        }
        if stalledSinceNanoseconds == 0 || sample.bytesAcked != lastBytesAcked {
            stalledSinceNanoseconds = now
            return .healthy
        }
        guard now &- stalledSinceNanoseconds >= timeout else { return .healthy }
        if !sample.established || sample.unackedSegments > 0 { return .halfOpen }
        return .sendTimeout
    }
}
