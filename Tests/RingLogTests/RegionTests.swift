import CRinggateSys
import Glibc
import Testing
@testable import RingLog

@Suite struct RegionTests {
    @Test func geometryIsValidated() throws {
        #expect(throws: LogError.self) { try LogGeometry(capacityBytes: 4095, maxSlots: 8) }
        #expect(throws: LogError.self) { try LogGeometry(capacityBytes: 2048, maxSlots: 8) }
        #expect(throws: LogError.self) { try LogGeometry(capacityBytes: 4096, maxSlots: 3) }
        #expect(throws: LogError.self) { try LogGeometry(capacityBytes: 4096, maxSlots: 0) }
        let g = try LogGeometry(capacityBytes: 1 << 20, maxSlots: 64)
        #expect(g.directoryEntries == 128)
        #expect(g.indexEntries == (1 << 20) / 64)
        #expect(g.dataOffset % 4096 == 0)
        #expect(g.totalBytes == g.dataOffset + (1 << 20))
    }

    @Test func attachChecksHeader() throws {
        let log = HeapLog(capacityBytes: 8192, maxSlots: 16, epoch: 99)
        let attached = try LogRegion.attach(base: log.base, length: log.length)
        #expect(attached.geometry == log.region.geometry)
        #expect(attached.epoch == 99)
        #expect(LogRegion.peekGeometry(base: log.base, length: log.length) == log.region.geometry)
        #expect(throws: LogError.regionTooSmall(needed: log.length, have: log.length - 1)) {
            try LogRegion.attach(base: log.base, length: log.length - 1)
        }
        log.base.storeU32(LogDescriptor.versionOffset, 77)
        #expect(throws: LogError.unsupportedVersion(77)) { try LogRegion.attach(base: log.base, length: log.length) }
        log.base.storeU64(LogDescriptor.magicOffset, 1)
        #expect(throws: LogError.badMagic) { try LogRegion.attach(base: log.base, length: log.length) }
        #expect(LogRegion.peekGeometry(base: log.base, length: log.length) == nil)
        #expect("\(LogError.badMagic)".contains("not a ring log"))
    }

    @Test func countersSurviveReattachAndWriterRestart() throws {
        let log = HeapLog()
        let p = log.region.counterPointer(process: 127, counter: 63)
        rg_store_release_u64(p, 41)
        _ = rg_fetch_add_relaxed_u64(p, 1)
        rg_store_release_u64(log.region.counterPointer(process: 0, counter: 0), 5)
        var writer = LogWriter(region: log.region)
        try writer.append("a", "x")
        let again = try LogRegion.attach(base: log.base, length: log.length)
        _ = LogWriter(region: again)
        #expect(rg_load_acquire_u64(again.counterPointer(process: 127, counter: 63)) == 42)
        #expect(rg_load_acquire_u64(again.counterPointer(process: 0, counter: 0)) == 5)
        // Counters sit outside the hot header fields and the data.
        let end = again.counterPointer(process: 127, counter: 63) + 8
        #expect(end <= log.base + again.geometry.directoryOffset)
        #expect(LogReader(region: again).event(at: 0, scratch: log.scratch)?.data == "x")
    }
}

