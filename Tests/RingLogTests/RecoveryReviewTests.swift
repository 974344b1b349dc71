import CRinggateSys
import Glibc
import Testing
@testable import RingLog

/// Review findings on the recovery scan and the batch check (issue 10 follow-up).
@Suite struct RecoveryReviewTests {
    typealias R = LogDescriptor.Record

    /// Seqs a sequential reader (a worker's pump) delivers from `position` up to the tail.
    func walk(_ reader: LogReader, from position: UInt64, scratch: UnsafeMutableRawBufferPointer) -> [UInt64] {
        var seqs: [UInt64] = []
        var p = position
        for _ in 0..<10_000 {
            switch reader.copyRecord(at: p, into: scratch) {
            case .record(let view): seqs.append(view.seq); p = view.nextPosition
            case .padding(let next): p = next
            case .damaged(let d): p = reader.resumePoint(after: d, lastSeq: seqs.last ?? 0).position
            case .notYetWritten, .lapped: return seqs
            }
        }
        return seqs
    }

    func flipDataByte(_ log: HeapLog, at position: UInt64) {
        let byte = log.region.recordPointer(position) + R.headerLength + 3
        byte.storeU8(0, byte.loadU8(0) ^ 0x01)
    }

    // Finding 1: a cut below `tail` while a batch was open must not let a live worker waiting
    // at the old tail (or walking towards it) deliver the rolled-back batch.
    @Test func liveReaderAtTheOldTailNeverSeesTheRolledBackBatch() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 1...5 { try writer.append(i % 2 == 0 ? "a" : "b", "event \(i)") }
        let pump = reader.tailAcquire()                      // a worker delivered 1...5 and waits here
        let fourth = try #require(reader.position(ofSeq: 4))
        writer.beginBatch()
        for i in 0..<3 { try writer.stage("a", "uncommitted \(i)") }   // seqs 6...8, then the ingest dies
        flipDataByte(log, at: try #require(reader.position(ofSeq: 3)))
        var restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.rolledBackBatch)
        #expect(restarted.recovery.damagedPosition != nil)
        #expect(walk(reader, from: pump, scratch: log.scratch).isEmpty, "nothing committed past the old tail")
        #expect(walk(reader, from: fourth, scratch: log.scratch) == [4, 5])
        let next = try restarted.append("a", "after")
        #expect(walk(reader, from: pump, scratch: log.scratch) == [next])
        #expect(next > 8, "the seqs of the rolled-back batch are not handed out again")
    }

    // Finding 6: the seqs past the cut no longer resolve, even where their headers are intact.
    @Test func discardedSeqsResolveToNothing() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 1...6 { try writer.append("a", "event \(i)") }
        flipDataByte(log, at: try #require(reader.position(ofSeq: 4)))
        _ = LogWriter(region: log.region)
        for seq: UInt64 in 4...6 {
            #expect(reader.position(ofSeq: seq) == nil, "seq \(seq) was cut")
            #expect(rg_load_acquire_u64(log.region.indexPointer(seq)) == R.noPosition)
        }
        #expect(reader.position(ofSeq: 3) != nil)
    }

    // Finding 11: a damaged `tailIntent` (the header has no crc) claims nothing.
    @Test func tailIntentFarAheadIsDamageNotABatch() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        for i in 1...5 { try writer.append("a", "event \(i)") }
        let tail = log.reader.tailAcquire()
        let damaged = tail + 10 * 4096
        log.region.storeRelease(LogDescriptor.tailIntentOffset, damaged)
        var restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.damagedTailIntent == damaged)
        #expect(!restarted.recovery.rolledBackBatch && restarted.recovery.discardedBytes == 0)
        #expect(log.reader.tailAcquire() == tail && log.reader.tailIntentAcquire() == tail)
        #expect(log.reader.seqs(log.reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1, 2, 3, 4, 5])
        #expect(try restarted.append("a", "after") == 6)
    }

    @Test func tailIntentNearTheTopOfItsRangeDoesNotTrap() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        for i in 1...3 { try writer.append("a", "event \(i)") }
        log.region.storeRelease(LogDescriptor.tailIntentOffset, UInt64.max - 3)
        let restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.damagedTailIntent == UInt64.max - 3)
        #expect(log.reader.seqs(log.reader.window("a", limit: 10).0.positions, scratch: log.scratch) == [1, 2, 3])
    }

    // Finding 5: a header page older than its data pages (power loss) must not make the
    // writer hand out seqs that readers already received.
    @Test func seqsPastAStaleHeaderAreNotReused() throws {
        let log = HeapLog(capacityBytes: 8192)
        var writer = LogWriter(region: log.region)
        for i in 1...6 { try writer.append("a", "event \(i)") }
        let stale = [LogDescriptor.tailOffset, LogDescriptor.tailIntentOffset, LogDescriptor.nextSeqOffset,
                     LogDescriptor.latestOffset].map { ($0, log.region.loadAcquire($0)) }
        for i in 7...10 { try writer.append("a", "event \(i)") }   // readers saw these
        for (offset, value) in stale { log.region.storeRelease(offset, value) }   // the header page was not
        var restarted = LogWriter(region: log.region)
        #expect(restarted.recovery.seqsSkippedPastTail == 4)
        #expect(try restarted.append("a", "after") == 11)
        #expect(log.reader.position(ofSeq: 8) == nil)
    }

    // Finding 2: the scan reports progress, and a clean restart writes nothing into the index.
    @Test func scanReportsProgressAsItGoes() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        for i in 0..<400 { try writer.append("s\(i % 3)", String(repeating: "p", count: 100)) }
        final class Calls { var count = 0 }
        let calls = Calls()
        _ = LogWriter(region: log.region, progress: { calls.count += 1 }, progressStrideBytes: 4096)
        // At the start, then once per 4 KiB of the ~64 KiB retained (plus the directory).
        #expect(calls.count >= 1 + 12)
        let none = Calls()
        _ = LogWriter(region: log.region, progress: { none.count += 1 }, progressStrideBytes: 1 << 40)
        #expect(none.count == 1, "stamped once at the start of the scan")
    }

    @Test func cleanRestartLeavesTheSeqIndexUnwritten() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        for i in 0..<300 { try writer.append("s\(i % 3)", "payload \(i)") }
        let index = log.base + log.region.geometry.indexOffset
        let bytes = log.region.geometry.indexBytes
        // Any store into the index would fault: a restart that rewrites unchanged entries dirties
        // every index page of a file-backed log.
        #expect(mprotect(index, bytes, PROT_READ) == 0)
        let restarted = LogWriter(region: log.region)
        #expect(mprotect(index, bytes, PROT_READ | PROT_WRITE) == 0)
        #expect(restarted.recovery.damagedPosition == nil && restarted.recovery.recordsVerified > 0)
        #expect(log.reader.headSeqAcquire() == 300)
    }
}
