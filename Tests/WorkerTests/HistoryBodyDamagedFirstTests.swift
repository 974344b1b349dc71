import Foundation   // JSONSerialization, to check bodies the way a client parses them
import Testing
@testable import RingLog
import WireProtocol
@testable import Worker

/// Finding 3: a damaged record first in a window is stepped past by the seq the window walk
/// read, never by a seq-index search from the oldest retained seq (O(retained) in one turn,
/// which a client could repeat with pipelined pulls until the watchdog kills the worker).
@Suite struct HistoryBodyDamagedFirstTests {
    typealias Log = HistoryBodyTests.Log

    func body(_ log: Log, after: UInt64, limit: Int, damagedAt: UInt64,
              met: @escaping (LogReader.DamagedRecord) -> Void) -> [String: Any]? {
        var json = JSONWriter()
        // The copy finds the record's header unusable (seq unknown to copyRecord).
        let copy: (UInt64, UnsafeMutableRawBufferPointer) -> LogReader.CopyResult = { position, scratch in
            position == damagedAt
                ? .damaged(LogReader.DamagedRecord(position: position, seq: nil, slotOrdinal: nil))
                : log.reader.copyRecord(at: position, into: scratch)
        }
        let history = HistoryBody(reader: log.reader, scratch: log.scratch, copy: copy, onDamaged: met)
        let requested = EventID(epoch: log.reader.epoch, seq: after).description
        let complete = Array("a".utf8).withUnsafeBytes { slot in
            history.write(&json, HistoryBody.Query(slot: slot, after: after, foreignEpoch: false,
                                                   requestedAfter: requested, limit: limit))
        }
        guard complete else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any]
    }

    @Test func damagedFirstRecordIsSteppedPastWithoutTheSeqIndex() throws {
        let log = Log(capacityBytes: 1 << 20)
        var aSeqs: [UInt64] = [], aPositions: [UInt64] = []
        for i in 1...5 {
            aPositions.append(log.writer.tailPosition)
            log.append("a", "a\(i)")
            aSeqs.append(log.reader.headSeqAcquire())
            for j in 0..<200 { log.append("b", "b\(i)-\(j)") }   // other slots' events between
        }
        // Every seq-index entry unusable: only the window's own walk (directory and links)
        // can name the damaged record's seq. A search of the index finds nothing before head.
        let head = log.reader.headSeqAcquire()
        for seq in 1...head { log.region.indexPointer(seq).storeBytes(of: LogDescriptor.Record.noPosition, as: UInt64.self) }

        var met: [LogReader.DamagedRecord] = []
        // The window [a3] (after a2, limit 1): its only record is damaged.
        let alone = try #require(body(log, after: aSeqs[1], limit: 1, damagedAt: aPositions[2]) { met.append($0) })
        #expect((alone["events"] as? [Any])?.isEmpty == true)
        #expect(alone["reset"] as? Bool == true)
        #expect(alone["next"] as? String == EventID(epoch: log.reader.epoch, seq: aSeqs[2]).description,
                "next must be a3 (a client paging on must still get a4, a5), not the log's head \(head)")
        #expect(met.map(\.seq) == [aSeqs[2]] && met.map(\.slotOrdinal) == [3])

        // First of a longer window: the events after it are all there.
        met = []
        let first = try #require(body(log, after: aSeqs[1], limit: 3, damagedAt: aPositions[2]) { met.append($0) })
        let ids = (first["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(ids == [aSeqs[3], aSeqs[4]].map { EventID(epoch: log.reader.epoch, seq: $0).description })
        #expect(met.map(\.seq) == [aSeqs[2]])
    }
}
