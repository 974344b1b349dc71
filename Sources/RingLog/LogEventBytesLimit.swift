import CRinggateSys

/// The log's own limit on event data, kept in its header: a log written under a larger
/// `--max-event-bytes` keeps records that a smaller limit would not let through, and every
/// reader must still be able to copy, encode and send them whole.
extension LogRegion {
    /// Largest event data this log may hold; 0 when nobody recorded one (a log formatted before
    /// the field existed).
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

extension LogReader {
    /// The largest event data among the retained records, walked from the oldest: the limit of
    /// a log formatted before its header kept one. O(retained bytes); for start-up only.
    public func largestRetainedEventBytes() -> Int {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: maxRecordBytes, alignment: 8)
        defer { scratch.deallocate() }
        var largest = 0
        var lastSeq: UInt64 = 0
        var position = oldestPositionAcquire()
        while position < tailAcquire() {
            switch copyRecord(at: position, into: scratch) {
            case .record(let view):
                largest = max(largest, view.data.count)
                lastSeq = view.seq
                position = view.nextPosition
            case .padding(let next):
                position = next
            case .notYetWritten:
                return largest
            case .lapped:
                position = max(position + 8, oldestPositionAcquire())   // a writer is running: go on from its oldest
            case .damaged(let damaged):
                position = resumePoint(after: damaged, lastSeq: lastSeq).position
            }
        }
        return largest
    }
}
