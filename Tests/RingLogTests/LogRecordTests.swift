import CRinggateSys
import Testing
@testable import RingLog

@Suite struct LogRecordTests {
    let payload200 = String(repeating: "x", count: 200)  // record 88+1+1+200 = 290 -> 296 bytes

    @Test func appendsAndReadsInOrder() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        #expect(reader.headSeqAcquire() == 0)
        #expect(reader.oldestSeqAcquire() == 0)
        #expect(try writer.append("a", "hello", type: "greet", time: 42) == 1)
        #expect(try writer.append("b", "") == 2)
        #expect(try writer.append("a", "again") == 3)
        #expect(writer.headSeq == 3)
        #expect(reader.headSeqAcquire() == 3)
        #expect(reader.oldestSeqAcquire() == 1)
        var position: UInt64 = 0
        var seen: [LogReader.Event] = []
        while let e = reader.event(at: position, scratch: log.scratch) {
            seen.append(e)
            position = e.nextPosition
        }
        #expect(seen.map(\.seq) == [1, 2, 3])
        #expect(seen[0].slot == "a" && seen[0].type == "greet" && seen[0].data == "hello")
        #expect(seen[1].data == "" && seen[1].ordinal == 1)
        #expect(seen[2].ordinal == 2)
        #expect(position == reader.tailAcquire())
        if case .notYetWritten = reader.copyRecord(at: position, into: log.scratch) {} else { Issue.record("expected notYetWritten") }
        #expect(reader.latestAcquire() == seen[2].nextPosition - 96)
    }

    @Test func wrapWritesPaddingAndReaderSeesIt() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<13 { try writer.append("a", payload200) }
        #expect(reader.tailAcquire() == 13 * 296)  // 3848; 248 bytes left < 296
        try writer.append("a", payload200)
        #expect(reader.tailAcquire() == 4096 + 296)
        guard case .padding(let next) = reader.copyRecord(at: 3848, into: log.scratch) else {
            Issue.record("expected padding at the end of the lap"); return
        }
        #expect(next == 4096)
        let e = try #require(reader.event(at: 4096, scratch: log.scratch))
        #expect(e.seq == 14)
        // The wrap overwrote the record at 0: oldest moved past it.
        #expect(reader.oldestPositionAcquire() == 296)
        #expect(reader.oldestSeqAcquire() == 2)
    }

    @Test func shortTailOfLapIsImplicitPadding() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        // 96-byte records (88 + 1 + 1 + 6): 42 of them end at 4032, 64 bytes (< header) remain.
        for _ in 0..<42 { try writer.append("a", "123456") }
        #expect(reader.tailAcquire() == 4032)
        try writer.append("a", "123456")
        guard case .padding(let next) = reader.copyRecord(at: 4032, into: log.scratch) else {
            Issue.record("expected implicit padding"); return
        }
        #expect(next == 4096)
        #expect(reader.event(at: 4096, scratch: log.scratch)?.seq == 43)
    }

    @Test func readerLappedBeforeItReads() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        try writer.append("a", payload200)
        #expect(reader.event(at: 0, scratch: log.scratch)?.seq == 1)
        for _ in 0..<13 { try writer.append("a", payload200) }
        if case .lapped = reader.copyRecord(at: 0, into: log.scratch) {} else { Issue.record("expected lapped") }
        // The second record is still intact.
        #expect(reader.event(at: 296, scratch: log.scratch)?.seq == 2)
        // Lapped twice: position of the first lap's record 296 after two more laps.
        for _ in 0..<30 { try writer.append("a", payload200) }
        if case .lapped = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("expected lapped") }
        if case .lapped = reader.copyRecord(at: 4096, into: log.scratch) {} else { Issue.record("expected lapped") }
    }

    @Test func recordOverwrittenWhileBeingCopiedIsLapped() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<5 { try writer.append("a", payload200) }
        var overwrote = false
        let result = reader.copyRecord(at: 296, into: log.scratch) {
            // The writer laps the reader between its copy and its re-check.
            for _ in 0..<14 { try! writer.append("b", String(repeating: "y", count: 200)) }
            overwrote = true
        }
        #expect(overwrote)
        if case .lapped = result {} else { Issue.record("a torn copy was returned: \(result)") }
        // Without interference the same kind of copy succeeds.
        let tail = reader.latestAcquire()
        #expect(reader.event(at: tail, scratch: log.scratch)?.slot == "b")
    }

    @Test func garbageLengthIsBounded() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<3 { try writer.append("a", payload200) }
        let record = log.region.recordPointer(296)
        record.storeU32(0, 0xFFFF_FFFF)
        if case .damaged = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("huge length accepted") }
        record.storeU32(0, 290)
        record.storeU8(6, 200)  // name length inconsistent with the total
        if case .damaged = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("bad lengths accepted") }
        record.storeU8(6, 1)
        record.storeU64(8, 12345)  // position field wrong
        if case .damaged = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("bad position accepted") }
        record.storeU64(8, 296)
        record.storeU16(4, 9)  // unknown kind
        if case .damaged = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("bad kind accepted") }
        record.storeU16(4, 2)
        record.storeU32(0, 100_000)  // padding longer than the lap
        if case .damaged = reader.copyRecord(at: 296, into: log.scratch) {} else { Issue.record("long padding accepted") }
    }

    @Test func randomGarbageNeverCrashesReaders() throws {
        let log = HeapLog(capacityBytes: 8192, maxSlots: 4)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        var random = TestRandom(state: 0x9E37_79B9_7F4A_7C15)
        for i in 0..<60 { try writer.append(["a", "b", "c"][i % 3], String(repeating: "z", count: i * 7 % 300)) }
        let g = log.region.geometry
        for round in 0..<300 {
            // Corrupt a few random bytes of the data region, index and directory.
            for _ in 0..<(1 + round % 16) {
                let area = Int(random.next() % 3)
                let (start, size) = [(g.dataOffset, g.capacityBytes), (g.indexOffset, g.indexEntries * 8),
                                     (g.directoryOffset, g.directoryEntries * LogDescriptor.Directory.entryLength)][area]
                let at = start + Int(random.next() % UInt64(size))
                log.base.storeBytes(of: UInt8(truncatingIfNeeded: random.next()), toByteOffset: at, as: UInt8.self)
            }
            var position = reader.tailAcquire() > 8192 ? reader.tailAcquire() - 8192 : 0
            while position < reader.tailAcquire() {
                _ = reader.copyRecord(at: position, into: log.scratch)
                position += 8
            }
            for seq in 0...writer.headSeq + 1 { _ = reader.position(ofSeq: seq) }
            for name in ["a", "b", "c", "d"] {
                _ = reader.findSlot(name)
                _ = reader.window(name, limit: 5)
                _ = reader.window(name, after: 3, limit: 5)
            }
        }
    }
}
