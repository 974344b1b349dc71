import CRinggateSys
import Glibc

/// The single writer of a log. Exactly one per log, in one process; it never waits for readers.
///
/// Append order (what readers rely on): `oldestPosition`/`oldestSeq`, then `tailIntent`
/// (release, covering any wrap padding and the new record) before any byte is overwritten;
/// padding; record header + payload; seq index; slot directory (seqlock); `latest`, `nextSeq`,
/// `tail` (release).
public struct LogWriter {
    public enum AppendError: Error, Equatable {
        case slotDirectoryFull
        case recordTooLarge
    }

    typealias R = LogDescriptor.Record

    let region: LogRegion
    let directory: SlotDirectory
    private(set) var tailPosition: UInt64
    private(set) var nextSeq: UInt64
    private(set) var oldestPosition: UInt64
    private(set) var oldestSeq: UInt64
    private(set) var liveSlots: Int

    /// Takes over a log. If the previous writer died mid-append (`tailIntent > tail`), a record
    /// that is provably complete (its slot directory entry already names it) is committed;
    /// otherwise `[tail, tailIntent)` is covered with padding. `tailIntent` never moves back.
    public init(region: LogRegion) {
        self.region = region
        self.directory = SlotDirectory(region: region)
        tailPosition = region.loadAcquire(LogDescriptor.tailOffset)
        nextSeq = max(1, region.loadAcquire(LogDescriptor.nextSeqOffset))
        oldestPosition = region.loadAcquire(LogDescriptor.oldestPositionOffset)
        oldestSeq = region.loadAcquire(LogDescriptor.oldestSeqOffset)
        liveSlots = 0
        recover()
        liveSlots = directory.repairAfterCrash()
        rg_store_release_u64(region.field(LogDescriptor.liveSlotsOffset), UInt64(liveSlots))
    }

    /// Seq of the newest appended event; 0 when the log is empty.
    public var headSeq: UInt64 { nextSeq - 1 }

    /// Unaligned length of a record: header + slot name + type + data.
    public static func recordLength(slotBytes: Int, typeBytes: Int, dataBytes: Int) -> Int {
        R.headerLength + slotBytes + typeBytes + dataBytes
    }

    /// Whether `append` of such an item would succeed now (record size and slot directory).
    /// Use it to check a whole batch before appending any of it.
    public func canAppend(slot: UnsafeRawBufferPointer, typeBytes: Int, dataBytes: Int) -> Bool {
        guard fits(slotBytes: slot.count, typeBytes: typeBytes, dataBytes: dataBytes) else { return false }
        return directory.canResolve(slot, oldestPosition: oldestPosition, liveSlots: liveSlots)
    }

    private func fits(slotBytes: Int, typeBytes: Int, dataBytes: Int) -> Bool {
        guard dataBytes >= 0, dataBytes <= region.geometry.maxRecordBytes else { return false }
        let length = Self.recordLength(slotBytes: slotBytes, typeBytes: typeBytes, dataBytes: dataBytes)
        return LogDescriptor.alignUp(length, R.alignment) <= region.geometry.maxRecordBytes
    }

    /// Appends one event and returns its seq.
    ///
    /// `slot` must be 1...128 bytes and `type` at most 255 bytes (the caller validates user
    /// input first). Throws `.recordTooLarge` above `maxRecordBytes` (capacity / 4) and
    /// `.slotDirectoryFull` when the slot is new and `maxSlots` slots still have retained records.
    @discardableResult
    public mutating func append(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64
    ) throws(AppendError) -> UInt64 {
        precondition(slot.count >= 1 && slot.count <= R.maxNameBytes, "slot name must be 1...128 bytes")
        precondition(type.count <= R.maxTypeBytes, "type must be at most 255 bytes")
        guard fits(slotBytes: slot.count, typeBytes: type.count, dataBytes: data.count) else {
            throw .recordTooLarge
        }
        guard let resolution = directory.resolveForAppend(slot, oldestPosition: oldestPosition, liveSlots: &liveSlots)
        else { throw .slotDirectoryFull }

        let length = Self.recordLength(slotBytes: slot.count, typeBytes: type.count, dataBytes: data.count)
        let alignedLength = UInt64(LogDescriptor.alignUp(length, R.alignment))
        let capacity = region.capacity
        let offset = tailPosition & region.mask
        let paddingLength = offset + alignedLength > capacity ? capacity - offset : 0
        let position = tailPosition + paddingLength
        let end = position + alignedLength
        let seq = nextSeq

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
        record.storeU32(R.dataLengthOffset + 4, 0)
        var cursor = R.headerLength
        memcpy(record + cursor, slot.baseAddress!, slot.count)
        cursor += slot.count
        if type.count > 0 { memcpy(record + cursor, type.baseAddress!, type.count) }
        cursor += type.count
        if data.count > 0 { memcpy(record + cursor, data.baseAddress!, data.count) }
        cursor += data.count
        if Int(alignedLength) > cursor { memset(record + cursor, 0, Int(alignedLength) - cursor) }

        rg_store_release_u64(region.indexPointer(seq), position)
        directory.publish(resolution, name: slot, newestPosition: position, newestSeq: seq, count: ordinal)
        if resolution.isNew {
            liveSlots += 1
        }
        rg_store_release_u64(region.field(LogDescriptor.liveSlotsOffset), UInt64(liveSlots))

        nextSeq = seq + 1
        tailPosition = end
        region.storeRelease(LogDescriptor.latestOffset, position)
        region.storeRelease(LogDescriptor.nextSeqOffset, nextSeq)
        region.storeRelease(LogDescriptor.tailOffset, end)
        return seq
    }

