import CRinggateSys
import Testing
@testable import RingLog

@Suite struct CRCRecoveryTests {
    @Test func crc32cMatchesTheKnownVector() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { rg_crc32c_update(0, $0.baseAddress!, $0.count) } == 0xE306_9283)
        // Incremental = one shot.
        let split = bytes.withUnsafeBytes { b in rg_crc32c_update(rg_crc32c_update(0, b.baseAddress!, 4), b.baseAddress! + 4, 5) }
        #expect(split == 0xE306_9283)
    }

    @Test func damagedRecordCutsTheLogThere() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 1...6 { try writer.append(i % 2 == 0 ? "even" : "odd", "event \(i)") }
        let damaged = try #require(reader.position(ofSeq: 4))
        // One flipped bit in the data of seq 4, as a power loss that kept a stale page would leave.
        let byte = log.region.recordPointer(damaged) + LogDescriptor.Record.headerLength + 4 + 1 + 2
        byte.storeU8(0, byte.loadU8(0) ^ 0x01)
        var restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.damagedPosition == damaged)
        #expect(restarted.recovery.recordsVerified == 3)
        #expect(reader.seqs(reader.window("even", limit: 10).0.positions, scratch: log.scratch) == [2])
        #expect(reader.seqs(reader.window("odd", limit: 10).0.positions, scratch: log.scratch) == [1, 3])
        #expect(reader.position(ofSeq: 4) == nil)
        // Seqs handed out before the cut are never reused.
        let next = try restarted.append("even", "after")
        #expect(next == 7)
        #expect(reader.seqs(reader.window("even", limit: 10).0.positions, scratch: log.scratch) == [2, 7])
        #expect(reader.findSlot("even")?.count == 2)
    }

    @Test func cleanRestartVerifiesEverythingAndChangesNothing() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        for i in 0..<100 { try writer.append("s\(i % 3)", "payload \(i)") }  // wraps several times
        let tail = log.reader.tailAcquire()
        let restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.damagedPosition == nil && !restarted.recovery.rolledBackBatch)
        #expect(restarted.recovery.discardedBytes == 0 && restarted.recovery.recordsVerified > 0)
        #expect(log.reader.tailAcquire() == tail)
        #expect(log.reader.headSeqAcquire() == 100)
    }
}
