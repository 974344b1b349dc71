import CRinggateSys
import Glibc

/// The single writer of a log. Exactly one per log, in one process; it never waits for readers.
///
/// Append order (what readers rely on): `oldestPosition`/`oldestSeq`, then `tailIntent`
/// (release, covering any wrap padding and the new record) before any byte is overwritten;
/// padding; record header + payload + crc; seq index; slot directory (seqlock). Then, once per
/// batch (`commit`): `latest`, `nextSeq`, `tail` (release). Readers stop at `tail`, so the
/// records of a batch become visible together; a batch that never committed (the writer died)
/// is rolled back by the next writer's recovery scan.
public struct LogWriter {
    public enum AppendError: Error, Equatable {
        case slotDirectoryFull
        case recordTooLarge
        /// Cluster mode: an explicit seq at or below the head (nothing was changed).
        case seqNotAhead
    }

    typealias R = LogDescriptor.Record

    let region: LogRegion
    let directory: SlotDirectory
    /// Staged tail: ahead of the published `tail` while a batch is open.
    var tailPosition: UInt64
    var nextSeq: UInt64
    var oldestPosition: UInt64
    var oldestSeq: UInt64
    var liveSlots: Int
    var latestPosition: UInt64
    /// State at the last commit, for `rollback`.
    var committed: (tail: UInt64, nextSeq: UInt64, liveSlots: Int, latest: UInt64)
    /// Directory entries as they were before the open batch first touched them (batches only).
    private let undo = DirectoryUndo()
    private var recordingUndo = false
    /// What the recovery scan found when this writer took over the log.
    public internal(set) var recovery = LogRecovery()
    // MARK: CLUSTER
    /// Cluster mode: seqs of a rolled-back batch come back from the stream, so recovery does
    /// not move `nextSeq` past them.
    let reuseRolledBackSeqs: Bool
    /// Gaps and the upstream cursor staged for the next commit (see LogWriter+Cluster.swift).
    var staged = StagedHeader()

    /// Takes over a log: runs the recovery scan (see `LogRecovery`) unless the log never held
    /// a byte, so that a fresh log's pages stay untouched. `file`, the descriptor the region is
    /// mapped from (offset 0), lets the scan read the slot directory without faulting it in.
    /// `progress` is called when the scan starts and after every `progressStrideBytes` it covers
    /// (records, then directory), so that a long scan of a large log is seen to be alive.
    /// `reuseRolledBackSeqs` (cluster mode): see `LogRecovery.seqsSkippedPastTail`.
    public init(region: LogRegion, file: Int32 = -1, progress: (() -> Void)? = nil,
                progressStrideBytes: UInt64 = 64 << 20, reuseRolledBackSeqs: Bool = false) {
        self.region = region
        self.reuseRolledBackSeqs = reuseRolledBackSeqs
        self.directory = SlotDirectory(region: region)
        tailPosition = region.loadAcquire(LogDescriptor.tailOffset)
        nextSeq = max(1, region.loadAcquire(LogDescriptor.nextSeqOffset))
        oldestPosition = region.loadAcquire(LogDescriptor.oldestPositionOffset)
        oldestSeq = region.loadAcquire(LogDescriptor.oldestSeqOffset)
        latestPosition = region.loadAcquire(LogDescriptor.latestOffset)
        liveSlots = Int(region.loadAcquire(LogDescriptor.liveSlotsOffset))
        committed = (tailPosition, nextSeq, liveSlots, latestPosition)
        if tailPosition > 0 || region.loadAcquire(LogDescriptor.tailIntentOffset) > 0 {
            recover(file: file, progress: progress, progressStrideBytes: progressStrideBytes)
            committed = (tailPosition, nextSeq, liveSlots, latestPosition)
        }
    }

    /// Seq of the newest appended event; 0 when the log is empty.
    public var headSeq: UInt64 { nextSeq - 1 }

    /// Unaligned length of a record: header + slot name + type + data.
    public static func recordLength(slotBytes: Int, typeBytes: Int, dataBytes: Int) -> Int {
        R.headerLength + slotBytes + typeBytes + dataBytes
    }

