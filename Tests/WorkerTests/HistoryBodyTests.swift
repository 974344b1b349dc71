import Foundation   // JSONSerialization, to check bodies the way a client parses them
import Testing
@testable import RingLog
import WireProtocol
@testable import Worker

/// History bodies over a heap log, with a writer lapping the reader between its copy and its
/// re-check (the race a loaded gateway hits): every answer is complete JSON, or an overrun.
@Suite struct HistoryBodyTests {
    let payload200 = String(repeating: "x", count: 200)   // 296-byte records: 13 fit in 4096

    final class Log {
        let base: UnsafeMutableRawPointer
        let region: LogRegion
        let scratch: UnsafeMutableRawBufferPointer
        var writer: LogWriter

        init(capacityBytes: Int = 4096) {
            let geometry = try! LogGeometry(capacityBytes: capacityBytes, maxSlots: 8)
            base = .allocate(byteCount: geometry.totalBytes, alignment: 4096)
            // format expects zeroed memory, like a fresh file: heap garbage in the seq index or
            // the directory made tests over a large log flaky (and could hang a walk).
            base.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
            region = try! LogRegion.format(base: base, length: geometry.totalBytes, geometry: geometry, epoch: 0x5f3a_9c01)
            scratch = .allocate(byteCount: geometry.maxRecordBytes, alignment: 8)
            writer = LogWriter(region: region)
        }

        deinit {
            base.deallocate()
            scratch.deallocate()
        }

        var reader: LogReader { LogReader(region: region) }

        func append(_ slot: String, _ data: String) {
            let s = Array(slot.utf8), t = Array("m".utf8), d = Array(data.utf8)
            s.withUnsafeBytes { sp in
                t.withUnsafeBytes { tp in
                    d.withUnsafeBytes { dp in _ = try! writer.append(slot: sp, type: tp, data: dp, timeMilliseconds: 1) }
                }
            }
        }
    }

    func id(_ log: Log, _ seq: UInt64) -> String { EventID(epoch: log.reader.epoch, seq: seq).description }

    /// Writes one body; `copy` replaces the worker's plain copy. nil on an overrun.
    func body(_ log: Log, after: UInt64?, limit: Int, damaged: ((LogReader.DamagedRecord) -> Void)? = nil,
              copy: ((UInt64, UnsafeMutableRawBufferPointer) -> LogReader.CopyResult)? = nil) -> [String: Any]? {
        var json = JSONWriter()
        let history = HistoryBody(reader: log.reader, scratch: log.scratch, copy: copy, onDamaged: damaged ?? { _ in })
        let complete = Array("a".utf8).withUnsafeBytes { slot in
            history.write(&json, HistoryBody.Query(slot: slot, after: after, foreignEpoch: false,
                                                   requestedAfter: after.map { id(log, $0) }, limit: limit))
        }
        guard complete else {
            #expect(json.bytes.isEmpty, "an overrun leaves no partial body")
            return nil
        }
        let parsed = try? JSONSerialization.jsonObject(with: Data(json.bytes))
        guard let object = parsed as? [String: Any] else {
            Issue.record("not a complete JSON object: \(String(decoding: json.bytes, as: UTF8.self))")
            return [:]
        }
        return object
    }

    func eventIDs(_ object: [String: Any]?) -> [String] {
        (object?["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    /// A copy that laps the reader (14 records of 296 bytes: more than the 4 KiB ring) between
    /// its copy and its re-check on the `nth` copy of each try, while `laps` lasts.
    func lappingCopy(_ log: Log, nth: Int, laps: Int) -> (UInt64, UnsafeMutableRawBufferPointer) -> LogReader.CopyResult {
        var copies = 0
        var lapsLeft = laps
        let filler = String(repeating: "y", count: 200)
        return { position, scratch in
            copies += 1
            let lapNow = lapsLeft > 0 && copies % nth == 0
            if lapNow { copies = 0; lapsLeft -= 1 }
            return log.reader.copyRecord(at: position, into: scratch, beforeRecheck: lapNow ? {
                for _ in 0..<14 { log.append("a", filler) }
            } : nil)
        }
    }

    @Test func windowLappedWhileCopiedRestartsAtTheOldestWithReset() throws {
        let log = Log()
        for _ in 0..<10 { log.append("a", payload200) }
        let object = try #require(body(log, after: 2, limit: 5, copy: lappingCopy(log, nth: 2, laps: 1)))
        // The retry found events after seq 2 gone: it starts at the slot's oldest, reset:true.
        let oldest = log.reader.oldestSeqAcquire()
        #expect(object["reset"] as? Bool == true)
        #expect(object["oldest"] as? String == id(log, oldest))
        #expect(eventIDs(object) == (oldest..<oldest + 5).map { id(log, $0) })
        #expect(object["next"] as? String == id(log, oldest + 4))
    }

    @Test func lappedOnEveryTryAnswersTheCopiedPrefixComplete() throws {
        // Before: four failed tries sent the partial buffer, `{"slot":"a","events":[{…},{…}`.
        let log = Log()
        for _ in 0..<10 { log.append("a", payload200) }
        let object = try #require(body(log, after: 2, limit: 5,
                                       copy: lappingCopy(log, nth: 3, laps: HistoryBody.attemptsMax)))
        let ids = eventIDs(object)
        #expect(ids.count == 2, "the last try copied two events before it was lapped: \(ids)")
        #expect(object["next"] as? String == ids.last)
        #expect(object["head"] != nil && object["oldest"] != nil && object["reset"] != nil)
    }

    @Test func lappedBeforeAnyEventOnEveryTryIsAnOverrun() throws {
        let log = Log()
        for _ in 0..<10 { log.append("a", payload200) }
        #expect(body(log, after: 2, limit: 5, copy: lappingCopy(log, nth: 1, laps: HistoryBody.attemptsMax)) == nil)
        // Once the writer stops, the same pull answers.
        #expect(eventIDs(body(log, after: 2, limit: 5)).count == 5)
    }

    @Test func damagedRecordIsLeftOutWithResetAndNextGoesPastIt() throws {
        let log = Log(capacityBytes: 1 << 16)
        var positions: [UInt64] = []
        for i in 1...10 {
            positions.append(log.writer.tailPosition)
            log.append("a", "e\(i)")
        }
        let record = log.region.recordPointer(positions[5])   // seq 6
        record.storeU32(LogDescriptor.Record.dataLengthOffset, 12345)
        var met: [LogReader.DamagedRecord] = []
        let object = try #require(body(log, after: 3, limit: 5, damaged: { met.append($0) }))
        #expect(eventIDs(object) == [4, 5, 7, 8].map { id(log, $0) })
        #expect(object["reset"] as? Bool == true)
        #expect(object["next"] as? String == id(log, 8))
        #expect(met.map(\.seq) == [6])
        // A window of only the damaged record: no events, but `next` moves past it.
        let alone = try #require(body(log, after: 5, limit: 1))
        #expect(eventIDs(alone).isEmpty)
        #expect(alone["next"] as? String == id(log, 6))
        #expect(alone["reset"] as? Bool == true)
    }
}
