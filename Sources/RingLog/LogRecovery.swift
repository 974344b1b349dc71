import CRinggateSys
import Glibc

/// What the recovery scan found when a writer took over a log.
public struct LogRecovery: Sendable, Equatable {
    /// Events whose crc and framing were checked, oldest to `tail`.
    public var recordsVerified = 0
    /// A batch was open when the previous writer stopped (`tailIntent > tail`): rolled back.
    public var rolledBackBatch = false
    /// Position of the first damaged record (bad framing or crc); nil when none.
    public var damagedPosition: UInt64? = nil
    /// The header's `tailIntent` when it could not be a writer's (behind `tail` or more than a lap
    /// plus one record ahead): ignored, nothing past `tail` is claimed. nil when sound.
    public var damagedTailIntent: UInt64? = nil
    /// Seqs found on intact records past `tail` (a header page older than its data pages)
    /// that `nextSeq` was moved past, so that no seq a reader may hold is reused. Always 0 with
    /// `reuseRolledBackSeqs` (cluster mode): the stream hands those seqs out again, with the
    /// same events, so they are not skipped.
    public var seqsSkippedPastTail: UInt64 = 0
    /// Bytes from the cut to the end of what the previous writer had claimed, now padding.
    public var discardedBytes: UInt64 = 0
    /// Directory entries pointed back at an older record (or tombstoned) by the cut.
    public var rewoundSlots = 0

    public init() {}
}

/// The recovery scan. The log is cut back to a position P: the last committed `tail`
/// (an unfinished batch is rolled back) or, earlier, the first damaged record. A cut rewinds
/// every directory entry that names a record at or past P, covers `[P, tailIntent)` with padding
/// (so `tailIntent` never moves back) and keeps `nextSeq` (a damaged range leaves a gap of seqs
/// rather than reusing ids clients may hold). While walking, it rewrites each record's seq-index
/// entry and moves a directory entry forward to the newest record found for it, so the file is
/// consistent again even when a power loss kept some pages and lost others.
extension LogWriter {
    typealias D = LogDescriptor.Directory

    struct SlotNewest {
        var generation: UInt32
        var position: UInt64
        var seq: UInt64
        var ordinal: UInt64
    }

