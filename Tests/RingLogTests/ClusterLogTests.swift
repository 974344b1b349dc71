import CRinggateSys
import Glibc
import Testing
@testable import RingLog

extension LogWriter {
    /// `stage`/`append` under an explicit seq, with strings.
    @discardableResult
    mutating func put(_ slot: String, _ data: String = "", seq: UInt64, time: UInt64 = 0, commit: Bool = true)
        throws(AppendError) -> UInt64
    {
        let s = Array(slot.utf8), t = Array("m".utf8), d = Array(data.utf8)
        let result: Result<UInt64, AppendError> = s.withUnsafeBytes { sp in
            t.withUnsafeBytes { tp in
                d.withUnsafeBytes { dp in
                    do throws(AppendError) {
                        return .success(commit
                            ? try self.append(slot: sp, type: tp, data: dp, timeMilliseconds: time, seq: seq)
                            : try self.stage(slot: sp, type: tp, data: dp, timeMilliseconds: time, seq: seq))
                    } catch {
                        return .failure(error)
                    }
                }
            }
        }
        return try result.get()
    }
}

extension LogReader {
    func holds(_ seq: UInt64, _ slot: String, _ data: String, type: String = "m", time: UInt64 = 0,
               scratch: UnsafeMutableRawBufferPointer) -> Bool {
        Array(slot.utf8).withUnsafeBytes { s in
            Array(type.utf8).withUnsafeBytes { t in
                Array(data.utf8).withUnsafeBytes { d in
                    holdsEvent(seq: seq, slot: s, type: t, data: d, timeMilliseconds: time, scratch: scratch)
                }
            }
        }
    }
}

