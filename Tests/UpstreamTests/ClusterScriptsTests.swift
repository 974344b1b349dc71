import Testing
@testable import Upstream

/// The publish and bump scripts, run on a real redis-server.
@Suite struct ClusterScriptsTests {
    let keys = ClusterKeys(key: "rg-test")

    func publishArguments(epoch: String, retain: Int = 1000, time: UInt64 = 1_700_000_000_000, events: [(String, String, String)]) -> [[UInt8]] {
        var argv = [bytes(epoch), bytes(String(retain)), bytes(String(time)), bytes(String(events.count))]
        for e in events { argv += [bytes(e.0), bytes(e.1), bytes(e.2)] }
        return argv
    }

    func run(_ script: inout ClusterScripts.Loaded, _ c: RedisConnection, _ argv: [[UInt8]]) throws -> RedisReply {
        try script.run(on: c, keys: [keys.stream, keys.seq, keys.meta], arguments: argv)
    }

    /// Every entry's fields as a dictionary, in stream order.
    func entries(_ c: RedisConnection) throws -> [[String: String]] {
        guard let raw = TailDecoding.entries(ofXRead: try c.command("XREAD", "COUNT", "100000", "STREAMS", keys.stream, "0-0")) else {
            throw TestFailure("not an XREAD reply")
        }
        return raw.map { e in
            guard case .array(let pair) = e, case .array(let f) = pair[1] else { return [:] }
            var d: [String: String] = [:]
            for i in stride(from: 0, to: f.count, by: 2) { d[f[i].text!] = f[i + 1].text! }
            return d
        }
    }