@Suite struct RecoveryTests {
    @Test func tornTailIsCoveredWithPadding() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<3 { try writer.append("a", "123456") }  // 96 bytes each
        let tail = reader.tailAcquire()
        #expect(tail == 288)
        // A writer died after claiming 200 bytes and writing half a header.
        log.region.storeRelease(LogDescriptor.tailIntentOffset, tail + 200)
        memset(log.region.recordPointer(tail), 0xAB, 40)
        var restarted = LogWriter(region: log.region)
        #expect(reader.tailAcquire() == tail + 200)
        #expect(reader.tailIntentAcquire() == tail + 200)
        guard case .padding(let next) = reader.copyRecord(at: tail, into: log.scratch) else {
            Issue.record("torn range must read as padding"); return
        }
        #expect(next == tail + 200)
        #expect(try restarted.append("a", "after") == 4)
        let e = try #require(reader.event(at: tail + 200, scratch: log.scratch))
        #expect(e.seq == 4 && e.ordinal == 4 && e.data == "after")
        #expect(reader.seqs(reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1, 2, 3, 4])
    }

    @Test func tornTailAcrossTheWrapIsCovered() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<42 { try writer.append("a", "123456") }  // tail 4032
        let tail = reader.tailAcquire()
        log.region.storeRelease(LogDescriptor.tailIntentOffset, 4096 + 96)  // pad 64 + a record at 4096
        memset(log.region.recordPointer(4096), 0xCD, 96)
        var restarted = LogWriter(region: log.region)
        #expect(reader.tailAcquire() == 4096 + 96)
        guard case .padding(let first) = reader.copyRecord(at: tail, into: log.scratch),
              case .padding(let second) = reader.copyRecord(at: first, into: log.scratch)
        else { Issue.record("expected padding"); return }
        #expect(first == 4096 && second == 4096 + 96)
        #expect(try restarted.append("a", "next") == 43)
        #expect(reader.event(at: 4096 + 96, scratch: log.scratch)?.seq == 43)
    }

    @Test func completeButUncommittedRecordIsRolledBack() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for _ in 0..<3 { try writer.append("a", "123456") }
        let tail = reader.tailAcquire(), latest = reader.latestAcquire()
        try writer.append("a", "last")
        // The writer died after the slot directory update, before latest/nextSeq/tail: nobody
        // was told about the record, so it is rolled back, never half shown.
        log.region.storeRelease(LogDescriptor.tailOffset, tail)
        log.region.storeRelease(LogDescriptor.latestOffset, latest)
        log.region.storeRelease(LogDescriptor.nextSeqOffset, 4)
        let restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.rolledBackBatch)
        // Its seq is not reused: an intact record past `tail` may be one a reader saw (a
        // header page older than its data), so the scan moves `nextSeq` past it.
        #expect(restarted.recovery.seqsSkippedPastTail == 1)
        #expect(restarted.headSeq == 4)
        #expect(reader.headSeqAcquire() == 4)
        #expect(reader.position(ofSeq: 4) == nil)
        #expect(reader.findSlot("a")?.count == 3)
        guard case .padding = reader.copyRecord(at: tail, into: log.scratch) else {
            Issue.record("the rolled-back record must read as padding"); return
        }
    }

    @Test func oddSeqlockIsRepaired() throws {
        let log = HeapLog()
        var writer = LogWriter(region: log.region)
        try writer.append("a", "1")
        let info = try #require(log.reader.findSlot("a"))
        let entry = log.region.directoryEntry(Int(info.index))
        rg_store_release_u32(entry, entry.loadU32(0) | 1)
        #expect(log.reader.findSlot("a") == nil)  // bounded retries, no hang
        _ = LogWriter(region: log.region)
        #expect(log.reader.findSlot("a") == info)
    }
}

@Suite struct LogFileTests {
    @Test func createReopenAndMismatch() throws {
        let dir = "/tmp/ringlog-test-\(getpid())-\(rg_monotonic_ns())"
        #expect(mkdir(dir, 0o700) == 0)
        defer { rmdir(dir) }
        let path = dir + "/ring.log"
        defer { unlink(path) }
        let geometry = try LogGeometry(capacityBytes: 1 << 16, maxSlots: 8)
        let first = try LogFile.openOrCreate(path: path, geometry: geometry)
        #expect(first.created)
        var writer = LogWriter(region: try LogRegion.attach(base: first.base, length: first.length))
        try writer.append("a", "persisted")
        let epoch = try LogRegion.attach(base: first.base, length: first.length).epoch
        #expect(epoch != 0)
        munmap(first.base, first.length)
        close(first.fd)

        let second = try LogFile.openOrCreate(path: path, geometry: geometry)
        #expect(!second.created)
        let region = try LogRegion.attach(base: second.base, length: second.length)
        #expect(region.epoch == epoch)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: region.geometry.maxRecordBytes, alignment: 8)
        defer { scratch.deallocate() }
        #expect(LogReader(region: region).event(at: 0, scratch: scratch)?.data == "persisted")
        munmap(second.base, second.length)
        close(second.fd)

        let other = try LogGeometry(capacityBytes: 1 << 17, maxSlots: 8)
        do {
            _ = try LogFile.openOrCreate(path: path, geometry: other)
            Issue.record("a geometry mismatch must throw")
        } catch {
            #expect("\(error)".contains("capacity 65536"))
            #expect("\(error)".contains("131072"))
        }
    }

    @Test func ephemeralMapsTwice() throws {
        let geometry = try LogGeometry(capacityBytes: 1 << 14, maxSlots: 4)
        let log = try LogFile.createEphemeral(geometry: geometry)
        defer { munmap(log.base, log.length); close(log.fd) }
        var writer = LogWriter(region: try LogRegion.attach(base: log.base, length: log.length))
        try writer.append("a", "shared")
        let view = try LogFile.map(fd: log.fd)
        defer { munmap(view.base, view.length) }
        #expect(view.base != log.base)
        let region = try LogRegion.attach(base: view.base, length: view.length)
        #expect(LogReader(region: region).headSeqAcquire() == 1)
    }
}