@Suite struct ClusterLogTests {
    @Test func explicitSeqsAppendAndAJumpRecordsTheGap() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        #expect(try writer.put("a", "one", seq: 1) == 1)
        #expect(reader.missingSeqs(after: 0, through: 1) == 0)
        #expect(try writer.put("a", "five", seq: 5) == 5)
        #expect(reader.headSeqAcquire() == 5)
        #expect(reader.missingSeqs(after: 0, through: 5) == 3)     // 2, 3, 4
        #expect(reader.missingSeqs(after: 1, through: 4) == 3)
        #expect(reader.missingSeqs(after: 2, through: 3) == 1)     // only 3 in (2, 3]
        #expect(reader.missingSeqs(after: 4, through: 5) == 0)     // past the gap
        #expect(reader.missingSeqs(after: 0, through: 1) == 0)     // before it
        #expect(reader.event(at: reader.position(ofSeq: 5)!, scratch: log.scratch)?.data == "five")
        #expect(reader.position(ofSeq: 3) == nil)
        // The next seq follows on.
        #expect(try writer.put("b", "six", seq: 6) == 6)
        #expect(reader.missingSeqs(after: 0, through: 6) == 3)
        #expect(log.region.gapCount == 1)
    }

    @Test func aSeqAtOrBelowTheHeadIsRefusedAndChangesNothing() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        try writer.put("a", "x", seq: 3)
        let tail = log.reader.tailAcquire()
        #expect(throws: LogWriter.AppendError.seqNotAhead) { try writer.put("a", "y", seq: 3) }
        #expect(throws: LogWriter.AppendError.seqNotAhead) { try writer.put("a", "y", seq: 1) }
        #expect(throws: LogWriter.AppendError.seqNotAhead) { try writer.recordGap(through: 2) }
        #expect(log.reader.tailAcquire() == tail)
        #expect(log.reader.headSeqAcquire() == 3)
        #expect(log.reader.findSlot("a")?.count == 1)
        #expect(log.region.gapCount == 1)   // 1...2, from the first put
    }

    @Test func theSingleHostAppendIsUnchangedAndRecordsNoGap() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        for k in 1...20 { #expect(try writer.append("s\(k % 3)", "e\(k)") == UInt64(k)) }
        #expect(log.region.gapCount == 0)
        #expect(log.reader.missingSeqs(after: 0, through: 20) == 0)
    }

    @Test func aBatchsGapIsVisibleWithItsCommitAndRolledBackWithIt() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.put("a", "1", seq: 1)
        writer.beginBatch()
        try writer.put("a", "4", seq: 4, commit: false)
        #expect(reader.missingSeqs(after: 1, through: 4) == 0)   // staged: readers see nothing
        writer.rollback()
        #expect(reader.missingSeqs(after: 1, through: 10) == 0)
        #expect(reader.headSeqAcquire() == 1)
        // The seqs come back: the same batch again, committed this time.
        writer.beginBatch()
        try writer.put("a", "4", seq: 4, commit: false)
        try writer.put("b", "7", seq: 7, commit: false)
        writer.commit()
        #expect(reader.missingSeqs(after: 1, through: 7) == 4)   // 2, 3, 5, 6
        #expect(reader.missingSeqs(after: 4, through: 7) == 2)
        #expect(log.region.gapCount == 2)
    }

    @Test func recordGapWithoutAnEventAndConsecutiveGapsOfABatchMerge() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.put("a", "1", seq: 1)
        writer.beginBatch()
        try writer.recordGap(through: 2)   // an entry this host cannot store
        try writer.recordGap(through: 3)   // and the next one
        try writer.put("a", "4", seq: 4, commit: false)
        writer.commit()
        #expect(log.region.gapCount == 1)
        #expect(reader.missingSeqs(after: 1, through: 4) == 2)
        // Outside a batch: visible at the commit, even though no record moved the tail.
        try writer.recordGap(through: 5)
        #expect(reader.missingSeqs(after: 4, through: 5) == 0)
        #expect(reader.headSeqAcquire() == 4)
        writer.commit()
        #expect(reader.missingSeqs(after: 4, through: 5) == 1)
        #expect(reader.headSeqAcquire() == 5)
        #expect(try writer.put("a", "6", seq: 6) == 6)
    }

    @Test func anOverflowedTableSaysItNoLongerCoversOldRanges() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        // Gap k is the single seq 2k; events at odd seqs. 130 gaps: the first 2 fall out.
        var seq: UInt64 = 1
        try writer.put("a", "x", seq: seq)
        for _ in 0..<130 {
            seq += 2
            try writer.put("a", "x", seq: seq)
        }
        #expect(log.region.gapCount == 130)
        let entries = UInt64(LogDescriptor.gapTableEntries)
        #expect(entries == 128)
        // The newest 127 (seqs 8, 10, ..., 260) are trusted; older gaps may be anything below 8.
        #expect(reader.missingSeqs(after: 0, through: seq) == nil)
        #expect(reader.missingSeqs(after: 6, through: 12) == nil)
        #expect(reader.missingSeqs(after: 7, through: 12) == 3)            // 8, 10, 12
        #expect(reader.missingSeqs(after: 7, through: seq) == 127)
        #expect(reader.missingSeqs(after: seq - 4, through: seq) == 2)     // near the head: exact
    }

    @Test func theUpstreamCursorIsStoredAtTheCommitAndDroppedByARollback() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        #expect(log.region.upstreamCursor == (0, 0))
        try writer.put("a", "1", seq: 1, commit: false)
        writer.setUpstreamCursor(milliseconds: 1_700_000_000_123, sequence: 4)
        #expect(log.region.upstreamCursor == (0, 0))
        writer.commit()
        #expect(log.region.upstreamCursor == (1_700_000_000_123, 4))
        writer.beginBatch()
        try writer.put("a", "2", seq: 2, commit: false)
        writer.setUpstreamCursor(milliseconds: 1_700_000_000_200, sequence: 0)
        writer.rollback()
        #expect(log.region.upstreamCursor == (1_700_000_000_123, 4))
        // A cursor alone (entries this host skipped as replays) is a commit of its own.
        writer.setUpstreamCursor(milliseconds: 1_700_000_000_300, sequence: 1)
        writer.commit()
        #expect(log.region.upstreamCursor == (1_700_000_000_300, 1))
        // A new writer (a restarted ingest) finds it.
        let again = LogWriter(region: log.region, reuseRolledBackSeqs: true)
        #expect(again.headSeq == 1)
        #expect(log.region.upstreamCursor == (1_700_000_000_300, 1))
    }

    @Test func holdsEventComparesSlotTypeDataAndTime() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.put("a", "hello", seq: 1, time: 1000)
        try writer.put("b", "", seq: 3, time: 2000)
        #expect(reader.holds(1, "a", "hello", time: 1000, scratch: log.scratch))
        #expect(reader.holds(3, "b", "", time: 2000, scratch: log.scratch))
        #expect(!reader.holds(1, "a", "hellO", time: 1000, scratch: log.scratch))
        #expect(!reader.holds(1, "a", "hello!", time: 1000, scratch: log.scratch))
        #expect(!reader.holds(1, "b", "hello", time: 1000, scratch: log.scratch))
        #expect(!reader.holds(1, "a", "hello", type: "n", time: 1000, scratch: log.scratch))
        #expect(!reader.holds(1, "a", "hello", time: 1001, scratch: log.scratch))
        #expect(!reader.holds(2, "a", "hello", time: 1000, scratch: log.scratch))   // in the gap
        #expect(!reader.holds(4, "a", "hello", time: 1000, scratch: log.scratch))   // past the head
    }

    @Test func holdsEventIsFalseOnceTheRecordIsOverwritten() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        try writer.put("a", "first", seq: 1)
        var seq: UInt64 = 1
        while log.reader.oldestSeqAcquire() <= 1 {
            seq += 1
            try writer.put("a", String(repeating: "z", count: 200), seq: seq)
        }
        #expect(!log.reader.holds(1, "a", "first", scratch: log.scratch))
    }

    /// An ingest that died with a batch staged: its records past `tail` carry seqs the stream
    /// hands out again. Single host moves `nextSeq` past them; cluster mode does not.
    @Test func recoveryReusesRolledBackSeqsOnlyInClusterMode() throws {
        for reuse in [false, true] {
            let log = HeapLog(capacityBytes: 8192)
            var writer = LogWriter(region: log.region)
            try writer.put("a", "1", seq: 1)
            try writer.put("a", "2", seq: 2)
            writer.beginBatch()
            try writer.put("a", "3", seq: 3, commit: false)
            try writer.put("b", "4", seq: 4, commit: false)
            // The process dies here: no commit, no rollback.
            var next = LogWriter(region: log.region, reuseRolledBackSeqs: reuse)
            #expect(next.recovery.rolledBackBatch)
            if reuse {
                #expect(log.reader.headSeqAcquire() == 2)
                #expect(next.headSeq == 2)
                #expect(next.recovery.seqsSkippedPastTail == 0)
                #expect(try next.put("a", "3", seq: 3) == 3)
                #expect(log.reader.holds(3, "a", "3", scratch: log.scratch))
                #expect(log.reader.missingSeqs(after: 0, through: 3) == 0)
            } else {
                #expect(next.headSeq == 4)
                #expect(next.recovery.seqsSkippedPastTail == 2)
            }
        }
    }

    @Test func aCommitTornBetweenNextSeqAndTailLeavesNoSilentHoleInClusterMode() throws {
        // The writer stores nextSeq before tail: a crash between them leaves a header whose
        // nextSeq counts a record recovery then cuts. In cluster mode that seq comes again from
        // the stream, so it must be the next one, not skipped without a gap.
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        try writer.put("a", "1", seq: 1)
        try writer.put("a", "2", seq: 2)
        try writer.put("a", "3", seq: 3, commit: false)
        log.region.storeRelease(LogDescriptor.nextSeqOffset, 4)   // dies before the tail store
        var next = LogWriter(region: log.region, reuseRolledBackSeqs: true)
        #expect(next.headSeq == 2)
        #expect(try next.put("a", "3", seq: 3) == 3)
        #expect(log.reader.missingSeqs(after: 0, through: 3) == 0)
        // A recorded gap is kept as held: the seq after it is the next one.
        try next.recordGap(through: 6)
        next.commit()
        log.region.storeRelease(LogDescriptor.nextSeqOffset, 9)
        let again = LogWriter(region: log.region, reuseRolledBackSeqs: true)
        #expect(again.headSeq == 6)
    }

    @Test func reinitializeEmptiesTheLogKeepingCountersAndTheEventLimit() throws {
        let log = HeapLog(capacityBytes: 8192, epoch: 0x1111)
        var writer = LogWriter(region: log.region)
        try writer.put("a", "1", seq: 1)
        try writer.put("b", "9", seq: 9)
        writer.setUpstreamCursor(milliseconds: 5, sequence: 6)
        writer.commit()
        log.region.raiseMaxEventBytes(4000)
        CounterBlock(region: log.region, process: 3).add(.eventsAppended, 42)

        try LogFile.reinitialize(region: log.region, fd: -1, epoch: 0x2222,
                                 upstreamCursor: (milliseconds: 1_700_000_000_000, sequence: 7))
        let region = try LogRegion.attach(base: log.base, length: log.length)
        let reader = LogReader(region: region)
        #expect(region.epoch == 0x2222)
        #expect(region.upstreamCursor == (1_700_000_000_000, 7))
        #expect(reader.headSeqAcquire() == 0)
        #expect(reader.oldestSeqAcquire() == 0)
        #expect(reader.tailAcquire() == 0)
        #expect(reader.findSlot("a") == nil)
        #expect(reader.findSlot("b") == nil)
        #expect(region.gapCount == 0)
        #expect(reader.missingSeqs(after: 0, through: 9) == 0)
        #expect(region.maxEventBytesAcquire == 4000)
        #expect(region.counterSum(.eventsAppended, processes: 0..<8) == 42)

        // A new epoch's seqs start at 1; the first entry may come later (a fresh host's gap).
        var fresh = LogWriter(region: region, reuseRolledBackSeqs: true)
        #expect(fresh.recovery == LogRecovery())
        #expect(try fresh.put("c", "new", seq: 3) == 3)
        #expect(reader.missingSeqs(after: 0, through: 3) == 2)
        #expect(reader.window("c", limit: 10).0.positions.count == 1)
        #expect(reader.window("a", limit: 10).0.positions.isEmpty)
        #expect(!reader.holds(1, "a", "1", scratch: log.scratch))
    }

    @Test func reinitializeInPlaceOnAMemfdThroughItsMapping() throws {
        let geometry = try LogGeometry(capacityBytes: 1 << 16, maxSlots: 8)
        let log = try LogFile.createEphemeral(geometry: geometry, epoch: 0xABCD)
        defer {
            munmap(log.base, log.length)
            close(log.fd)
        }
        let region = try LogRegion.attach(base: log.base, length: log.length)
        #expect(region.epoch == 0xABCD)
        var writer = LogWriter(region: region)
        for k in 1...50 { try writer.append("slot\(k % 4)", String(repeating: "d", count: 300)) }
        try LogFile.reinitialize(region: region, fd: log.fd, epoch: 0xBEEF, upstreamCursor: (0, 0))
        // The same mapping reads the new log: empty, no slot, zero bytes where records were.
        let again = try LogRegion.attach(base: log.base, length: log.length)
        #expect(again.epoch == 0xBEEF)
        #expect(LogReader(region: again).headSeqAcquire() == 0)
        #expect(LogReader(region: again).findSlot("slot1") == nil)
        let body = UnsafeRawBufferPointer(start: log.base + geometry.directoryOffset,
                                          count: geometry.totalBytes - geometry.directoryOffset)
        #expect(body.allSatisfy { $0 == 0 })
        var next = LogWriter(region: again)
        #expect(try next.append("slot1", "after") == 1)
        #expect(LogReader(region: again).window("slot1", limit: 10).0.positions.count == 1)
    }

    @Test func aNewFileLogTakesTheGivenEpoch() throws {
        let dir = "/tmp/ringlog-cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(dir, 0o700)
        let path = dir + "/log"
        defer {
            unlink(path)
            rmdir(dir)
        }
        let geometry = try LogGeometry(capacityBytes: 8192, maxSlots: 8)
        let opened = try LogFile.openOrCreate(path: path, geometry: geometry, epoch: 0x5EED)
        defer {
            munmap(opened.base, opened.length)
            close(opened.fd)
        }
        #expect(opened.created)
        let region = try LogRegion.attach(base: opened.base, length: opened.length)
        #expect(region.epoch == 0x5EED)
        // Re-initialised in place through the file's mapping: the file reads as an empty log.
        var writer = LogWriter(region: region)
        for k in 1...30 { try writer.append("s\(k % 3)", String(repeating: "f", count: 100)) }
        try LogFile.reinitialize(region: region, fd: opened.fd, epoch: 0xF00D, upstreamCursor: (9, 1))
        var onDisk = [UInt8](repeating: 0xff, count: geometry.totalBytes)
        #expect(pread(opened.fd, &onDisk, onDisk.count, 0) == onDisk.count)
        #expect(onDisk[geometry.directoryOffset...].allSatisfy { $0 == 0 })
        let again = try LogRegion.attach(base: opened.base, length: opened.length)
        #expect(again.epoch == 0xF00D)
        #expect(again.upstreamCursor == (9, 1))
        #expect(LogReader(region: again).headSeqAcquire() == 0)
    }
}