    private func fits(slotBytes: Int, typeBytes: Int, dataBytes: Int) -> Bool {
        guard dataBytes >= 0, dataBytes <= region.geometry.maxRecordBytes else { return false }
        let length = Self.recordLength(slotBytes: slotBytes, typeBytes: typeBytes, dataBytes: dataBytes)
        return LogDescriptor.alignUp(length, R.alignment) <= region.geometry.maxRecordBytes
    }

    /// Appends one event, makes it visible (`commit`) and returns its seq.
    ///
    /// `slot` must be 1...128 bytes and `type` at most 255 bytes (the caller validates user
    /// input first). Throws `.recordTooLarge` above `maxRecordBytes` (capacity / 4) and
    /// `.slotDirectoryFull` when the slot is new and `maxSlots` slots still have retained records;
    /// a throw changes nothing readers can see.
    @discardableResult
    public mutating func append(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64
    ) throws(AppendError) -> UInt64 {
        let seq = try stage(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds)
        commit()
        return seq
    }

    /// Starts a batch: `stage` its lines, then `commit` (all visible at once) or `rollback`.
    /// Check the batch with `LogBatchCheck` first, so that no line fails half-way.
    public mutating func beginBatch() {
        precondition(tailPosition == committed.tail, "a batch is already open")
        undo.reset()
        recordingUndo = true
    }

    /// Makes every staged record visible: `latest`, `nextSeq`, `tail` (release), once.
    public mutating func commit() {
        recordingUndo = false
        undo.reset()
        guard tailPosition != committed.tail || staged.any else { return }
        if staged.any { publishStaged() }
        rg_store_release_u64(region.field(LogDescriptor.liveSlotsOffset), UInt64(liveSlots))
        region.storeRelease(LogDescriptor.latestOffset, latestPosition)
        region.storeRelease(LogDescriptor.nextSeqOffset, nextSeq)
        region.storeRelease(LogDescriptor.tailOffset, tailPosition)
        committed = (tailPosition, nextSeq, liveSlots, latestPosition)
    }

    /// Drops the staged records of the open batch: the directory entries it touched get their
    /// old contents back, its bytes become padding, seqs are not used up. Readers never saw it.
    public mutating func rollback() {
        precondition(recordingUndo, "rollback needs beginBatch")
        recordingUndo = false
        undo.restore(into: directory)
        undo.reset()
        staged.clear()
        let end = tailPosition
        coverWithPadding(from: committed.tail, to: end)
        nextSeq = committed.nextSeq
        liveSlots = committed.liveSlots
        latestPosition = committed.latest
        if oldestPosition >= committed.tail {
            // The batch overwrote everything older: nothing is retained.
            oldestPosition = end
            oldestSeq = 0
            region.storeRelease(LogDescriptor.oldestPositionOffset, oldestPosition)
            region.storeRelease(LogDescriptor.oldestSeqOffset, oldestSeq)
        }
        rg_store_release_u64(region.field(LogDescriptor.liveSlotsOffset), UInt64(liveSlots))
        region.storeRelease(LogDescriptor.tailOffset, end)
        committed = (end, nextSeq, liveSlots, latestPosition)
    }

    /// Writes one event without making it visible (`commit` does) and returns its seq.
    @discardableResult
    public mutating func stage(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64
    ) throws(AppendError) -> UInt64 {
        try stageRecord(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds, seq: nextSeq)
    }

