import CRinggateSys
import Testing
@testable import RingLog

@Suite struct WindowTests {
    /// a and b interleaved: a has odd seqs 1, 3, 5, ..., b even seqs.
    func interleaved(_ count: Int, capacityBytes: Int = 1 << 20) throws -> HeapLog {
        let log = HeapLog(capacityBytes: capacityBytes)
        var writer = LogWriter(region: log.region)
        for i in 1...count { try writer.append(i % 2 == 1 ? "a" : "b", "\(i)") }
        return log
    }

    @Test func newestEvents() throws {
        let log = try interleaved(100)
        let reader = log.reader
        let (w, _) = reader.window("a", limit: 5)
        #expect(reader.seqs(w.positions, scratch: log.scratch) == [91, 93, 95, 97, 99])
        #expect(!w.reset && w.dropped == nil)
        #expect(w.slotOldestSeq == 1 && w.slotHeadSeq == 99)
        let (all, _) = reader.window("b", limit: 1000)
        #expect(reader.seqs(all.positions, scratch: log.scratch) == Array(stride(from: 2, through: 100, by: 2)))
        #expect(reader.window("nope", limit: 5).0 == LogReader.Window())
        #expect(reader.window("a", limit: 0).0.positions.isEmpty)
    }

    @Test func afterAndLimitAreExact() throws {
        let log = try interleaved(100)
        let reader = log.reader
        #expect(reader.seqs(reader.window("a", after: 19, limit: 3).0.positions, scratch: log.scratch) == [21, 23, 25])
        #expect(reader.seqs(reader.window("a", after: 20, limit: 3).0.positions, scratch: log.scratch) == [21, 23, 25])
        #expect(reader.seqs(reader.window("a", after: 0, limit: 2).0.positions, scratch: log.scratch) == [1, 3])
        #expect(reader.seqs(reader.window("a", after: 95, limit: 10).0.positions, scratch: log.scratch) == [97, 99])
        #expect(reader.window("a", after: 99, limit: 10).0.positions.isEmpty)
        #expect(reader.window("a", after: 500, limit: 10).0.positions.isEmpty)
    }

    @Test func maxSeqBoundsBothModes() throws {
        let log = try interleaved(100)
        let reader = log.reader
        #expect(reader.seqs(reader.window("a", limit: 3, maxSeq: 50).0.positions, scratch: log.scratch) == [45, 47, 49])
        #expect(reader.seqs(reader.window("a", after: 40, limit: 10, maxSeq: 47).0.positions, scratch: log.scratch) == [41, 43, 45, 47])
        #expect(reader.window("a", after: 40, limit: 10, maxSeq: 40).0.positions.isEmpty)
        #expect(reader.window("a", limit: 3, maxSeq: 0).0.positions.isEmpty)
        #expect(reader.seqs(reader.window("a", limit: 3, maxSeq: 1).0.positions, scratch: log.scratch) == [1])
    }

    @Test func resetWithExactDroppedWhenAfterWasOverwritten() throws {
        let log = try interleaved(200, capacityBytes: 4096)  // 96-byte records: ~42 retained
        let reader = log.reader
        let oldest = reader.oldestSeqAcquire()
        #expect(oldest > 100)
        let (w, _) = reader.window("a", after: 11, afterOrdinal: 6, limit: 3)
        #expect(w.reset)
        let firstA = oldest % 2 == 1 ? oldest : oldest + 1
        #expect(reader.seqs(w.positions, scratch: log.scratch) == [firstA, firstA + 2, firstA + 4])
        // a's ordinal k has seq 2k - 1; events with ordinals 7 ..< ordinal(firstA) were lost.
        #expect(w.dropped == (firstA + 1) / 2 - 6 - 1)
        #expect(w.slotOldestSeq == firstA && w.slotHeadSeq == 199)
        let (noOrdinal, _) = reader.window("a", after: 11, limit: 3)
        #expect(noOrdinal.reset && noOrdinal.dropped == nil)
        // after is just before the oldest retained a: nothing lost.
        let (exact, _) = reader.window("a", after: firstA - 2, limit: 3)
        #expect(!exact.reset)
        #expect(reader.seqs(exact.positions, scratch: log.scratch) == [firstA, firstA + 2, firstA + 4])
    }