    mutating func recover(file: Int32, progress: (() -> Void)?, progressStrideBytes: UInt64) {
        let tail = tailPosition
        let capacity = region.capacity
        var report = LogRecovery()
        progress?()
        var unstamped: UInt64 = 0
        func scanned(_ bytes: UInt64) {
            unstamped &+= bytes
            if unstamped >= progressStrideBytes {
                unstamped = 0
                progress?()
            }
        }

        // 0. `tailIntent` has no crc: a value no writer could have left (behind `tail`, or more
        // than a lap plus one record ahead of it) is damage, not a batch; it claims nothing.
        let intent = region.loadAcquire(LogDescriptor.tailIntentOffset)
        let intentBound = capacity + UInt64(region.geometry.maxRecordBytes)
        let intentSound = intent >= tail && intent - tail <= intentBound && UInt64.max - intent >= 8
        report.damagedTailIntent = intentSound ? nil : intent
        report.rolledBackBatch = intentSound && intent > tail
        let claimed = intentSound ? intent : tail
        let claimedEnd = claimed & 7 == 0 ? claimed : (claimed | 7) &+ 1

        // 1. Walk oldest -> tail, verifying framing and crc; P = the first bad record or tail.
        var newest: [UInt32: SlotNewest] = [:]
        var position = min(oldestPosition, tail)
        var lastSeq: UInt64 = 0
        var lastPosition: UInt64? = nil
        while position < tail {
            let remaining = capacity - (position & region.mask)
            if remaining < UInt64(R.headerLength) {
                position += remaining
                continue
            }
            guard let (seq, next) = verifiedRecord(at: position, remaining: remaining, limit: tail) else {
                report.damagedPosition = position
                break
            }
            if let seq {
                let record = region.recordPointer(position)
                let index = record.loadU32(R.slotIndexOffset)
                newest[index] = SlotNewest(
                    generation: record.loadU32(R.slotGenerationOffset), position: position, seq: seq,
                    ordinal: record.loadU64(R.slotOrdinalOffset))
                // Only entries that differ are written: a clean restart leaves the index's pages clean.
                let entry = region.indexPointer(seq)
                if rg_load_acquire_u64(entry) != position { rg_store_release_u64(entry, position) }
                lastSeq = seq
                lastPosition = position
                report.recordsVerified += 1
            }
            scanned(next - position)
            position = next
        }
        let cut = position

        // 1b. Past `tail`: after a power loss the header page can be older than the data pages,
        // so intact records there may carry seqs readers already received. They are not kept,
        // but their seqs are never handed out again.
        var highestSeq = max(lastSeq, nextSeq - 1)
        var ahead = tail
        while ahead - tail < capacity {
            let remaining = capacity - (ahead & region.mask)
            if remaining < UInt64(R.headerLength) {
                ahead += remaining
                continue
            }
            guard let (seq, next) = verifiedRecord(at: ahead, remaining: remaining, limit: tail &+ capacity)
            else { break }
            if let seq, seq > highestSeq, seq != R.noPosition {
                report.seqsSkippedPastTail += seq - highestSeq
                highestSeq = seq
            }
            scanned(next - ahead)
            ahead = next
        }

        // 2. The directory: seqlocks, entries at or past the cut, entries behind the data. It is
        // read with pread when the log has a file, so that its untouched pages (most of it) are
        // not faulted into this process; only entries that change are written through the mapping.
        var live = 0
        let chunkEntries = 4096
        var chunk = [UInt8](repeating: 0, count: chunkEntries * D.entryLength)
        var first = 0
        while first < directory.entryCount {
            let count = min(chunkEntries, directory.entryCount - first)
            chunk.withUnsafeMutableBytes { buffer in
                let bytes = count * D.entryLength
                let offset = region.geometry.directoryOffset + first * D.entryLength
                let copied = file >= 0 && readFully(file, buffer.baseAddress!, bytes, offset: offset)
                let source = copied ? buffer.baseAddress! : region.directoryEntry(first)
                for k in 0..<count {
                    let i = first + k
                    let entry = source + k * D.entryLength
                    if entry.loadU32(D.seqlockOffset) & 1 != 0 { directory.repairSeqlock(i) }
                    guard entry.loadU32(D.stateOffset) == D.stateLive else { continue }
                    let generation = entry.loadU32(D.generationOffset)
                    let entryNewest = entry.loadU64(D.newestPositionOffset)
                    let found = newest[UInt32(i)].flatMap { $0.generation == generation ? $0 : nil }
                    if entryNewest >= cut && entryNewest != R.noPosition {
                        report.rewoundSlots += 1
                        if let found {
                            directory.rewind(i, newestPosition: found.position, newestSeq: found.seq, count: found.ordinal)
                        } else if let older = olderLink(at: entryNewest, cut: cut, index: i, generation: generation),
                                  older.count > 0 {
                            // Nothing of the slot is retained below the cut: keep its ordinals going.
                            directory.rewind(i, newestPosition: older.position, newestSeq: older.seq, count: older.count)
                        } else {
                            directory.tombstone(i)
                            continue
                        }
                    } else if let found, found.position > entryNewest || entryNewest == R.noPosition {
                        directory.rewind(i, newestPosition: found.position, newestSeq: found.seq, count: found.ordinal)
                    }
                    live += 1
                }
            }
            scanned(UInt64(count * D.entryLength))
            first += count
        }
        liveSlots = live
        rg_store_release_u64(region.field(LogDescriptor.liveSlotsOffset), UInt64(liveSlots))

        // 3. The seqs past the last kept record are gone: their index entries name no record,
        // so `position(ofSeq:)` cannot resolve one to a header the padding below left intact.
        // Bounded by the index size, and never an entry a kept seq shares (seq mod entries).
        let indexEntries = UInt64(region.geometry.indexEntries)
        var discarded = lastSeq + 1
        var discardedEnd = highestSeq &+ 1
        if lastPosition != nil {
            discardedEnd = min(discardedEnd, max(oldestSeq, 1) &+ indexEntries)
        } else if discardedEnd - discarded > indexEntries {
            discarded = discardedEnd - indexEntries
        }
        while discarded < discardedEnd {
            let entry = region.indexPointer(discarded)
            if rg_load_acquire_u64(entry) != R.noPosition { rg_store_release_u64(entry, R.noPosition) }
            discarded += 1
            scanned(8)   // up to capacity/8 bytes of index: a cut near the oldest record is long
        }

        // 4. Everything from the cut to what was claimed becomes padding. The claim is published
        // first (the writer rule), and `[cut, tail)` and `[tail, claimedEnd)` are padded apart, so
        // a padding header sits at the old `tail`: a live worker waiting there, or walking from
        // any record below it, steps over the rolled-back batch instead of delivering it.
        // `tail` and `tailIntent` never move back: positions readers hold (a pump at the old
        // tail, links, index entries) stay record boundaries, which they would not be if new
        // records were written from the cut on.
        if claimedEnd != intent { region.storeRelease(LogDescriptor.tailIntentOffset, claimedEnd) }
        if cut < claimedEnd {
            report.discardedBytes = claimedEnd - cut
            if cut < tail { coverWithPadding(from: cut, to: tail) }
            coverWithPadding(from: max(cut, tail), to: claimedEnd)
        }
        if reuseRolledBackSeqs {
            // Cluster mode: the stream hands those seqs out again, with the same events. The
            // header's nextSeq may already count a record the cut removed (the writer stores
            // it before `tail`): go back to what the log holds, its last record or its newest
            // recorded gap, so that the seq comes again as the next one, never as a silent hole.
            report.seqsSkippedPastTail = 0
            let gaps = region.loadAcquire(LogDescriptor.gapCountOffset)
            let newestGapLast = gaps > 0 ? region.gapEntry(gaps - 1).loadU64(8) : 0
            let held = max(lastSeq, newestGapLast)
            if held > 0 && held + 1 < nextSeq { nextSeq = held + 1 }
        } else {
            nextSeq = max(nextSeq, highestSeq + 1)
        }
        if let lastPosition { latestPosition = lastPosition }
        if lastPosition == nil || oldestPosition >= cut {
            // Nothing is retained: the next record becomes the oldest.
            oldestPosition = claimedEnd
            oldestSeq = 0
        }
        tailPosition = claimedEnd
        region.storeRelease(LogDescriptor.oldestPositionOffset, oldestPosition)
        region.storeRelease(LogDescriptor.oldestSeqOffset, oldestSeq)
        region.storeRelease(LogDescriptor.latestOffset, latestPosition)
        region.storeRelease(LogDescriptor.nextSeqOffset, nextSeq)
        region.storeRelease(LogDescriptor.tailOffset, tailPosition)
        recovery = report
    }