    /// The record of `stage`, under `seq` (>= `nextSeq`, checked by the caller).
    @inline(__always)
    mutating func stageRecord(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64, seq: UInt64
    ) throws(AppendError) -> UInt64 {
        precondition(slot.count >= 1 && slot.count <= R.maxNameBytes, "slot name must be 1...128 bytes")
        precondition(type.count <= R.maxTypeBytes, "type must be at most 255 bytes")
        guard fits(slotBytes: slot.count, typeBytes: type.count, dataBytes: data.count) else {
            throw .recordTooLarge
        }
        let undo: DirectoryUndo? = recordingUndo ? self.undo : nil
        guard let resolution = directory.resolveForAppend(
            slot, oldestPosition: oldestPosition, liveSlots: &liveSlots, undo: undo)
        else { throw .slotDirectoryFull }

        let length = Self.recordLength(slotBytes: slot.count, typeBytes: type.count, dataBytes: data.count)
        let alignedLength = UInt64(LogDescriptor.alignUp(length, R.alignment))
        let capacity = region.capacity
        let offset = tailPosition & region.mask
        let paddingLength = offset + alignedLength > capacity ? capacity - offset : 0
        let position = tailPosition + paddingLength
        let end = position + alignedLength

        advanceOldest(toCover: end, newPosition: position, newSeq: seq)

        // Links to the slot's previous record and the skew-binary jump.
        let ordinal = resolution.count + 1
        var prevPosition = R.noPosition
        var prevSeq: UInt64 = 0
        var jumpPosition = R.noPosition
        var jumpOrdinal: UInt64 = 0
        if resolution.count > 0 {
            prevPosition = resolution.newestPosition
            prevSeq = resolution.newestSeq
            jumpPosition = prevPosition
            jumpOrdinal = resolution.count
            if prevPosition >= oldestPosition {
                let p = region.recordPointer(prevPosition)
                let pJumpPosition = p.loadU64(R.jumpPositionOffset)
                let pJumpOrdinal = p.loadU64(R.jumpOrdinalOffset)
                if pJumpPosition != R.noPosition, pJumpPosition >= oldestPosition {
                    let j = region.recordPointer(pJumpPosition)
                    let jJumpPosition = j.loadU64(R.jumpPositionOffset)
                    let jJumpOrdinal = j.loadU64(R.jumpOrdinalOffset)
                    if jJumpPosition != R.noPosition,
                       resolution.count &- pJumpOrdinal == pJumpOrdinal &- jJumpOrdinal {
                        jumpPosition = jJumpPosition
                        jumpOrdinal = jJumpOrdinal
                    }
                }
            }
        }

        // Claim the bytes before touching them.
        region.storeRelease(LogDescriptor.tailIntentOffset, end)
        rg_fence_release()
        if paddingLength > 0 { writePadding(at: tailPosition, length: paddingLength) }

        let record = region.recordPointer(position)
        record.storeU32(R.lengthOffset, UInt32(length))
        record.storeU16(R.kindOffset, R.kindEvent)
        record.storeU8(R.nameLengthOffset, UInt8(slot.count))
        record.storeU8(R.typeLengthOffset, UInt8(type.count))
        record.storeU64(R.positionOffset, position)
        record.storeU64(R.seqOffset, seq)
        record.storeU32(R.slotIndexOffset, UInt32(resolution.index))
        record.storeU32(R.slotGenerationOffset, resolution.generation)
        record.storeU64(R.slotOrdinalOffset, ordinal)
        record.storeU64(R.prevPositionOffset, prevPosition)
        record.storeU64(R.prevSeqOffset, prevSeq)
        record.storeU64(R.jumpPositionOffset, jumpPosition)
        record.storeU64(R.jumpOrdinalOffset, jumpOrdinal)
        record.storeU64(R.timeMillisecondsOffset, timeMilliseconds)
        record.storeU32(R.dataLengthOffset, UInt32(data.count))
        record.storeU32(R.crcOffset, 0)
        var cursor = R.headerLength
        memcpy(record + cursor, slot.baseAddress!, slot.count)
        cursor += slot.count
        if type.count > 0 { memcpy(record + cursor, type.baseAddress!, type.count) }
        cursor += type.count
        if data.count > 0 { memcpy(record + cursor, data.baseAddress!, data.count) }
        cursor += data.count
        if Int(alignedLength) > cursor { memset(record + cursor, 0, Int(alignedLength) - cursor) }
        record.storeU32(R.crcOffset, Self.crc(record, length: length))

        rg_store_release_u64(region.indexPointer(seq), position)
        undo?.remember(resolution.index, in: directory)
        directory.publish(resolution, name: slot, newestPosition: position, newestSeq: seq, count: ordinal)
        if resolution.isNew {
            liveSlots += 1
        }

        nextSeq = seq + 1
        tailPosition = end
        latestPosition = position
        return seq
    }

    /// CRC32C of a record's `length` bytes at `record`, leaving out its own crc field.
    static func crc(_ record: UnsafeRawPointer, length: Int) -> UInt32 {
        let head = rg_crc32c_update(0, record, R.crcOffset)
        return rg_crc32c_update(head, record + R.headerLength, length - R.headerLength)
    }

