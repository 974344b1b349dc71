import CRinggateSys
import Testing
@testable import RingLog

/// A record damaged in place (intact, but failing validation) is told apart from a lap, and a
/// sequential reader can step past it through the seq index.
@Suite struct DamagedRecordTests {
    typealias R = LogDescriptor.Record

    /// 20 events in slot "a" (seq 1...20), every one 96 bytes; returns their positions.
    func twentyEvents(_ log: HeapLog) throws -> [UInt64] {
        var writer = LogWriter(region: log.region)
        var positions: [UInt64] = []
        for i in 1...20 {
            positions.append(writer.tailPosition)
            try writer.append("a", "e\(i)")
        }
        return positions
    }

    @Test func corruptDataLengthIsDamagedNotLapped() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        let positions = try twentyEvents(log)
        let reader = log.reader
        let record = log.region.recordPointer(positions[9])
        record.storeU32(R.dataLengthOffset, record.loadU32(R.dataLengthOffset) + 1)
        for _ in 0..<2 {   // the same answer every time: nothing to wait for, unlike a lap
            guard case .damaged(let damaged) = reader.copyRecord(at: positions[9], into: log.scratch) else {
                Issue.record("expected .damaged for a record whose lengths disagree"); return
            }
            #expect(damaged == LogReader.DamagedRecord(position: positions[9], seq: 10, slotOrdinal: 10))
        }
        // Its neighbours are fine.
        #expect(reader.event(at: positions[8], scratch: log.scratch)?.seq == 9)
        #expect(reader.event(at: positions[10], scratch: log.scratch)?.seq == 11)
    }

    @Test func overwrittenRecordIsStillLapped() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", "first")
        for _ in 0..<60 { try writer.append("a", "later") }
        if case .lapped = reader.copyRecord(at: 0, into: log.scratch) {} else {
            Issue.record("an overwritten record must be .lapped, not .damaged")
        }
    }

    @Test func resumePointIsTheNextIntactEvent() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        let positions = try twentyEvents(log)
        let reader = log.reader
        log.region.recordPointer(positions[9]).storeU32(R.lengthOffset, 0xFFFF_FFF0)   // length garbage
        guard case .damaged(let damaged) = reader.copyRecord(at: positions[9], into: log.scratch) else {
            Issue.record("expected .damaged"); return
        }
        #expect(damaged.seq == 10)
        let resume = reader.resumePoint(after: damaged, lastSeq: 9)
        #expect(resume.position == positions[10] && resume.throughSeq == 10)
        // Reading on from there delivers 11...20 and ends at the tail.
        var position = resume.position
        var seqs: [UInt64] = []
        while let e = reader.event(at: position, scratch: log.scratch) {
            seqs.append(e.seq)
            position = e.nextPosition
        }
        #expect(seqs == Array(11...20))
        #expect(position == reader.tailAcquire())
    }

    @Test func headerWithoutItsPositionHasNoSeqButIsStillSkipped() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        let positions = try twentyEvents(log)
        let reader = log.reader
        log.region.recordPointer(positions[9]).storeU64(R.positionOffset, 12345)
        guard case .damaged(let damaged) = reader.copyRecord(at: positions[9], into: log.scratch) else {
            Issue.record("expected .damaged"); return
        }
        #expect(damaged.seq == nil && damaged.slotOrdinal == nil)
        let resume = reader.resumePoint(after: damaged, lastSeq: 9)
        #expect(resume.position == positions[10] && resume.throughSeq == 10)
    }

    @Test func damagedNewestRecordResumesAtTheTail() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        let positions = try twentyEvents(log)
        let reader = log.reader
        let record = log.region.recordPointer(positions[19])
        record.storeU32(R.dataLengthOffset, 0)
        guard case .damaged(let damaged) = reader.copyRecord(at: positions[19], into: log.scratch) else {
            Issue.record("expected .damaged"); return
        }
        let resume = reader.resumePoint(after: damaged, lastSeq: 19)
        #expect(resume.position == reader.tailAcquire() && resume.throughSeq == 20)
        if case .notYetWritten = reader.copyRecord(at: resume.position, into: log.scratch) {} else {
            Issue.record("the resume point of a damaged newest record must be the tail")
        }
    }

    @Test func windowsStillNameTheDamagedRecord() throws {
        // The window walk validates headers only, so a record whose lengths are damaged is in
        // the window: whoever copies the window's records must expect .damaged there.
        let log = HeapLog(capacityBytes: 1 << 16)
        let positions = try twentyEvents(log)
        let reader = log.reader
        log.region.recordPointer(positions[9]).storeU32(R.dataLengthOffset, 999)
        let (window, _) = reader.window("a", after: 5, limit: 10)
        #expect(window.positions == Array(positions[5..<15]))
        #expect(!window.reset)
    }
}
