import CRinggateSys
import Glibc

/// A reader of a log. Never locks, never blocks the writer; any number per process.
///
/// A record at `position` is intact while `tailIntent <= position + capacity` (the writer has
/// not claimed its first byte for the next lap). Every read checks that before and after
/// copying (with an acquire fence in between); a failed check is reported as `.lapped`, never as
/// a torn copy. Every length read from shared memory is bounds-checked before use; bytes that are
/// still intact but do not form a valid record are reported as `.damaged`, which is not a lap:
/// reading them again gives the same answer, so a caller must step past them.
public struct LogReader: @unchecked Sendable {
    typealias R = LogDescriptor.Record

    let region: LogRegion
    let directory: SlotDirectory

    public init(region: LogRegion) {
        self.region = region
        self.directory = SlotDirectory(region: region)
    }

    public var epoch: UInt32 { region.epoch }

    /// Scratch passed to `copyRecord` must hold at least this many bytes.
    public var maxRecordBytes: Int { region.geometry.maxRecordBytes }

    public func tailAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.tailOffset) }
    public func tailIntentAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.tailIntentOffset) }
    /// Position of the newest record (meaningful once `headSeqAcquire() > 0`).
    public func latestAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.latestOffset) }

    /// Seq of the newest event; 0 when empty.
    public func headSeqAcquire() -> UInt64 {
        let next = region.loadAcquire(LogDescriptor.nextSeqOffset)
        return next == 0 ? 0 : next - 1
    }

    /// Oldest retained seq, log-wide; 0 when empty.
    public func oldestSeqAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.oldestSeqOffset) }

    /// Position of the oldest retained record (a record boundary).
    public func oldestPositionAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.oldestPositionOffset) }

    // MARK: Copying records

    public enum CopyResult {
        case record(RecordView)
        case padding(nextPosition: UInt64)
        case notYetWritten
        case lapped
        /// Intact (not overwritten) but not a valid record: damaged in place, or `position` is
        /// not a record boundary. Its length cannot be trusted; see `resumePoint(after:lastSeq:)`.
        case damaged(DamagedRecord)
    }

    /// What is known of a damaged record.
    public struct DamagedRecord: Equatable, Sendable {
        public let position: UInt64
        /// The event's seq and slot ordinal when its header names this position and the seq
        /// index agrees (the header is sound, a length or the payload is not); nil otherwise.
        public let seq: UInt64?
        public let slotOrdinal: UInt64?

        public init(position: UInt64, seq: UInt64?, slotOrdinal: UInt64?) {
            self.position = position
            self.seq = seq
            self.slotOrdinal = slotOrdinal
        }
    }

    /// An event copied into caller scratch; `name`, `type`, `data` are byte ranges in scratch.
    public struct RecordView {
        public let position: UInt64
        public let nextPosition: UInt64
        public let seq: UInt64
        public let slotIndex: UInt32
        public let slotGeneration: UInt32
        public let slotOrdinal: UInt64
        public let prevPosition: UInt64
        public let prevSeq: UInt64
        public let timeMilliseconds: UInt64
        public let name: Range<Int>
        public let type: Range<Int>
        public let data: Range<Int>
    }

    @inline(__always)
    func isIntact(_ position: UInt64) -> Bool {
        tailIntentAcquire() <= position &+ region.capacity
    }

    /// Copies the record at `position` (a record boundary: from `tail`, `latest`, `oldest`,
    /// `nextPosition`, the seq index or a record link) into `scratch` and validates it.
    /// `scratch.count` must be at least `maxRecordBytes`.
    public func copyRecord(at position: UInt64, into scratch: UnsafeMutableRawBufferPointer) -> CopyResult {
        copyRecord(at: position, into: scratch, beforeRecheck: nil)
    }

    /// `beforeRecheck` is a test hook run between the copy and the final intact check.
    func copyRecord(
        at position: UInt64, into scratch: UnsafeMutableRawBufferPointer, beforeRecheck: (() -> Void)?
    ) -> CopyResult {
        precondition(scratch.count >= R.headerLength, "scratch must hold at least a record header")
        guard position < tailAcquire() else { return .notYetWritten }
        guard position & 7 == 0, isIntact(position) else { return .lapped }
        let remaining = region.capacity - (position & region.mask)
        if remaining < UInt64(R.headerLength) {
            return .padding(nextPosition: position + remaining)
        }
        let source = region.recordPointer(position)
        let copy = scratch.baseAddress!
        memcpy(copy, source, R.headerLength)
        rg_fence_acquire()
        guard isIntact(position) else { return .lapped }

        // From here on the bytes are this lap's (the check above passed after the copy): a
        // failed validation is damage, not a lap.
        let alignedLength: UInt64
        switch region.framing(of: copy, at: position, remaining: remaining) {
        case .invalid:
            return .damaged(damaged(position, copy))
        case .padding(let aligned):
            return .padding(nextPosition: position + aligned)
        case .event(let aligned):
            alignedLength = aligned
        }
        let length = Int(copy.loadU32(R.lengthOffset))
        guard length <= scratch.count else { return .damaged(damaged(position, copy)) }
        memcpy(copy + R.headerLength, source + R.headerLength, length - R.headerLength)
        beforeRecheck?()
        rg_fence_acquire()
        guard isIntact(position) else { return .lapped }
        // Intact after the copy, so a crc mismatch is the record's own damage (a power loss
        // that kept a stale page, a bit flip), never a torn copy.
        guard copy.loadU32(R.crcOffset) == LogWriter.crc(copy, length: length) else {
            return .damaged(damaged(position, copy))
        }
        let nameLength = Int(copy.loadU8(R.nameLengthOffset))
        let typeLength = Int(copy.loadU8(R.typeLengthOffset))

        let nameStart = R.headerLength
        let typeStart = nameStart + nameLength
        let dataStart = typeStart + typeLength
        return .record(RecordView(
            position: position,
            nextPosition: position + alignedLength,
            seq: copy.loadU64(R.seqOffset),
            slotIndex: copy.loadU32(R.slotIndexOffset),
            slotGeneration: copy.loadU32(R.slotGenerationOffset),
            slotOrdinal: copy.loadU64(R.slotOrdinalOffset),
            prevPosition: copy.loadU64(R.prevPositionOffset),
            prevSeq: copy.loadU64(R.prevSeqOffset),
            timeMilliseconds: copy.loadU64(R.timeMillisecondsOffset),
            name: nameStart..<typeStart,
            type: typeStart..<dataStart,
            data: dataStart..<length))
    }

    /// What the header copy at `copy` says about the damaged record at `position`.
    private func damaged(_ position: UInt64, _ copy: UnsafeMutableRawPointer) -> DamagedRecord {
        let seq = copy.loadU64(R.seqOffset)
        guard copy.loadU16(R.kindOffset) == R.kindEvent, copy.loadU64(R.positionOffset) == position,
              seq != 0, seq <= headSeqAcquire(), rg_load_acquire_u64(region.indexPointer(seq)) == position
        else { return DamagedRecord(position: position, seq: nil, slotOrdinal: nil) }
        return DamagedRecord(position: position, seq: seq, slotOrdinal: copy.loadU64(R.slotOrdinalOffset))
    }

    /// Where a sequential reader goes on after the damaged record `damaged`, whose own length
    /// cannot be trusted: the first retained event after it, found through the seq index from
    /// `lastSeq` (the last seq the reader handled), or `tail` when none has been committed.
    /// `throughSeq`: every event before `position` has a seq at most this.
    ///
    /// O(events between `lastSeq` and the next intact record); called only on damage.
    public func resumePoint(after damaged: DamagedRecord, lastSeq: UInt64) -> (position: UInt64, throughSeq: UInt64) {
        // Tail before head (the writer stores them the other way round): every event before
        // `tail` has a seq <= `head`.
        let tail = tailAcquire()
        let head = headSeqAcquire()
        let oldest = oldestSeqAcquire()
        var seq = max(lastSeq, damaged.seq ?? 0, oldest == 0 ? 0 : oldest - 1)
        while seq < head {
            seq += 1
            if let next = position(ofSeq: seq), next > damaged.position { return (next, seq - 1) }
        }
        // Nothing intact after it yet: `tail` (> damaged.position, which copyRecord saw below
        // the tail) is the next boundary.
        return (tail, head)
    }

    // MARK: Headers and links

    /// The fields of an event header that searches need.
    struct Header {
        var position: UInt64
        var seq: UInt64
        var slotIndex: UInt32
        var slotGeneration: UInt32
        var ordinal: UInt64
        var prevPosition: UInt64
        var prevSeq: UInt64
        var jumpPosition: UInt64
        var jumpOrdinal: UInt64
    }

    /// Copies and validates the event header at `position`; when `slot` is given, also checks
    /// the slot index, generation and ordinal. nil when not retained, not written or invalid.
    func readHeader(
        _ position: UInt64, slot: (index: UInt32, generation: UInt32, ordinal: UInt64)? = nil
    ) -> Header? {
        // No check against `tail`: index entries, directory entries and links are all published
        // after the bytes they point to, so a validated header is complete even if `tail` has
        // not moved past it yet.
        guard position != R.noPosition, position & 7 == 0, isIntact(position),
              region.capacity - (position & region.mask) >= UInt64(R.headerLength)
        else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: R.headerLength, alignment: 8) { buffer -> Header? in
            let copy = buffer.baseAddress!
            memcpy(copy, region.recordPointer(position), R.headerLength)
            rg_fence_acquire()
            guard isIntact(position),
                  copy.loadU16(R.kindOffset) == R.kindEvent,
                  copy.loadU64(R.positionOffset) == position
            else { return nil }
            let header = Header(
                position: position,
                seq: copy.loadU64(R.seqOffset),
                slotIndex: copy.loadU32(R.slotIndexOffset),
                slotGeneration: copy.loadU32(R.slotGenerationOffset),
                ordinal: copy.loadU64(R.slotOrdinalOffset),
                prevPosition: copy.loadU64(R.prevPositionOffset),
                prevSeq: copy.loadU64(R.prevSeqOffset),
                jumpPosition: copy.loadU64(R.jumpPositionOffset),
                jumpOrdinal: copy.loadU64(R.jumpOrdinalOffset))
            if let slot {
                guard header.slotIndex == slot.index, header.slotGeneration == slot.generation,
                      header.ordinal == slot.ordinal
                else { return nil }
            }
            return header
        }
    }

    /// The slot's previous record of `header`, validated (slot, ordinal, seq); nil when gone.
    func readPrevious(_ header: Header) -> Header? {
        guard header.prevPosition != R.noPosition, header.ordinal > 1,
              let previous = readHeader(
                header.prevPosition, slot: (header.slotIndex, header.slotGeneration, header.ordinal - 1)),
              previous.seq == header.prevSeq, previous.seq < header.seq
        else { return nil }
        return previous
    }

    /// From `start` (which satisfies `accept`), the oldest record of its slot that satisfies
    /// `accept`, where `accept` holds for a newest run of the slot's records (monotone).
    /// Skew-binary search: take the jump link when it lands on an accepted, intact record, else
    /// step to the previous record. O(log n) links; degraded links only make it slower.
    /// `olderGone` says the walk stopped because the previous record was not retained.
    func descend(from start: Header, hops: inout Int, accept: (Header) -> Bool) -> (header: Header, olderGone: Bool) {
        var current = start
        while true {
            if current.jumpPosition != R.noPosition, current.jumpOrdinal + 1 < current.ordinal {
                hops += 1
                if let jump = readHeader(
                    current.jumpPosition, slot: (current.slotIndex, current.slotGeneration, current.jumpOrdinal)),
                   jump.seq < current.seq, accept(jump) {
                    current = jump
                    continue
                }
            }
            if current.prevPosition == R.noPosition || current.ordinal <= 1 { return (current, false) }
            hops += 1
            guard let previous = readPrevious(current) else { return (current, true) }
            guard accept(previous) else { return (current, false) }
            current = previous
        }
    }

    // MARK: Seq index

    /// Position of event `seq` via the seq index, validated (retained and holding that seq).
    public func position(ofSeq seq: UInt64) -> UInt64? {
        guard seq != 0, seq <= headSeqAcquire() else { return nil }
        let position = rg_load_acquire_u64(region.indexPointer(seq))
        guard position < tailAcquire(), let header = readHeader(position), header.seq == seq else { return nil }
        return position
    }

    // MARK: Slots

    public struct SlotInfo: Equatable {
        public let index: UInt32
        public let generation: UInt32
        public let newestPosition: UInt64
        public let newestSeq: UInt64
        public let count: UInt64
    }

    /// The directory entry of slot `name`, read under its seqlock; nil when unknown.
    public func findSlot(_ name: UnsafeRawBufferPointer) -> SlotInfo? {
        guard let (index, snapshot) = directory.findAcquire(name) else { return nil }
        return SlotInfo(
            index: UInt32(index), generation: snapshot.generation, newestPosition: snapshot.newestPosition,
            newestSeq: snapshot.newestSeq, count: snapshot.count)
    }
}