    @Test func nEventsTakeDenseSeqsWithEveryField() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0xabcdef01 })
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        let first = try run(&script, c, publishArguments(epoch: "abcdef01", events: [("a", "m", "1"), ("b", "n", ""), ("a", "m", "3")]))
        guard case .array(let parts) = first, parts.count == 2, case .string(let lastID) = parts[1] else {
            throw TestFailure("reply \(first)")
        }
        #expect(parts[0] == .integer(1))
        let second = try run(&script, c, publishArguments(epoch: "abcdef01", time: 5, events: [("c", "m", "4"), ("c", "m", "5")]))
        guard case .array(let parts2) = second else { throw TestFailure("reply \(second)") }
        #expect(parts2[0] == .integer(4))
        let all = try entries(c)
        #expect(all.map { $0["seq"] } == ["1", "2", "3", "4", "5"])
        #expect(all[1] == ["seq": "2", "epoch": "abcdef01", "slot": "b", "type": "n", "data": "", "time": "1700000000000"])
        #expect(all[4]["time"] == "5")
        #expect(try c.command("GET", keys.seq) == .string(bytes("5")))
        // The reply's id is the last entry of that call.
        let ids = try c.command("XRANGE", keys.stream, "-", "+")
        guard case .array(let rows) = ids, case .array(let third) = rows[2] else { throw TestFailure("XRANGE \(ids)") }
        #expect(third[0] == .string(lastID))
    }

    @Test func largeSeqsAreWrittenAsIntegers() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 1 })
        _ = try c.command("SET", keys.seq, "999999999999998")
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        let reply = try run(&script, c, publishArguments(epoch: "00000001", events: [("a", "m", "x"), ("a", "m", "y")]))
        guard case .array(let parts) = reply else { throw TestFailure("reply \(reply)") }
        #expect(parts[0] == .integer(999_999_999_999_999))
        #expect(try entries(c).map { $0["seq"] } == ["999999999999999", "1000000000000000"])
    }

    @Test func aWrongEpochWritesNothing() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        // No meta at all (Redis wiped): EPOCH none.
        #expect(try run(&script, c, publishArguments(epoch: "00000001", events: [("a", "m", "x")])) == .error("EPOCH none"))
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0x22 })
        #expect(try run(&script, c, publishArguments(epoch: "00000011", events: [("a", "m", "x"), ("b", "m", "y")])) == .error("EPOCH 00000022"))
        #expect(try c.command("XLEN", keys.stream) == .integer(0))
        // The epoch's counter starts at 0 (seqs from 1); the refused calls did not move it.
        #expect(try c.command("GET", keys.seq) == .string(Array("0".utf8)))
        // A malformed call is refused before any write too.
        var bad = publishArguments(epoch: "00000022", events: [("a", "m", "x")])
        bad.removeLast()
        #expect(try run(&script, c, bad) == .error("ERR ringgate publish: bad argument count"))
        #expect(try c.command("GET", keys.seq) == .string(Array("0".utf8)))
    }

    @Test func aFlushedScriptIsLoadedAgain() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 5 })
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        _ = try run(&script, c, publishArguments(epoch: "00000005", events: [("a", "m", "x")]))
        #expect(try c.command("SCRIPT", "FLUSH") == .status("OK"))
        let reply = try run(&script, c, publishArguments(epoch: "00000005", events: [("a", "m", "y")]))
        guard case .array(let parts) = reply else { throw TestFailure("reply \(reply)") }
        #expect(parts[0] == .integer(2))
        #expect(try entries(c).map { $0["data"] } == ["x", "y"])
    }

    @Test func maxlenTrimsToAboutRetain() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 5 })
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        for _ in 0..<20 {
            _ = try run(&script, c, publishArguments(epoch: "00000005", retain: 100,
                                                     events: Array(repeating: ("s", "m", "d"), count: 100)))
        }
        guard case .integer(let length) = try c.command("XLEN", keys.stream) else { throw TestFailure("XLEN") }
        #expect(length >= 100 && length < 400, "XLEN \(length)")
        let remaining = try entries(c)
        // Trimming removes the oldest; the seqs kept are the newest, still dense.
        #expect(remaining.last?["seq"] == "2000")
        #expect(remaining.compactMap { $0["seq"].flatMap { Int($0) } } == Array((2001 - remaining.count)...2000))
    }

    @Test func twoBumpsFromTheSameEpochMakeOneNewEpoch() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0xaaaa0000 })
        var publish = ClusterScripts.Loaded(ClusterScripts.publish)
        let reply = try run(&publish, c, publishArguments(epoch: "aaaa0000", events: [("a", "m", "x"), ("a", "m", "y")]))
        guard case .array(let parts) = reply, case .string(let lastID) = parts[1] else { throw TestFailure("reply \(reply)") }

        var bump = ClusterScripts.Loaded(ClusterScripts.bump)
        let bumpKeys = [keys.meta, keys.seq, keys.stream]
        let hostA = try bump.run(on: c, keys: bumpKeys, arguments: [bytes("aaaa0000"), bytes("bbbb0000")])
        var bumpB = ClusterScripts.Loaded(ClusterScripts.bump)
        let hostB = try bumpB.run(on: try redis.connection(), keys: bumpKeys, arguments: [bytes("aaaa0000"), bytes("cccc0000")])
        #expect(hostA == .string(bytes("bbbb0000")))
        #expect(hostB == .string(bytes("bbbb0000")))
        let meta = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 1 })
        #expect(meta.epoch == 0xbbbb0000)
        #expect(meta.start == StreamID(bytes: lastID))
        #expect(try c.command("GET", keys.seq) == .string(bytes("0")))
        // The new epoch's seqs start at 1; the old epoch can no longer publish.
        let next = try run(&publish, c, publishArguments(epoch: "bbbb0000", events: [("a", "m", "z")]))
        guard case .array(let nextParts) = next else { throw TestFailure("reply \(next)") }
        #expect(nextParts[0] == .integer(1))
        #expect(try run(&publish, c, publishArguments(epoch: "aaaa0000", events: [("a", "m", "w")])) == .error("EPOCH bbbb0000"))
        // An empty stream bumps with start 0-0.
        _ = try c.command("DEL", keys.stream)
        _ = try bump.run(on: c, keys: bumpKeys, arguments: [bytes("bbbb0000"), bytes("dddd0000")])
        #expect(try ClusterMeta.ensureEpoch(c, keys: keys, random: { 1 }).start == .zero)
    }
}
