import CRinggateSys
import Glibc

// MARK: CLUSTER
// Cluster mode: the seqs come from the cluster's stream, so the writer appends under a given
// seq, records the seqs it will never hold (gaps) and keeps the stream cursor it applied up
// to. Gaps and the cursor are staged like records: published by `commit` (before `tail`),
// dropped by `rollback`.

/// What the open batch changes in the header besides records: gaps and the upstream cursor.
/// Bounded: at most `gapTableEntries` staged gaps are kept (older ones of the same batch are
/// counted, as the table itself would have overwritten them).
struct StagedHeader {
    var gaps: [(first: UInt64, last: UInt64)] = []
    /// Staged gaps pushed out by newer ones of the same batch (counted, never written).
    var gapsEvicted: UInt64 = 0
    var cursor: (milliseconds: UInt64, sequence: UInt64)? = nil
    /// Anything staged: the one check `commit` makes on the single-host path.
    var any = false

    mutating func clear() {
        gaps.removeAll(keepingCapacity: true)
        gapsEvicted = 0
        cursor = nil
        any = false
    }

    mutating func addGap(first: UInt64, last: UInt64) {
        any = true
        // Consecutive gaps of one batch (several unstorable entries in a row) are one gap:
        // the table holds more history. Only a staged entry may grow: readers never saw it.
        if let newest = gaps.last, newest.last &+ 1 == first {
            gaps[gaps.count - 1].last = last
            return
        }
        if gaps.count == LogDescriptor.gapTableEntries {
            gaps.removeFirst()
            gapsEvicted += 1
        }
        gaps.append((first, last))
    }
}

extension LogWriter {
    /// `stage` under the cluster's `seq`. Throws `.seqNotAhead` when `seq < nextSeq` (nothing
    /// changed); `seq > nextSeq` records the gap `nextSeq ... seq-1`, published with the commit.
    @discardableResult
    public mutating func stage(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64, seq: UInt64
    ) throws(AppendError) -> UInt64 {
        guard seq >= nextSeq else { throw .seqNotAhead }
        let gapFirst = nextSeq
        try stageRecord(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds, seq: seq)
        if seq > gapFirst { staged.addGap(first: gapFirst, last: seq - 1) }
        return seq
    }

    /// `append` under the cluster's `seq` (see `stage(slot:type:data:timeMilliseconds:seq:)`).
    @discardableResult
    public mutating func append(
        slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
        timeMilliseconds: UInt64, seq: UInt64
    ) throws(AppendError) -> UInt64 {
        try stage(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds, seq: seq)
        commit()
        return seq
    }

    /// Records that this log will never hold the seqs `nextSeq ... lastMissing` (a stream entry
    /// it cannot store: bad slot or type, too large, slot directory full), without an event.
    /// Staged: visible with the next `commit`. Throws `.seqNotAhead` when `lastMissing < nextSeq`.
    public mutating func recordGap(through lastMissing: UInt64) throws(AppendError) {
        guard lastMissing >= nextSeq else { throw .seqNotAhead }
        staged.addGap(first: nextSeq, last: lastMissing)
        nextSeq = lastMissing + 1
    }

    /// The stream id (ms-seq) of the last entry applied; stored with the next `commit`, before
    /// `tail`, so that a restarted ingest resumes after exactly what its log holds.
    public mutating func setUpstreamCursor(milliseconds: UInt64, sequence: UInt64) {
        staged.cursor = (milliseconds, sequence)
        staged.any = true
    }

    /// Writes the staged gaps and the cursor; `commit` stores `nextSeq` and `tail` after this,
    /// so a reader that saw a record past a gap sees the gap. Each entry is followed by the
    /// count (release), so at most one entry is being written at any time: the one readers
    /// treat as untrusted (`missingSeqs`).
    mutating func publishStaged() {
        if !staged.gaps.isEmpty {
            var count = region.loadAcquire(LogDescriptor.gapCountOffset) &+ staged.gapsEvicted
            for gap in staged.gaps {
                // The count stored before must be visible before this entry's bytes change.
                rg_fence_release()
                let entry = region.gapEntry(count)
                entry.storeU64(0, gap.first)
                entry.storeU64(8, gap.last)
                count += 1
                region.storeRelease(LogDescriptor.gapCountOffset, count)
            }
        }
        if let cursor = staged.cursor {
            region.storeRelease(LogDescriptor.upstreamCursorOffset, cursor.milliseconds)
            region.storeRelease(LogDescriptor.upstreamCursorOffset + 8, cursor.sequence)
        }
        staged.clear()
    }
}

