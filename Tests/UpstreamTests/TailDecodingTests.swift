import Testing
@testable import Upstream

@Suite struct TailDecodingTests {
    func entry(_ id: String, _ fields: [(String, String)]) -> RedisReply {
        .array([.string(bytes(id)), .array(fields.flatMap { [RedisReply.string(bytes($0.0)), .string(bytes($0.1))] })])
    }

    let good: [(String, String)] = [("seq", "42"), ("epoch", "0000abcd"), ("slot", "room"), ("type", "msg"),
                                    ("data", "{\"a\":1}"), ("time", "1700000000000")]

    @Test func anEntryWithEveryFieldDecodes() {
        guard case .entry(let e) = TailDecoding.event(ofEntry: entry("17-3", good)) else {
            Issue.record("not an entry")
            return
        }
        #expect(e == ClusterEntry(id: StreamID(milliseconds: 17, sequence: 3), epoch: 0xabcd, seq: 42, slot: bytes("room"),
                                  type: bytes("msg"), data: bytes("{\"a\":1}"), timeMilliseconds: 1_700_000_000_000))
    }

    @Test func emptyDataAndExtraFieldsAreFine() {
        var fields = good.map { $0.0 == "data" ? ("data", "") : $0 }
        fields.append(("other", "x"))
        guard case .entry(let e) = TailDecoding.event(ofEntry: entry("1-0", fields)) else {
            Issue.record("not an entry")
            return
        }
        #expect(e.data == [] && e.seq == 42)
    }

    @Test func aMalformedEntrySaysWhatIsMissingAndKeepsItsSeqWhenReadable() {
        func why(_ fields: [(String, String)]) -> (UInt64?, String)? {
            guard case .malformed(let id, let seq, let why) = TailDecoding.event(ofEntry: entry("9-1", fields)) else { return nil }
            #expect(id == StreamID(milliseconds: 9, sequence: 1))
            return (seq, why)
        }
        let without = { (name: String) in good.filter { $0.0 != name } }
        #expect(why(without("seq"))! == (nil, "no seq field"))
        #expect(why(without("epoch"))! == (42, "no epoch field"))
        #expect(why(without("slot"))! == (42, "no slot field"))
        #expect(why(without("type"))! == (42, "no type field"))
        #expect(why(without("data"))! == (42, "no data field"))
        #expect(why(without("time"))! == (42, "no time field"))
        #expect(why(good.map { $0.0 == "seq" ? ("seq", "1e+15") : $0 })! == (nil, "seq '1e+15' is not a positive decimal"))
        #expect(why(good.map { $0.0 == "seq" ? ("seq", "0") : $0 })! == (nil, "seq '0' is not a positive decimal"))
        #expect(why(good.map { $0.0 == "epoch" ? ("epoch", "xyz") : $0 })! == (42, "epoch is not 8 hex digits"))
        #expect(why(good.map { $0.0 == "time" ? ("time", "-1") : $0 })! == (42, "time is not a decimal"))
        guard case .malformed(_, nil, "fields are not name/value pairs") = TailDecoding.event(ofEntry:
            .array([.string(bytes("1-1")), .array([.string(bytes("seq"))])])) else {
            Issue.record("odd field count not reported")
            return
        }
    }

    @Test func aReplyThatIsNotAnEntryIsNil() {
        #expect(TailDecoding.event(ofEntry: .integer(3)) == nil)
        #expect(TailDecoding.event(ofEntry: .array([.string(bytes("nope")), .array([])])) == nil)
    }

    @Test func xreadRepliesGiveTheirEntries() {
        #expect(TailDecoding.entries(ofXRead: .null)?.isEmpty == true)
        let one = entry("1-1", good)
        let reply = RedisReply.array([.array([.string(bytes("k")), .array([one, one])])])
        #expect(TailDecoding.entries(ofXRead: reply)?.count == 2)
        #expect(TailDecoding.entries(ofXRead: .integer(1)) == nil)
        #expect(TailDecoding.entries(ofXRead: .array([])) == nil)
    }
}
