import Foundation   // JSONSerialization, to check bodies the way a client parses them
import Testing
@testable import RingLog
import WireProtocol
@testable import Worker

/// History of several slots (`GET /v1/events?slot=a&slot=b`): the slots' windows merged by seq.
@Suite struct HistoryBodySlotsTests {
    typealias Log = HistoryBodyTests.Log

    func body(_ log: Log, _ slots: [String], after: UInt64?, limit: Int) -> [String: Any] {
        var json = JSONWriter()
        let history = HistoryBody(reader: log.reader, scratch: log.scratch)
        let query = HistoryBody.Query(slots: slots.map { Array($0.utf8) }, namesSlots: true, after: after, foreignEpoch: false,
                                      requestedAfter: after.map { EventID(epoch: log.reader.epoch, seq: $0).description },
                                      limit: limit)
        #expect(history.write(&json, query))
        return (try? JSONSerialization.jsonObject(with: Data(json.bytes))) as? [String: Any] ?? [:]
    }

    func events(_ object: [String: Any]) -> [(slot: String, data: String)] {
        (object["events"] as? [[String: Any]] ?? []).map { ($0["slot"] as? String ?? "?", $0["data"] as? String ?? "?") }
    }

    func seq(_ id: Any?) -> UInt64? { (id as? String).flatMap { EventID(parsing: $0)?.seq } }

    /// a1 b1 c1 a2 b2 c2 … (seqs 1, 2, 3, 4 …)
    func interleaved(_ rounds: Int) -> Log {
        let log = Log(capacityBytes: 1 << 16)
        for i in 1...rounds {
            for slot in ["a", "b", "c"] { log.append(slot, "\(slot)\(i)") }
        }
        return log
    }

    @Test func pagingByNextWalksEverySlotNamedOnceInSeqOrder() {
        let log = interleaved(10)
        var after: UInt64 = 0
        var got: [String] = []
        var pages = 0
        while pages < 20 {
            let page = body(log, ["c", "a"], after: after, limit: 3)
            let e = events(page)
            if e.isEmpty { break }
            got += e.map(\.data)
            after = seq(page["next"])!
            pages += 1
        }
        let expected = (1...10).flatMap { ["a\($0)", "c\($0)"] }
        #expect(got == expected, "every event of a and c, never b, in seq order")
        #expect(pages == 7)
    }

    @Test func withoutAfterTheNewestOfAllSlotsMerged() {
        let log = interleaved(10)
        let page = body(log, ["a", "b"], after: nil, limit: 5)
        #expect(events(page).map(\.data) == ["b8", "a9", "b9", "a10", "b10"])
        #expect(events(page).map(\.slot) == ["b", "a", "b", "a", "b"])
        #expect(page["slots"] as? [String] == ["a", "b"])
        let oldest = page["oldest"] as? [String: Any], head = page["head"] as? [String: Any]
        #expect(seq(oldest?["a"]) == 1 && seq(oldest?["b"]) == 2)
        #expect(seq(head?["a"]) == 28 && seq(head?["b"]) == 29)
        #expect(page["reset"] as? Bool == false)
    }

    @Test func oneSlotFullWindowDoesNotHideTheOthers() {
        // a has many events before b's only one: the first 4 after 0 are all a's, then b's.
        let log = Log(capacityBytes: 1 << 16)
        for i in 1...6 { log.append("a", "a\(i)") }
        log.append("b", "b1")
        log.append("a", "a7")
        #expect(events(body(log, ["b", "a"], after: 0, limit: 4)).map(\.data) == ["a1", "a2", "a3", "a4"])
        #expect(events(body(log, ["b", "a"], after: 5, limit: 4)).map(\.data) == ["a6", "b1", "a7"])
        let none = body(log, ["b", "nobody"], after: 7, limit: 4)
        #expect(events(none).isEmpty)
        #expect(seq(none["next"]) == 7, "nothing after it: the id is echoed")
        #expect((none["oldest"] as? [String: Any])?["nobody"] is NSNull)
    }

    @Test func aLappedSlotSaysReset() {
        let log = Log()   // 4 KiB: 13 records of 296 bytes
        let payload = String(repeating: "x", count: 200)
        for i in 1...40 { log.append(i % 4 == 0 ? "b" : "a", payload) }
        let page = body(log, ["a", "b"], after: 1, limit: 100)
        #expect(page["reset"] as? Bool == true)
        let seqs = (page["events"] as? [[String: Any]] ?? []).compactMap { seq($0["id"]) }
        #expect(!seqs.isEmpty && seqs == seqs.sorted() && seqs.last == 40)
    }
}