    @Test func noResetWhenOnlyOtherSlotsWereOverwritten() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", "first")                        // seq 1
        for _ in 0..<20 { try writer.append("b", "bbbbbb") }   // 2...21
        try writer.append("a", "second")                       // 22
        for _ in 0..<30 { try writer.append("b", "bbbbbb") }   // 23...52: seqs 1..~10 overwritten
        #expect(reader.oldestSeqAcquire() > 5)
        #expect(reader.position(ofSeq: 1) == nil)
        // after = 5 (a b event, overwritten): a's events after 5 are all retained.
        let (w, _) = reader.window("a", after: 5, limit: 10)
        #expect(!w.reset)
        #expect(reader.seqs(w.positions, scratch: log.scratch) == [22])
        // after = 0: seq 1 (a) is gone, so that is a reset.
        let (w0, _) = reader.window("a", after: 0, afterOrdinal: 0, limit: 10)
        #expect(w0.reset && w0.dropped == 1)
    }

    @Test func searchIsLogarithmicInSlotSize() throws {
        let log = HeapLog(capacityBytes: 1 << 24)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        let count = 100_000
        // Mostly slot s; every 10th event goes to t so seqs and ordinals differ.
        var sSeqs: [UInt64] = []
        for i in 0..<count + count / 9 {
            if i % 10 == 9 { try writer.append("t", "t") } else { sSeqs.append(try writer.append("s", "12345678")) }
        }
        #expect(reader.oldestSeqAcquire() == 1)
        var worst = 0
        for k in [0, 1, 2, 17, 1000, 31_337, 50_000, 65_535, 65_536, 99_990, sSeqs.count - 2] {
            let (w, hops) = reader.window("s", after: sSeqs[k], limit: 5)
            #expect(reader.seqs(w.positions, scratch: log.scratch) == Array(sSeqs[(k + 1)...].prefix(5)))
            worst = max(worst, hops)
            let (w2, hops2) = reader.window("s", after: sSeqs[k] + 1, limit: 3)
            #expect(reader.seqs(w2.positions, scratch: log.scratch) == Array(sSeqs[(k + 1)...].filter { $0 > sSeqs[k] + 1 }.prefix(3)))
            worst = max(worst, hops2)
            let (w3, hops3) = reader.window("s", limit: 4, maxSeq: sSeqs[k])
            #expect(reader.seqs(w3.positions, scratch: log.scratch) == Array(sSeqs[...k].suffix(4)))
            worst = max(worst, hops3)
        }
        #expect(worst < 200, "worst search took \(worst) link hops")
        let (newest, hops) = reader.window("s", limit: 10)
        #expect(reader.seqs(newest.positions, scratch: log.scratch) == Array(sSeqs.suffix(10)))
        #expect(hops < 200)
    }

    @Test func searchStaysCorrectAfterWrapping() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        var aSeqs: [UInt64] = []
        var random = TestRandom(state: 12345)
        for _ in 0..<20_000 {
            if random.next() % 3 == 0 { aSeqs.append(try writer.append("a", String(repeating: "p", count: Int(random.next() % 64)))) }
            else { try writer.append("b", "b") }
        }
        let oldest = reader.oldestSeqAcquire()
        let retained = aSeqs.filter { $0 >= oldest }
        #expect(retained.count > 10)
        let (all, _) = reader.window("a", limit: 100_000)
        #expect(reader.seqs(all.positions, scratch: log.scratch) == retained)
        var worst = 0
        for k in stride(from: 0, to: retained.count - 1, by: 7) {
            let (w, hops) = reader.window("a", after: retained[k], limit: 4)
            #expect(!w.reset)
            #expect(reader.seqs(w.positions, scratch: log.scratch) == Array(retained[(k + 1)...].prefix(4)))
            worst = max(worst, hops)
        }
        let (lost, _) = reader.window("a", after: aSeqs[0], limit: 2)
        #expect(lost.reset)
        #expect(reader.seqs(lost.positions, scratch: log.scratch) == Array(retained.prefix(2)))
        #expect(worst < 200)
    }

    @Test func recordPublishedInDirectoryButNotYetInTailIsLeftOut() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<5 { try writer.append("a", "x") }
        let tail = reader.tailAcquire()
        try writer.append("a", "y")
        // Freeze the moment between the slot directory update and the `tail` store.
        log.region.storeRelease(LogDescriptor.tailOffset, tail)
        let (newest, _) = reader.window("a", limit: 3)
        #expect(reader.seqs(newest.positions, scratch: log.scratch) == [3, 4, 5])
        #expect(!newest.reset)
        let (after, _) = reader.window("a", after: 4, limit: 3)
        #expect(reader.seqs(after.positions, scratch: log.scratch) == [5])
        #expect(!after.reset)
        #expect(reader.window("a", after: 5, limit: 3).0.positions.isEmpty)
        #expect(reader.position(ofSeq: 6) == nil)
    }
}
