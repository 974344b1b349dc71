import Testing
@testable import RingLog

/// Finding 8: one framing rule for readers, the oldest walk and recovery, and readers check the
/// crc: a record whose bytes are intact in place but wrong is `.damaged`, never delivered.
@Suite struct RecordFramingTests {
    typealias R = LogDescriptor.Record

    @Test func crcMismatchOnAnIntactRecordIsDamageNotALap() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        for i in 1...3 { try writer.append("a", "event \(i)") }
        let position = try #require(log.reader.position(ofSeq: 2))
        let byte = log.region.recordPointer(position) + R.headerLength + 1 + 1 + 2   // in "event 2"
        byte.storeU8(0, byte.loadU8(0) ^ 0x20)
        guard case .damaged(let d) = log.reader.copyRecord(at: position, into: log.scratch) else {
            Issue.record("a record whose crc does not match must read as damaged"); return
        }
        #expect(d.position == position && d.seq == 2, "its header is sound: seq known")
        #expect(log.reader.event(at: try #require(log.reader.position(ofSeq: 3)), scratch: log.scratch)?.data == "event 3")
    }

    @Test func readersAndRecoveryAgreeOnAnEmptySlotName() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        for i in 1...3 { try writer.append("a", "event \(i)") }
        let position = try #require(log.reader.position(ofSeq: 2))
        // A header with nameLength 0 whose lengths still add up and whose crc matches: only
        // the framing rule can refuse it.
        let record = log.region.recordPointer(position)
        record.storeU8(R.typeLengthOffset, record.loadU8(R.typeLengthOffset) + record.loadU8(R.nameLengthOffset))
        record.storeU8(R.nameLengthOffset, 0)
        record.storeU32(R.crcOffset, LogWriter.crc(record, length: Int(record.loadU32(R.lengthOffset))))
        guard case .damaged = log.reader.copyRecord(at: position, into: log.scratch) else {
            Issue.record("a reader must refuse what recovery refuses"); return
        }
        let restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.damagedPosition == position)
    }
}