@Suite struct ClusterLogConcurrencyTests {
    /// A writer thread records a gap at every even seq (the table wraps many times over) while
    /// this thread asks for ranges near and far behind the head: an answer is exact or nil,
    /// never a wrong count from an entry being overwritten.
    @Test func missingSeqsIsExactOrNilUnderARacingWriter() async throws {
        let log = HeapLog(capacityBytes: 1 << 14)
        let region = log.region
        let events: UInt64 = 40_000
        let writerTask = Task.detached {
            var writer = LogWriter(region: region, reuseRolledBackSeqs: true)
            var seq: UInt64 = 1
            try! writer.put("a", "x", seq: seq)
            for _ in 1..<events {
                seq += 2   // the seq between is a gap
                try! writer.put("a", "x", seq: seq)
            }
            return seq
        }
        let reader = log.reader
        var exact = 0, uncovered = 0, k: UInt64 = 0
        while true {
            let head = reader.headSeqAcquire()
            if head >= 2 * events - 1 { break }
            guard head > 1 else { continue }
            k &+= 7919
            // Far behind (often uncovered) and near the head (always covered).
            let span = k % 2 == 0 ? k % 400 : k % 40
            let after = head > span ? head - span : 0
            let through = head
            // Even seqs in (after, through] up to head - 1 (the head itself is an event).
            let expected = (through / 2) - (after / 2)
            if let missing = reader.missingSeqs(after: after, through: through) {
                #expect(missing == expected, "after \(after) through \(through)")
                exact += 1
            } else {
                // Uncovered only when the range reaches below the table's trusted entries at
                // the end of the call (gap n is seq 2n + 2; the newest 126 are trusted).
                uncovered += 1
                let countAfter = region.gapCount
                #expect(after < 2 * countAfter - 250, "after \(after), \(countAfter) gaps: must be covered")
            }
        }
        _ = await writerTask.value
        #expect(exact > 0)
        _ = uncovered
    }
}
