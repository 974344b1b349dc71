import Testing
@testable import Upstream

/// The client against a real redis-server (started on a free port by each test).
@Suite struct RedisConnectionTests {
    func connectError(_ url: UpstreamURL, timeoutNanoseconds: UInt64 = 2_000_000_000) -> UpstreamError? {
        do throws(UpstreamError) {
            _ = try RedisConnection(url: url, timeoutNanoseconds: timeoutNanoseconds, name: "test")
            return nil
        } catch {
            return error
        }
    }

    @Test func nothingListeningIsUnreachable() {
        let port = RedisServer.freePort()
        let url = UpstreamURL(host: "127.0.0.1", port: port, db: 0, user: nil, password: nil, key: "k")
        let error = connectError(url)
        #expect(error?.kind == .unreachable)
        #expect(error?.description == "cannot connect to Redis at 127.0.0.1:\(port) (--upstream): Connection refused")
    }

    @Test func commandsPipelineAndRepliesComeInOrder() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        for i in 0..<100 { try c.append([bytes("INCR"), bytes("counter")]); _ = i }
        var got: [RedisReply] = []
        for _ in 0..<100 { got.append(try c.reply()) }
        #expect(got == (1...100).map { RedisReply.integer($0) })
        #expect(try c.command("SET", "k", "") == .status("OK"))
        #expect(try c.command("GET", "k") == .string([]))
        #expect(try c.command("GET", "missing") == .null)
        #expect(try c.command("NOSUCHCOMMAND").text == nil)
        if case .error(let m) = try c.command("NOSUCHCOMMAND") { #expect(m.hasPrefix("ERR unknown command")) }
        // Binary-safe arguments (NUL, non-UTF-8 bytes).
        let binary: [UInt8] = [0, 255, 10, 13, 0]
        _ = try c.command([bytes("SET"), bytes("b"), binary])
        #expect(try c.command("GET", "b") == .string(binary))
        #expect(try c.command("CLIENT", "GETNAME") == .string(bytes("test")))
    }

    @Test func theDbFromTheURLIsSelected() throws {
        let redis = try RedisServer()
        var url = redis.url
        url.db = 2
        let c = try RedisConnection(url: url, timeoutNanoseconds: 2_000_000_000, name: "db2")
        _ = try c.command("SET", "where", "two")
        let other = try redis.connection()
        #expect(try other.command("GET", "where") == .null)
        _ = try other.command("SELECT", "2")
        #expect(try other.command("GET", "where") == .string(bytes("two")))
        url.db = 99
        let error = connectError(url)
        #expect(error?.kind == .server)
        #expect(error?.description.contains("refused SELECT 99") == true)
    }

    @Test func aWrongOrMissingPasswordIsAnAuthenticationError() throws {
        let redis = try RedisServer(arguments: ["--requirepass", "right-one"])
        var url = redis.url
        url.password = "wrong-one"
        let wrong = connectError(url)
        #expect(wrong?.kind == .authentication)
        #expect(wrong?.description.hasPrefix("Redis at 127.0.0.1:\(redis.port) refused the password (--upstream): WRONGPASS") == true)
        #expect(wrong?.description.contains("wrong-one") == false)

        url.password = nil
        let missing = connectError(url)
        #expect(missing?.kind == .authentication)
        #expect(missing?.description.hasPrefix("Redis at 127.0.0.1:\(redis.port) needs a password") == true)

        url.password = "right-one"
        #expect(connectError(url) == nil)
        url.user = "default"
        #expect(connectError(url) == nil)
        url.user = "nobody"
        #expect(connectError(url)?.kind == .authentication)
    }

    @Test func aPasswordForARedisWithoutOneIsRefusedClearly() throws {
        let redis = try RedisServer()
        var url = redis.url
        url.password = "unneeded"
        let error = connectError(url)
        #expect(error?.kind == .authentication)
        #expect(error?.description.contains("Redis has none configured") == true)
    }