extension LogRegion {
    /// The stream id (ms, seq) of the last stream entry this log applied; (0, 0) when none.
    /// Read by the ingest at start and the supervisor, never while a writer runs.
    public var upstreamCursor: (milliseconds: UInt64, sequence: UInt64) {
        (loadAcquire(LogDescriptor.upstreamCursorOffset), loadAcquire(LogDescriptor.upstreamCursorOffset + 8))
    }

    /// Gaps ever recorded (the table holds the last `gapTableEntries`).
    public var gapCount: UInt64 { loadAcquire(LogDescriptor.gapCountOffset) }

    @inline(__always) func gapEntry(_ n: UInt64) -> UnsafeMutableRawPointer {
        base + LogDescriptor.gapTableOffset
            + Int(n % UInt64(LogDescriptor.gapTableEntries)) * LogDescriptor.gapEntryLength
    }
}

extension LogReader {
    /// How many seqs in `(after, through]` lie inside recorded gaps (seqs this log will never
    /// hold); nil when the table no longer covers that range (it trusts its newest
    /// `gapTableEntries - 1` entries: a range reaching below the oldest of them, once older
    /// gaps were overwritten, is not covered). One acquire load when no gap was ever recorded.
    ///
    /// The writer overwrites table entries while readers read them: after copying, the count is
    /// read again and only entries the writer cannot have been overwriting are trusted.
    public func missingSeqs(after: UInt64, through: UInt64) -> UInt64? {
        let count = region.loadAcquire(LogDescriptor.gapCountOffset)
        guard count > 0, through > after else { return 0 }
        let entries = UInt64(LogDescriptor.gapTableEntries)
        var missing: UInt64 = 0
        var n = count
        var oldestFirst: UInt64 = 0
        var reachedBelow = false
        // Newest first: gaps are recorded in seq order, so the walk stops at the first gap
        // entirely at or below `after` (a cursor near the head reads one or two entries). The
        // oldest of a full table is never read: the writer may be overwriting it (below).
        while n > 0 && count - n < entries - 1 {
            n -= 1
            let entry = region.gapEntry(n)
            let first = entry.loadU64(0)
            let last = entry.loadU64(8)
            oldestFirst = first
            if last <= after {
                reachedBelow = true
                break
            }
            let low = max(first, after + 1)
            let high = min(last, through)
            if high >= low { missing += high - low + 1 }
        }
        rg_fence_acquire()
        let recheck = region.loadAcquire(LogDescriptor.gapCountOffset)
        // The writer, about to publish count `recheck + 1`, may be writing entry `recheck`,
        // which overwrites entry `recheck - entries`: that one and older ones are untrusted.
        if recheck >= entries && n <= recheck - entries { return nil }
        if reachedBelow || n == 0 { return missing }
        // All the table holds was read and older gaps were overwritten: covered only when
        // every seq they can have held (below the oldest held gap) is at or below `after`.
        return after + 1 >= oldestFirst ? missing : nil
    }
}

extension LogReader {
    /// True when the record of `seq` is retained and holds exactly this event (slot, type,
    /// data, time): a stream entry at or below the head that this log already applied (a
    /// replay), as opposed to another event under a seq it holds (a diverged history).
    /// `scratch.count` must be at least `maxRecordBytes`.
    public func holdsEvent(seq: UInt64, slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
                           data: UnsafeRawBufferPointer, timeMilliseconds: UInt64,
                           scratch: UnsafeMutableRawBufferPointer) -> Bool {
        guard let position = position(ofSeq: seq),
              case .record(let view) = copyRecord(at: position, into: scratch),
              view.seq == seq, view.timeMilliseconds == timeMilliseconds
        else { return false }
        let copy = UnsafeRawBufferPointer(scratch)
        func same(_ range: Range<Int>, _ bytes: UnsafeRawBufferPointer) -> Bool {
            range.count == bytes.count
                && (bytes.count == 0 || memcmp(copy.baseAddress! + range.lowerBound, bytes.baseAddress!, bytes.count) == 0)
        }
        return same(view.name, slot) && same(view.type, type) && same(view.data, data)
    }
}
