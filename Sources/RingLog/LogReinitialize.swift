import CRinggateSys
import Glibc

// MARK: CLUSTER
extension LogFile {
    /// Formats the log afresh in place, for a new cluster epoch (or after a diverged history):
    /// same geometry, same descriptor and mapping (file or memfd), empty, no gaps, with `epoch`
    /// and `upstreamCursor` (the stream id the new epoch's entries follow). The counter area
    /// (the processes' counters) and the header's `maxEventBytes` are kept.
    ///
    /// Call only while no other process maps the log's writer side and no reader runs (workers
    /// stopped, ingest dead). `fd` is the descriptor `region` is mapped from at offset 0
    /// (MAP_SHARED, as `map(fd:)` makes it), or -1 for memory without one (tests): with a
    /// descriptor, the directory, index and data are punched out of the file (`MADV_REMOVE`:
    /// a large log costs no writes and leaves no resident pages); without one, or where the
    /// file system cannot punch holes, they are zeroed.
    ///
    /// Crash-safe in this order: the body is emptied first (a log that still names old records
    /// cuts them at recovery, like any damage), then the header's positions and seqs, the
    /// epoch last (a log left with its old epoch is re-initialised again at the next start).
    public static func reinitialize(
        region: LogRegion, fd: Int32, epoch: UInt32, upstreamCursor: (milliseconds: UInt64, sequence: UInt64)
    ) throws {
        guard epoch != 0 else { throw LogFileError(message: "ring log: epoch must be non-zero") }
        let geometry = region.geometry
        let bodyOffset = geometry.directoryOffset
        let bodyLength = geometry.totalBytes - bodyOffset
        if fd < 0 || madvise(region.base + bodyOffset, bodyLength, MADV_REMOVE) != 0 {
            memset(region.base + bodyOffset, 0, bodyLength)
        } else if rg_fallocate(fd, UInt64(geometry.totalBytes)) != 0 {
            // The punched range is a hole now: reserve it again, or a full disk would end the
            // ingest with SIGBUS on a write through the mapping instead of this error.
            let code = errno
            if code != EOPNOTSUPP && code != ENODEV {   // a memfd has nothing to reserve
                throw LogFileError(message: "ring log: cannot reserve \(geometry.totalBytes) bytes again after re-initialising: \(String(cString: strerror(code)))")
            }
        }
        let base = region.base
        for offset in [LogDescriptor.tailIntentOffset, LogDescriptor.tailOffset, LogDescriptor.latestOffset,
                       LogDescriptor.oldestPositionOffset, LogDescriptor.oldestSeqOffset,
                       LogDescriptor.liveSlotsOffset, LogDescriptor.gapCountOffset] {
            rg_store_release_u64(base + offset, 0)
        }
        memset(base + LogDescriptor.gapTableOffset, 0, LogDescriptor.gapTableEntries * LogDescriptor.gapEntryLength)
        rg_store_release_u64(base + LogDescriptor.nextSeqOffset, 1)
        rg_store_release_u64(base + LogDescriptor.upstreamCursorOffset, upstreamCursor.milliseconds)
        rg_store_release_u64(base + LogDescriptor.upstreamCursorOffset + 8, upstreamCursor.sequence)
        rg_fence_release()
        base.storeU32(LogDescriptor.epochOffset, epoch)
        rg_fence_release()
    }
}
