import CRinggateSys

/// The log's own limit on event data, kept in its header: a log written under a larger
/// `--max-event-bytes` keeps records that a smaller limit would not let through, and every
/// reader must still be able to copy, encode and send them whole.
extension LogRegion {
    /// Largest event data this log may hold; 0 only on a log just formatted, before the
    /// supervisor raised it to its `--max-event-bytes`.
    public var maxEventBytesAcquire: Int {
        Int(truncatingIfNeeded: min(loadAcquire(LogDescriptor.maxEventBytesOffset), UInt64(Int.max)))
    }

    /// Raises the recorded limit to `bytes`; never lowers it, since records written under the
    /// larger limit may still be in the ring. The supervisor calls it before starting children.
    public func raiseMaxEventBytes(_ bytes: Int) {
        precondition(bytes >= 0, "a limit cannot be negative")
        if UInt64(bytes) > loadAcquire(LogDescriptor.maxEventBytesOffset) {
            storeRelease(LogDescriptor.maxEventBytesOffset, UInt64(bytes))
        }
    }
}
