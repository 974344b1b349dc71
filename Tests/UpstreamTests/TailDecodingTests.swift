import CHiredis
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
        #expect(why(good.map { $0.0 == "seq" ? ("seq", "1e+15") : $0 })! == (nil, "seq '1e+15' is not a decimal from 1 to 2^53"))
        #expect(why(good.map { $0.0 == "seq" ? ("seq", "0") : $0 })! == (nil, "seq '0' is not a decimal from 1 to 2^53"))
        // Above what the script's Lua numbers count exactly: never taken as a seq (it would
        // overflow the log's arithmetic on every host).
        #expect(why(good.map { $0.0 == "seq" ? ("seq", "18446744073709551615") : $0 })! == (nil, "seq '18446744073709551615' is not a decimal from 1 to 2^53"))
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

/// The in-place XREAD decoder (hiredis's tree, used by the tail) against the `RedisReply`
/// decoder: the same events for every entry, well-formed or not.
@Suite struct TailDecodingInPlaceTests {
    /// RESP2 bytes of `XREAD` answering one stream with these entries (a test fixture).
    func resp(_ entries: [(String, [String])]) -> [UInt8] {
        func bulk(_ s: String) -> String { "$\(s.utf8.count)\r\n\(s)\r\n" }
        var out = "*1\r\n*2\r\n" + bulk("k") + "*\(entries.count)\r\n"
        for (id, fields) in entries {
            out += "*2\r\n" + bulk(id) + "*\(fields.count)\r\n" + fields.map(bulk).joined()
        }
        return Array(out.utf8)
    }

    func parsed<T>(_ bytes: [UInt8], _ body: (UnsafePointer<redisReply>) -> T) -> T? {
        guard let reader = redisReaderCreate() else { return nil }
        defer { redisReaderFree(reader) }
        _ = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK, let raw else { return nil }
        defer { freeReplyObject(raw) }
        return body(UnsafePointer(raw.assumingMemoryBound(to: redisReply.self)))
    }

    func describe(_ e: TailEvent) -> String {
        switch e {
        case .entry(let x): "entry \(x)"
        case .malformed(let id, let seq, let why): "malformed \(id) \(String(describing: seq)) \(why)"
        case .epochChanged(let c): "epoch \(String(describing: c))"
        }
    }

    @Test func bothDecodersAgreeOnEveryEntry() {
        let good = ["seq", "5", "epoch", "0000abcd", "slot", "room", "type", "msg", "data", "{}", "time", "17"]
        let entries: [(String, [String])] = [
            ("1-1", good),
            ("1-2", good + ["extra", "field"]),
            ("1-3", Array(good.prefix(10))),                                         // no time
            ("1-4", ["seq", "0"] + Array(good.dropFirst(2))),                        // seq 0
            ("1-5", ["seq", "x"] + Array(good.dropFirst(2))),
            ("1-6", ["seq", "6", "epoch", "zz"] + Array(good.dropFirst(4))),
            ("1-7", good.map { $0 == "{}" ? "" : $0 }),                              // empty data
            ("1-8", []),
        ]
        let bytes = resp(entries)
        let inPlace = parsed(bytes) { TailDecoding.events(ofXRead: $0) } ?? nil
        let viaReply = parsed(bytes) { raw in
            TailDecoding.entries(ofXRead: RedisReply(hiredis: raw))?.compactMap { TailDecoding.event(ofEntry: $0) }
        } ?? nil
        #expect(inPlace != nil && viaReply != nil)
        #expect(inPlace?.count == entries.count)
        #expect(inPlace?.map(describe) == viaReply?.map(describe))
        if case .entry(let e) = inPlace?[0] {
            #expect(e == ClusterEntry(id: StreamID(milliseconds: 1, sequence: 1), epoch: 0xabcd, seq: 5, slot: Array("room".utf8),
                                      type: Array("msg".utf8), data: Array("{}".utf8), timeMilliseconds: 17))
        } else {
            Issue.record("first entry not decoded")
        }
    }

    @Test func aNullReplyIsNoEntriesAndAnotherShapeIsNil() {
        #expect(parsed(Array("*-1\r\n".utf8)) { TailDecoding.events(ofXRead: $0)?.count } == 0)
        #expect(parsed(Array(":3\r\n".utf8)) { TailDecoding.events(ofXRead: $0) == nil } == true)
    }
}