    @Test func aServerThatStopsAnsweringTimesOutAndTheConnectionIsDead() throws {
        let redis = try RedisServer(arguments: ["--enable-debug-command", "yes"])
        let c = try RedisConnection(url: redis.url, timeoutNanoseconds: 200_000_000, name: "t")
        // DEBUG SLEEP holds the server longer than the client's timeout.
        let started = ContinuousClock.now
        try c.append([bytes("DEBUG"), bytes("SLEEP"), bytes("1")])
        var kind: UpstreamError.Kind?
        do throws(UpstreamError) { _ = try c.reply() } catch { kind = error.kind }
        #expect(kind == .timeout)
        #expect(ContinuousClock.now - started < .milliseconds(900))
        #expect(c.isBroken)
        do throws(UpstreamError) {
            _ = try c.command("PING")
            Issue.record("a dead connection answered")
        } catch {
            #expect(error.kind == .timeout)
        }
    }

    @Test func anEpochMadeOverASurvivingStreamStartsAfterItsEntries() throws {
        // The meta hash is gone (evicted, deleted) but the stream and counter are not: the new
        // epoch must not claim the old entries, and its seqs start at 1.
        let redis = try RedisServer()
        let c = try redis.connection()
        let keys = ClusterKeys(key: "rg-evicted")
        _ = try c.command("XADD", keys.stream, "5-1", "seq", "41", "epoch", "0000aaaa")
        _ = try c.command("XADD", keys.stream, "6-0", "seq", "42", "epoch", "0000aaaa")
        _ = try c.command("SET", keys.seq, "42")
        let made = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0x0000bbbb })
        #expect(made.epoch == 0xbbbb && made.start == StreamID(milliseconds: 6, sequence: 0))
        #expect(try c.command("GET", keys.seq) == .string(Array("0".utf8)))
        // Read again, nothing changes.
        let again = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0x0000cccc })
        #expect(again.epoch == 0xbbbb && again.start == StreamID(milliseconds: 6, sequence: 0))
    }

    @Test func ensureEpochCreatesItOnceAndThenReadsIt() throws {
        let redis = try RedisServer()
        let c = try redis.connection()
        let keys = ClusterKeys(key: "rg-test")
        #expect(keys == ClusterKeys(key: "rg-test"))
        #expect((keys.stream, keys.seq, keys.meta) == ("rg-test", "rg-test:seq", "rg-test:meta"))
        let first = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 0x0102abcd })
        #expect(first.epoch == 0x0102abcd && first.start == .zero)
        #expect(try c.command("HGET", keys.meta, "epoch") == .string(bytes("0102abcd")))
        let second = try ClusterMeta.ensureEpoch(try redis.connection(), keys: keys, random: { 0x99 })
        #expect(second.epoch == 0x0102abcd && second.start == .zero)
        // A meta hash written by a bump keeps its start.
        _ = try c.command("HSET", keys.meta, "epoch", "0000beef", "start", "17-4")
        let third = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 1 })
        #expect(third.epoch == 0xbeef && third.start == StreamID(milliseconds: 17, sequence: 4))
        _ = try c.command("HSET", keys.meta, "epoch", "garbage")
        do throws(UpstreamError) {
            _ = try ClusterMeta.ensureEpoch(c, keys: keys, random: { 1 })
            Issue.record("a bad epoch was accepted")
        } catch {
            #expect(error.kind == .protocolError)
            #expect(error.description.contains("rg-test:meta epoch is not 8 hex digits"))
        }
    }

    @Test func anIPv6LoopbackHostConnects() throws {
        let redis = try RedisServer(arguments: ["--bind", "127.0.0.1 ::1"])
        let url = try UpstreamURL.parse("redis://[::1]:\(redis.port)/0?key=k", passwordFromEnvironment: nil)
        let c = try RedisConnection(url: url, timeoutNanoseconds: 2_000_000_000, name: "v6")
        #expect(try c.command("PING") == .status("PONG"))
    }

    @Test func theServerVersionIsReadFromInfo() {
        #expect(RedisConnection.version(inInfo: "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n") == [7, 0, 15])
        #expect(RedisConnection.version(inInfo: "# Server\r\n") == [])
    }
}
