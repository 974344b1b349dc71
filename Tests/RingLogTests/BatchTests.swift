import CRinggateSys
import Glibc
import Testing
@testable import RingLog

extension LogWriter {
    @discardableResult
    mutating func stage(_ slot: String, _ data: String = "", type: String = "m") throws(AppendError) -> UInt64 {
        let s = Array(slot.utf8), t = Array(type.utf8), d = Array(data.utf8)
        let result: Result<UInt64, AppendError> = s.withUnsafeBytes { sp in
            t.withUnsafeBytes { tp in
                d.withUnsafeBytes { dp in
                    do throws(AppendError) {
                        return .success(try self.stage(slot: sp, type: tp, data: dp, timeMilliseconds: 0))
                    } catch {
                        return .failure(error)
                    }
                }
            }
        }
        return try result.get()
    }
}

extension LogBatchCheck {
    mutating func add(_ slot: String, dataBytes: Int) -> Failure? {
        Array(slot.utf8).withUnsafeBytes { add(slot: $0, typeBytes: 1, dataBytes: dataBytes) }
    }
}

@Suite struct BatchTests {
    @Test func stagedRecordsAreInvisibleUntilCommit() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", "first")
        writer.beginBatch()
        try writer.stage("a", "second")
        try writer.stage("b", "third")
        #expect(reader.headSeqAcquire() == 1)
        #expect(reader.position(ofSeq: 2) == nil)
        #expect(reader.seqs(reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1])
        #expect(reader.window("b", limit: 10).0.positions.isEmpty)
        writer.commit()
        #expect(reader.headSeqAcquire() == 3)
        #expect(reader.seqs(reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1, 2])
        #expect(reader.seqs(reader.window("b", limit: 10).0.positions, scratch: log.scratch) == [3])
    }

    @Test func rollbackRestoresDirectoryAndSeqs() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", "first")
        let before = try #require(reader.findSlot("a"))
        writer.beginBatch()
        try writer.stage("a", "second")
        try writer.stage("new", "third")
        writer.rollback()
        #expect(reader.findSlot("a") == before)
        #expect(reader.findSlot("new") == nil)
        #expect(reader.headSeqAcquire() == 1)
        #expect(try writer.append("a", "again") == 2)
        let position = try #require(reader.position(ofSeq: 2))
        let e = try #require(reader.event(at: position, scratch: log.scratch))
        #expect(e.data == "again" && e.ordinal == 2)
    }

    @Test func rollbackUndoesTombstonesOfTheBatch() throws {
        let log = HeapLog(capacityBytes: 4096, maxSlots: 2)
        var writer = LogWriter(region: log.region)
        try writer.append("a", "old")
        for _ in 0..<60 { try writer.append("b", "123456") }   // laps the ring: "a" is dead
        #expect(log.reader.liveSlotsAcquire() == 2)
        writer.beginBatch()
        try writer.stage("c", "new")                            // sweeps "a" to make room
        writer.rollback()
        #expect(log.reader.findSlot("c") == nil)
        #expect(log.reader.findSlot("a") != nil)
        #expect(log.reader.liveSlotsAcquire() == 2)
        // The directory is as before: a new slot still finds the dead entry to recycle.
        try writer.append("d", "after")
        #expect(log.reader.findSlot("d")?.count == 1)
        #expect(log.reader.findSlot("a") == nil)
    }

    @Test func unfinishedBatchIsRolledBackByTheNextWriter() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", "first")
        let before = try #require(reader.findSlot("a"))
        writer.beginBatch()
        for i in 0..<5 { try writer.stage(i % 2 == 0 ? "a" : "fresh", "line \(i)") }
        // The writer dies here: nothing committed.
        var restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.rolledBackBatch)
        #expect(restarted.recovery.damagedPosition == nil)
        #expect(restarted.recovery.rewoundSlots == 2)
        // Seqs 2...6 are intact past the tail: the scan cannot tell them from events a reader
        // saw (a header page older than its data), so they are skipped, never reused.
        #expect(restarted.recovery.seqsSkippedPastTail == 5)
        #expect(reader.headSeqAcquire() == 6)
        #expect(reader.position(ofSeq: 2) == nil)
        #expect(reader.findSlot("a") == before)
        #expect(reader.findSlot("fresh") == nil)
        #expect(reader.seqs(reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1])
        #expect(try restarted.append("a", "after") == 7)
        #expect(reader.seqs(reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1, 7])
        #expect(reader.findSlot("a")?.count == 2)
    }

    @Test func batchCheckRefusesWhatCannotFitWhole() throws {
        let log = HeapLog(capacityBytes: 4096, maxSlots: 2)
        var writer = LogWriter(region: log.region)
        try writer.append("a", "x")
        var ok = LogBatchCheck(writer: writer)
        #expect(ok.add("a", dataBytes: 10) == nil)
        #expect(ok.add("b", dataBytes: 10) == nil)
        #expect(ok.finish() == nil)

        var slots = LogBatchCheck(writer: writer)
        _ = slots.add("b", dataBytes: 1)
        _ = slots.add("c", dataBytes: 1)
        #expect(slots.finish() == .slotDirectoryFull(newSlots: 2, free: 1))

        var big = LogBatchCheck(writer: writer)
        #expect(big.add("a", dataBytes: 2000) == .recordTooLarge(line: 1, maxRecordBytes: 1024))

        var long = LogBatchCheck(writer: writer)
        for _ in 0..<5 { _ = long.add("a", dataBytes: 800) }  // 5 x 896 bytes > 4096
        guard case .batchTooLarge(let needed, 4096) = long.finish() else {
            Issue.record("a batch larger than the ring must be refused"); return
        }
        #expect(needed >= 5 * 896)
    }

    // Finding 7: the directory is full, X is dead, the batch names X and a new Y. Staging X
    // revives X, so Y finds no entry: the check must refuse the batch up front.
    @Test func batchCheckRefusesWhatStagingWouldFailHalfWay() throws {
        let log = HeapLog(capacityBytes: 4096, maxSlots: 2)
        var writer = LogWriter(region: log.region)
        try writer.append("x", "old")
        for _ in 0..<60 { try writer.append("z", "123456") }   // laps the ring: x is dead
        #expect(log.reader.liveSlotsAcquire() == 2)
        var check = LogBatchCheck(writer: writer)
        _ = check.add("x", dataBytes: 1)
        _ = check.add("y", dataBytes: 1)
        #expect(check.finish() == .slotDirectoryFull(newSlots: 2, free: 1))
        // What staging the batch would do: x revives its entry, then y finds none.
        writer.beginBatch()
        try writer.stage("x", "1")
        #expect(throws: LogWriter.AppendError.slotDirectoryFull) { try writer.stage("y", "1") }
        writer.rollback()
    }
}