    // MARK: Internals

    /// Moves `oldestPosition` past every record the bytes up to `end` will overwrite, walking
    /// the records (amortised O(1) per append), and publishes it.
    private mutating func advanceOldest(toCover end: UInt64, newPosition: UInt64, newSeq: UInt64) {
        let capacity = region.capacity
        let limit = end > capacity ? end - capacity : 0
        while oldestPosition < limit && oldestPosition < tailPosition {
            let remaining = capacity - (oldestPosition & region.mask)
            if remaining < UInt64(R.headerLength) {
                oldestPosition += remaining
                continue
            }
            let record = region.recordPointer(oldestPosition)
            let length = UInt64(record.loadU32(R.lengthOffset))
            let kind = record.loadU16(R.kindOffset)
            let alignedLength = (length + 7) & ~7
            guard (kind == R.kindEvent || kind == R.kindPadding), length >= 8, alignedLength <= remaining,
                  record.loadU64(R.positionOffset) == oldestPosition
            else {
                // Not a record boundary (corrupt file): give up everything before the new record.
                oldestPosition = tailPosition
                break
            }
            if kind == R.kindEvent { oldestSeq = record.loadU64(R.seqOffset) + 1 }
            oldestPosition += alignedLength
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
    private func coverWithPadding(from: UInt64, to: UInt64) {
        var position = from
        while position < to {
            let remaining = region.capacity - (position & region.mask)
            let piece = min(remaining, to - position)
            writePadding(at: position, length: piece)
            position += piece
        }
    }

    private mutating func recover() {
        let intent = region.loadAcquire(LogDescriptor.tailIntentOffset)
        guard intent > tailPosition else {
            if intent < tailPosition { region.storeRelease(LogDescriptor.tailIntentOffset, tailPosition) }
            return
        }
        let capacity = region.capacity
        let span = intent - tailPosition
        let offset = tailPosition & region.mask
        let position = offset + span > capacity ? tailPosition + (capacity - offset) : tailPosition
        if span & 7 == 0, span <= UInt64(region.geometry.maxRecordBytes) + capacity, let seq = committedRecord(at: position, end: intent) {
            // The record was complete: finish its commit.
            rg_store_release_u64(region.indexPointer(seq), position)
            let record = region.recordPointer(position)
            let entry = region.directoryEntry(Int(record.loadU32(R.slotIndexOffset)))
            entry.storeU64(LogDescriptor.Directory.countOffset, record.loadU64(R.slotOrdinalOffset))
            nextSeq = max(nextSeq, seq + 1)
            if oldestSeq == 0 { oldestSeq = 1 }
            region.storeRelease(LogDescriptor.latestOffset, position)
            region.storeRelease(LogDescriptor.nextSeqOffset, nextSeq)
        } else {
            coverWithPadding(from: tailPosition, to: (intent + 7) & ~7)
        }
        let end = (intent + 7) & ~7
        if end != intent { region.storeRelease(LogDescriptor.tailIntentOffset, end) }
        let previousTail = tailPosition
        tailPosition = end
        region.storeRelease(LogDescriptor.tailOffset, end)
        // Records older than the covered range may have been overwritten by it.
        let limit = end > capacity ? end - capacity : 0
        if oldestPosition < limit {
            let saved = tailPosition
            tailPosition = previousTail
            advanceOldest(toCover: end, newPosition: saved, newSeq: nextSeq)
            tailPosition = saved
        }
        if oldestPosition > tailPosition { oldestPosition = tailPosition }
        region.storeRelease(LogDescriptor.oldestPositionOffset, oldestPosition)
        region.storeRelease(LogDescriptor.oldestSeqOffset, oldestSeq)
    }

    /// The seq of the record at `position` if it ends at `end` and its slot directory entry
    /// already names it as newest (so its bytes were all written before the crash).
    private func committedRecord(at position: UInt64, end: UInt64) -> UInt64? {
        let record = region.recordPointer(position)
        guard region.capacity - (position & region.mask) >= UInt64(R.headerLength) else { return nil }
        let length = UInt64(record.loadU32(R.lengthOffset))
        guard record.loadU16(R.kindOffset) == R.kindEvent,
              record.loadU64(R.positionOffset) == position,
              length >= UInt64(R.headerLength),
              position + ((length + 7) & ~7) == end
        else { return nil }
        let slotIndex = Int(record.loadU32(R.slotIndexOffset))
        guard slotIndex < directory.entryCount else { return nil }
        let entry = region.directoryEntry(slotIndex)
        typealias D = LogDescriptor.Directory
        let seq = record.loadU64(R.seqOffset)
        guard entry.loadU32(D.stateOffset) == D.stateLive,
              entry.loadU32(D.generationOffset) == record.loadU32(R.slotGenerationOffset),
              entry.loadU64(D.newestPositionOffset) == position,
              entry.loadU64(D.newestSeqOffset) == seq,
              seq >= nextSeq - 1, seq <= nextSeq
        else { return nil }
        return seq
    }
}
