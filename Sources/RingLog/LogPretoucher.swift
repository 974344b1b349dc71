#if canImport(Glibc)
import Glibc
#endif

/// Makes the ring's pages resident a little ahead of the writer, from another process (the
/// supervisor), on the ring's first lap.
///
/// A page of the log that was never written is not in memory: the writer's first store to it
/// takes a page fault, and the kernel allocates and zeroes the page on the writer's time. At
/// about 64 bytes per event that is one fault per 60-odd publishes, measured at 0.2–0.4 µs of the
/// ingest's system time per publish while it fills a fresh 256 MiB ring. Populating the pages
/// ahead of the tail (`madvise(MADV_POPULATE_WRITE)` in the supervisor's own mapping of the
/// shared file) moves the allocation and zeroing off the single writer; the ingest's own touch of
/// such a page only maps it.
///
/// How far ahead follows the writer: twice what it wrote since the last call (one supervision
/// pass), at most `maxLookahead`. An idle log gets nothing populated, so its pages still become
/// resident only as events are written (at most two passes' worth sooner). Once a whole lap is
/// resident a call costs one load of the tail; a ring emptied by re-initialisation (its tail back
/// behind where this lap began) starts a new lap.
public struct LogPretoucher {
    /// The most the pages may run ahead of the tail (capped at the ring's capacity).
    public static let defaultMaxLookaheadBytes = 32 << 20
    /// `MADV_POPULATE_WRITE` (Linux 5.14): not in every libc's headers.
    static let populateWrite: Int32 = 23

    let region: LogRegion
    let maxLookahead: UInt64
    var state = State()
    var lastTail: UInt64?
    /// Whether the kernel refused (no `MADV_POPULATE_WRITE` before Linux 5.14): it is not asked again.
    public private(set) var unsupported = false

    /// Where the current lap began and how far it is populated (absolute ring positions).
    struct State: Equatable {
        var lapStart: UInt64 = 0
        var populatedEnd: UInt64 = 0
        var started = false
    }

    public init(region: LogRegion, maxLookaheadBytes: Int = defaultMaxLookaheadBytes) {
        self.region = region
        self.maxLookahead = UInt64(min(max(maxLookaheadBytes, 4096), region.geometry.capacityBytes))
    }

    /// The absolute positions to populate now, given the writer's `tail` and how far ahead of it
    /// pages should be; updates `state`. Pure.
    static func plan(tail: UInt64, capacity: UInt64, lookahead: UInt64, state: inout State) -> Range<UInt64>? {
        if !state.started || tail < state.lapStart {
            state = State(lapStart: tail, populatedEnd: tail, started: true)
        }
        let target = min(tail + lookahead, state.lapStart + capacity)
        let from = max(state.populatedEnd, tail)
        guard target > from else { return nil }
        state.populatedEnd = target
        return from..<target
    }

    /// Populates what is due for the writer's current tail; returns the bytes made resident.
    @discardableResult
    public mutating func advance() -> Int {
        guard !unsupported else { return 0 }
        let tail = region.loadAcquire(LogDescriptor.tailOffset)
        let written = lastTail.map { tail >= $0 ? tail - $0 : 0 } ?? 0
        lastTail = tail
        guard written > 0 else { return 0 }
        let lookahead = min(maxLookahead, 2 * written)
        guard let range = Self.plan(tail: tail, capacity: region.capacity, lookahead: lookahead, state: &state) else {
            return 0
        }
        var done = 0
        var position = range.lowerBound
        while position < range.upperBound {
            // Up to the ring's end, then from its start.
            let offset = position & region.mask
            let length = min(range.upperBound - position, region.capacity - offset)
            guard populate(offset: Int(offset), length: Int(length)) else {
                unsupported = true
                return done
            }
            done += Int(length)
            position += length
        }
        return done
    }

    /// `madvise` on whole pages around the ring bytes `offset ..< offset + length`.
    private func populate(offset: Int, length: Int) -> Bool {
        let page = 4096
        let start = Int(bitPattern: region.data + offset)
        let alignedStart = start & ~(page - 1)
        let alignedEnd = (start + length + page - 1) & ~(page - 1)
        guard let pointer = UnsafeMutableRawPointer(bitPattern: alignedStart) else { return false }
        return madvise(pointer, alignedEnd - alignedStart, Self.populateWrite) == 0
    }
}