    // MARK: Internals

    /// Moves `oldestPosition` past every record the bytes up to `end` will overwrite, walking
    /// the records (amortised O(1) per append), and publishes it.
    mutating func advanceOldest(toCover end: UInt64, newPosition: UInt64, newSeq: UInt64) {
        let capacity = region.capacity
        let limit = end > capacity ? end - capacity : 0
        while oldestPosition < limit && oldestPosition < tailPosition {
            let remaining = capacity - (oldestPosition & region.mask)
            if remaining < UInt64(R.headerLength) {
                oldestPosition += remaining
                continue
            }
            let record = region.recordPointer(oldestPosition)
            switch region.framing(of: record, at: oldestPosition, remaining: remaining) {
            case .invalid:
                // Not a record boundary (corrupt file): give up everything before the new record.
                oldestPosition = tailPosition
            case .padding(let alignedLength):
                oldestPosition += alignedLength
            case .event(let alignedLength):
                oldestSeq = record.loadU64(R.seqOffset) + 1
                oldestPosition += alignedLength
            }
        }
        if oldestPosition >= tailPosition {
            // Everything older is gone (or the log was empty): the new record is the oldest.
            oldestPosition = newPosition
            oldestSeq = newSeq
        } else if oldestSeq == 0 {
            oldestSeq = newSeq
        }
        region.storeRelease(LogDescriptor.oldestPositionOffset, oldestPosition)
        region.storeRelease(LogDescriptor.oldestSeqOffset, oldestSeq)
    }

    /// Writes a padding record of `length` bytes at `position`; never crosses the end of a lap.
    private func writePadding(at position: UInt64, length: UInt64) {
        let record = region.recordPointer(position)
        if length >= 8 {
            record.storeU32(R.lengthOffset, UInt32(length))
            record.storeU16(R.kindOffset, R.kindPadding)
            record.storeU16(R.nameLengthOffset, 0)
        }
        if length >= 16 { record.storeU64(R.positionOffset, position) }
        if length >= UInt64(R.headerLength) {
            memset(record + R.seqOffset, 0, R.headerLength - R.seqOffset)
        }
    }

    /// Covers `[from, to)` with padding records, one per lap piece.
    func coverWithPadding(from: UInt64, to: UInt64) {
        var position = from
        while position < to {
            let remaining = region.capacity - (position & region.mask)
            // A padding length is a u32: a longer range (a log of more than 4 GiB) takes several,
            // none of them too short to hold its own position.
            var piece = min(remaining, to - position)
            if piece > 1 << 31 { piece = (to - position) - (1 << 31) < 128 ? (1 << 31) - 128 : 1 << 31 }
            writePadding(at: position, length: piece)
            position += piece
        }
    }
}

/// The directory entries an open batch changed, as they were before it (for `rollback`).
/// Flat storage that keeps its capacity from batch to batch: after the first batches of a
/// given size, staging allocates nothing per touched entry.
final class DirectoryUndo {
    /// Entry index -> offset of its saved bytes in `bytes`.
    private var offsets: [Int: Int] = [:]
    private var bytes: [UInt8] = []
    /// The entry saved last: a batch's lines mostly repeat their slot, and this skips hashing it.
    private var lastIndex = -1

    func reset() {
        // A single append records nothing: nothing to clear (a dictionary's removeAll costs
        // a few hundred instructions even when empty).
        guard !offsets.isEmpty || !bytes.isEmpty else { return }
        lastIndex = -1
        offsets.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Saves entry `index` unless this batch already saved it.
    func remember(_ index: Int, in directory: SlotDirectory) {
        guard index != lastIndex else { return }
        lastIndex = index
        guard offsets[index] == nil else { return }
        offsets[index] = bytes.count
        directory.save(index, appendingTo: &bytes)
    }

    /// Puts every saved entry back.
    func restore(into directory: SlotDirectory) {
        bytes.withUnsafeBytes { saved in
            for (index, offset) in offsets { directory.restore(index, from: saved.baseAddress! + offset) }
        }
    }
}