// MARK: STATUS PAGE: the slots with the newest events

extension LogReader {
    /// A live slot as the status page shows it: its name, newest seq and event count.
    public struct SlotSummary: Equatable, Sendable {
        public let name: String
        public let newestSeq: UInt64
        public let count: UInt64
    }

    /// Up to `limit` live slots whose newest event is still retained, newest first. One pass over
    /// the directory (O(entries), read under each entry's seqlock; a torn entry is skipped).
    public func newestSlots(limit: Int) -> [SlotSummary] {
        guard limit > 0 else { return [] }
        typealias D = LogDescriptor.Directory
        let oldest = oldestSeqAcquire()
        var found: [(index: Int, seq: UInt64, count: UInt64)] = []
        found.reserveCapacity(limit + 1)
        for index in 0..<directory.entryCount {
            var ignored = false
            guard let snapshot = directory.snapshotAcquire(index, name: nil, nameMatches: &ignored),
                  snapshot.state == D.stateLive, snapshot.newestSeq >= oldest, snapshot.newestSeq > 0 else { continue }
            if found.count == limit, let last = found.last, last.seq >= snapshot.newestSeq { continue }
            let at = found.firstIndex { $0.seq < snapshot.newestSeq } ?? found.count
            found.insert((index, snapshot.newestSeq, snapshot.count), at: at)
            if found.count > limit { found.removeLast() }
        }
        return found.compactMap { f in
            guard let (name, snapshot) = directory.nameAcquire(f.index) else { return nil }
            return SlotSummary(name: String(decoding: name, as: UTF8.self), newestSeq: snapshot.newestSeq, count: snapshot.count)
        }
    }
}