    /// pread of `count` bytes at `offset`, all of them; false on any error or short file.
    private func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, offset: Int) -> Bool {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// (seq or nil for padding, next position) of an intact record at `position` that ends at or
    /// before `limit`; nil when its framing or crc is wrong.
    private func verifiedRecord(at position: UInt64, remaining: UInt64, limit: UInt64) -> (UInt64?, UInt64)? {
        let record = region.recordPointer(position)
        switch region.framing(of: record, at: position, remaining: remaining) {
        case .invalid:
            return nil
        case .padding(let aligned):
            guard position <= limit, aligned <= limit - position else { return nil }
            return (nil, position + aligned)
        case .event(let aligned):
            guard position <= limit, aligned <= limit - position,
                  record.loadU32(R.crcOffset) == Self.crc(record, length: Int(record.loadU32(R.lengthOffset)))
            else { return nil }
            return (record.loadU64(R.seqOffset), position + aligned)
        }
    }

    /// The slot's state before its records at or past `cut`: follows the prev links from the
    /// record at `position` while they stay at or past the cut; nil when a header on the way is
    /// unreadable or does not belong to entry `index`.
    private func olderLink(at position: UInt64, cut: UInt64, index: Int, generation: UInt32)
        -> (position: UInt64, seq: UInt64, count: UInt64)? {
        var current = position
        while true {
            guard current & 7 == 0, region.capacity - (current & region.mask) >= UInt64(R.headerLength) else { return nil }
            let record = region.recordPointer(current)
            guard record.loadU16(R.kindOffset) == R.kindEvent, record.loadU64(R.positionOffset) == current,
                  record.loadU32(R.slotIndexOffset) == UInt32(index),
                  record.loadU32(R.slotGenerationOffset) == generation
            else { return nil }
            let ordinal = record.loadU64(R.slotOrdinalOffset)
            let previous = record.loadU64(R.prevPositionOffset)
            guard ordinal >= 1 else { return nil }
            if ordinal == 1 || previous == R.noPosition || previous < cut {
                return (previous, record.loadU64(R.prevSeqOffset), ordinal - 1)
            }
            guard previous < current else { return nil }
            current = previous
        }
    }
}
