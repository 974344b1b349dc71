import CRinggateSys
import Foundation
import Glibc
import Logging
import RingLog
import Testing
@testable import Upstream

/// A link on a real redis-server, with its counters and wake eventfd; stopped at the end.
final class LinkHarness {
    let counters = HeapCounters()
    let wakeFD: Int32
    let link: UpstreamLink
    var completions: [UInt64: PublishCompletion] = [:]
    var completionOrder: [UInt64] = []
    var tail: [TailEvent] = []

    init(_ redis: RedisServer, epoch: UInt32, cursor: StreamID = .zero, timeoutNanoseconds: UInt64 = 1_000_000_000,
         maxQueuedEvents: Int = 100_000, tailBatch: Int = 1000, waitReplicas: Int = 0, host: String = "a",
         maxQueuedBytes: Int = 64 << 20)
    {
        wakeFD = rg_eventfd(0, 1)
        let settings = UpstreamSettings(url: redis.url, keys: ClusterKeys(key: redis.url.key), epoch: epoch, cursor: cursor,
                                        retain: 1_000_000, timeoutNanoseconds: timeoutNanoseconds, waitReplicas: waitReplicas,
                                        maxQueuedEvents: maxQueuedEvents, tailBatch: tailBatch, hostName: host,
                                        maxQueuedBytes: maxQueuedBytes)
        link = UpstreamLink(settings: settings, counters: counters.block, wakeFD: wakeFD, logger: Logger(label: "test"))
    }

    deinit {
        link.stop()
        close(wakeFD)
    }

    /// Reads the eventfd: how many wakes since the last read (0 when none).
    func wakes() -> UInt64 {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { read(wakeFD, $0.baseAddress, 8) }
        return n == 8 ? value : 0
    }

    func drain() {
        link.drainCompletions { c in
            #expect(completions[c.token] == nil, "two completions for job \(c.token)")
            completions[c.token] = c
            completionOrder.append(c.token)
        }
        while link.drainTail(maxEntries: 100, { tail.append($0) }) {}
    }

    func waitForCompletions(_ n: Int, seconds: Double = 10) -> Bool {
        waitUntil(seconds: seconds) { drain(); return completions.count >= n }
    }

    func waitForTail(_ n: Int, seconds: Double = 10) -> Bool {
        waitUntil(seconds: seconds) { drain(); return tail.count >= n }
    }

    var entries: [ClusterEntry] {
        tail.compactMap { if case .entry(let e) = $0 { e } else { nil } }
    }

    func job(_ token: UInt64, _ data: [String], time: UInt64 = 1_700_000_000_000) -> PublishJob {
        PublishJob(token: token, events: data.map { PublishEvent(slot: bytes("room"), type: bytes("msg"), data: bytes($0)) },
                   timeMilliseconds: time)
    }
}

@Suite(.serialized) struct UpstreamLinkTests {
    let keys = ClusterKeys(key: "rg-test")

    func epoch(_ redis: RedisServer, _ value: UInt32) throws -> UInt32 {
        try ClusterMeta.ensureEpoch(try redis.connection(), keys: keys, random: { value }).epoch
    }

    @Test func aPublishCompletesWithItsFirstSeqAndTheTailYieldsItsEntries() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 0x1234abcd)
        let h = LinkHarness(redis, epoch: e)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        #expect(h.counters.block.get(.upstreamUp) == 1)
        #expect(h.link.submit(h.job(7, ["one", "two", "three"], time: 42)))
        #expect(h.waitForCompletions(1))
        #expect(h.completions[7]?.outcome == .appended(firstSeq: 1))
        #expect(h.waitForTail(3))
        #expect(h.wakes() > 0)
        let got = h.entries
        #expect(got.map(\.seq) == [1, 2, 3])
        #expect(got.map { String(decoding: $0.data, as: UTF8.self) } == ["one", "two", "three"])
        #expect(got.allSatisfy { $0.epoch == e && $0.slot == bytes("room") && $0.type == bytes("msg") && $0.timeMilliseconds == 42 })
        #expect(got[0].id < got[1].id && got[1].id < got[2].id)
        // The head is polled about twice a second: it may lag the tail by one poll (seen in CI).
        #expect(waitUntil { h.link.clusterHeadSeq == 3 })
        #expect(h.counters.block.get(.upstreamClusterHeadSeq) == 3)
        // The round-trip histogram is the ingest's (one observation per publish, from its loop).
        #expect(h.counters.block.get(.upstreamPublishCount) == 0)
        #expect(h.counters.block.get(.upstreamQueueEvents) == 0)
    }

    @Test func manyPipelinedJobsGetDenseSeqsInSubmissionOrder() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 9)
        let h = LinkHarness(redis, epoch: e)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        var sizes: [UInt64: Int] = [:]
        var total = 0
        for token in UInt64(1)...1500 {
            // Mostly single events, every 50th a batch of 30; times vary so not all can merge.
            let n = token % 50 == 0 ? 30 : 1
            sizes[token] = n
            total += n
            #expect(h.link.submit(h.job(token, (0..<n).map { "\(token).\($0)" }, time: 1000 + token / 7)))
        }
        #expect(h.waitForCompletions(1500))
        var expected: UInt64 = 1
        for token in UInt64(1)...1500 {
            #expect(h.completions[token]?.outcome == .appended(firstSeq: expected), "job \(token)")
            expected += UInt64(sizes[token]!)
        }
        #expect(h.waitForTail(total))
        #expect(h.entries.map(\.seq) == Array(1...UInt64(total)))
        // A batch's events are consecutive, in their order.
        let batch50 = h.entries.filter { String(decoding: $0.data, as: UTF8.self).hasPrefix("50.") }
        #expect(batch50.map { String(decoding: $0.data, as: UTF8.self) } == (0..<30).map { "50.\($0)" })
    }

    @Test func aScriptFlushedUnderTheLinkIsReloaded() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 9)
        let h = LinkHarness(redis, epoch: e, waitReplicas: 0)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        #expect(h.link.submit(h.job(1, ["a"])))
        #expect(h.waitForCompletions(1))
        #expect(try redis.connection().command("SCRIPT", "FLUSH") == .status("OK"))
        for token in UInt64(2)...5 { #expect(h.link.submit(h.job(token, ["b"], time: token))) }
        #expect(h.waitForCompletions(5))
        #expect((2...5).map { h.completions[UInt64($0)]?.outcome } == (2...5).map { .appended(firstSeq: UInt64($0)) })
        #expect(h.counters.block.get(.upstreamReconnects) == 0)
    }

    @Test func theQueueLimitRefusesAndEveryQueuedJobStillCompletes() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 9)
        let h = LinkHarness(redis, epoch: e, maxQueuedEvents: 10)
        // Not started: jobs stay queued, so the limit is reached deterministically.
        for token in UInt64(1)...8 { #expect(h.link.submit(h.job(token, ["x"]))) }
        #expect(!h.link.submit(h.job(9, ["a", "b", "c"])))
        #expect(h.link.submit(h.job(10, ["a", "b"])))
        #expect(!h.link.submit(h.job(11, ["y"])))
        #expect(h.counters.block.get(.upstreamQueueEvents) == 10)
        h.link.start()
        #expect(h.waitForCompletions(9))
        #expect(h.completions[9] == nil && h.completions[11] == nil)
        #expect(h.completions[10]?.outcome == .appended(firstSeq: 9))
        #expect(h.counters.block.get(.upstreamQueueEvents) == 0)
        #expect(h.link.submit(h.job(12, (0..<10).map(String.init))))
    }

    @Test func theQueueIsBoundedInBytesTooAndALoneJobAlwaysFits() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 9)
        // Each event: "room" + "msg" + 100 bytes of data = 107 bytes.
        let h = LinkHarness(redis, epoch: e, maxQueuedBytes: 300)
        let big = String(repeating: "d", count: 100)
        #expect(h.link.submit(h.job(1, [big, big])))        // 214 bytes
        #expect(!h.link.submit(h.job(2, [big])))            // 321 > 300: refused, nothing queued
        #expect(h.link.submit(h.job(3, ["x"])))             // 8 more bytes fit
        h.link.start()
        #expect(h.waitForCompletions(2))
        #expect(h.completions[2] == nil && h.completions[1]?.outcome == .appended(firstSeq: 1))
        // Answered: the bytes are free again; and a job larger than the cap fits an empty queue.
        #expect(h.link.submit(h.job(4, [big, big, big, big])))
        #expect(h.waitForCompletions(3))
        #expect(h.completions[4]?.outcome == .appended(firstSeq: 4))
    }

    @Test func withoutRedisPublishesFailAtOnceAndUndrainedFailuresAreBounded() throws {
        let redis = try RedisServer()
        redis.stop()   // a free port, nothing listening
        let h = LinkHarness(redis, epoch: 1, maxQueuedEvents: 3)
        h.link.start()
        // The first connect fails; from then on jobs fail at once.
        #expect(waitUntil { h.link.monitor.withLock { h.link.publisherDown } })
        #expect(!h.link.isUp && h.counters.block.get(.upstreamUp) == 0)
        for token in UInt64(1)...3 { #expect(h.link.submit(h.job(token, ["x"]))) }
        #expect(!h.link.submit(h.job(4, ["x"])))   // three failures not drained yet
        h.drain()
        #expect(h.completions.count == 3)
        guard case .unavailable(let why) = h.completions[1]?.outcome else {
            Issue.record("\(String(describing: h.completions[1]))")
            return
        }
        #expect(why == "cannot connect to Redis at 127.0.0.1:\(redis.port) (--upstream): Connection refused")
        #expect(h.link.submit(h.job(5, ["x"])))
    }

    @Test func redisKilledFailsPublishesWithinTheTimeoutAndARestartResumesTheTail() throws {
        // Persistence on (fsync each write) so the restarted Redis has the stream: the tail must
        // resume after its cursor, not from the start.
        let redis = try RedisServer(arguments: ["--appendonly", "yes", "--appendfsync", "always"])
        let e = try epoch(redis, 0x77)
        let h = LinkHarness(redis, epoch: e, timeoutNanoseconds: 500_000_000)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        #expect(h.link.submit(h.job(1, ["a", "b", "c", "d", "e"])))
        #expect(h.waitForTail(5))

        redis.stop()
        #expect(waitUntil { !h.link.isUp })
        #expect(h.counters.block.get(.upstreamUp) == 0)
        let submitted = ContinuousClock.now
        #expect(h.link.submit(h.job(2, ["lost"])))
        #expect(h.waitForCompletions(2))
        guard case .unavailable(let why) = h.completions[2]?.outcome else {
            Issue.record("not unavailable: \(String(describing: h.completions[2]))")
            return
        }
        #expect(ContinuousClock.now - submitted < .milliseconds(500 + 400))
        #expect(why.contains("127.0.0.1:\(redis.port)"))

        // While it is down another writer adds entries the tail must still see once.
        try redis.start()
        let other = try redis.connection()
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        _ = try script.run(on: other, keys: [keys.stream, keys.seq, keys.meta],
                           arguments: [bytes(ClusterMeta.epochHex(e)), bytes("1000"), bytes("5"), bytes("1"), bytes("s"), bytes("t"), bytes("f")])
        #expect(waitUntil { h.link.isUp })
        #expect(h.counters.block.get(.upstreamReconnects) >= 2)   // publisher and tail
        #expect(h.link.submit(h.job(3, ["g", "h"])))
        #expect(h.waitForCompletions(3))
        #expect(h.completions[3]?.outcome == .appended(firstSeq: 7))
        #expect(h.waitForTail(8))
        _ = waitUntil(seconds: 0.3) { h.drain(); return false }   // anything extra would show up here
        #expect(h.entries.map(\.seq) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(h.entries.map { String(decoding: $0.data, as: UTF8.self) } == ["a", "b", "c", "d", "e", "f", "g", "h"])
    }

    @Test func aRedisThatDoesNotAnswerFailsTheJobWithinTheTimeout() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 3)
        let h = LinkHarness(redis, epoch: e, timeoutNanoseconds: 300_000_000)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        // CLIENT PAUSE holds every other client's commands for 1.5 s: Redis is up but silent.
        #expect(try redis.connection().command("CLIENT", "PAUSE", "1500", "ALL") == .status("OK"))
        let submitted = ContinuousClock.now
        #expect(h.link.submit(h.job(1, ["late"])))
        #expect(h.waitForCompletions(1))
        guard case .unavailable(let why) = h.completions[1]?.outcome else {
            Issue.record("not unavailable: \(String(describing: h.completions[1]))")
            return
        }
        #expect(why.contains("did not answer within 300 ms"))
        #expect(ContinuousClock.now - submitted < .milliseconds(300 + 300))
        // Once Redis answers again the link reconnects and publishes.
        #expect(waitUntil { h.link.isUp })
        #expect(h.link.submit(h.job(2, ["after"])))
        #expect(h.waitForCompletions(2))
        if case .appended = h.completions[2]?.outcome {} else { Issue.record("after: \(String(describing: h.completions[2]))") }
    }

    @Test func waitReplicasAcknowledgesOnlyWhatAReplicaHas() throws {
        let primary = try RedisServer(arguments: ["--repl-diskless-sync-delay", "0"])
        let e = try epoch(primary, 4)
        // No replica: WAIT 1 answers 0, the job fails as not replicated (it is in the primary).
        let lone = LinkHarness(primary, epoch: e, timeoutNanoseconds: 400_000_000, waitReplicas: 1)
        lone.link.start()
        #expect(waitUntil { lone.link.isUp })
        #expect(lone.link.submit(lone.job(1, ["x"])))
        #expect(lone.waitForCompletions(1))
        guard case .notReplicated(let why) = lone.completions[1]?.outcome else {
            Issue.record("\(String(describing: lone.completions[1]))")
            return
        }
        #expect(why.hasPrefix("WAIT 1: 0 replicas acknowledged"))
        #expect(lone.waitForTail(1))

        // A real replica: WAIT 1 answers 1, the job is appended.
        let replica = try RedisServer(arguments: ["--replicaof", "127.0.0.1", String(primary.port)])
        let probe = try replica.connection()
        #expect(waitUntil {
            guard case .string(let info) = (try? probe.command("INFO", "replication")) ?? .null else { return false }
            return String(decoding: info, as: UTF8.self).contains("master_link_status:up")
        })
        let h = LinkHarness(primary, epoch: e, timeoutNanoseconds: 5_000_000_000, waitReplicas: 1, host: "b")
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        #expect(h.link.submit(h.job(2, ["y", "z"])))
        #expect(h.waitForCompletions(1))
        #expect(h.completions[2]?.outcome == .appended(firstSeq: 2))
        #expect(try replica.connection().command("XLEN", keys.stream) == .integer(3))
    }

    @Test func anEpochChangedInRedisReachesTheTailAndThePublisher() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 0x10)
        let h = LinkHarness(redis, epoch: e)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        _ = try redis.connection().command("HSET", keys.meta, "epoch", "00000020")
        #expect(h.waitForTail(1, seconds: 5))
        guard case .epochChanged(let cluster) = h.tail.first else {
            Issue.record("first tail event \(String(describing: h.tail.first))")
            return
        }
        #expect(cluster == 0x20)
        #expect(h.link.submit(h.job(1, ["x"])))
        #expect(h.waitForCompletions(1))
        #expect(h.completions[1]?.outcome == .epochChanged(clusterEpoch: 0x20))
        // Posted once, not on every poll.
        _ = waitUntil(seconds: 1.2) { h.drain(); return false }
        #expect(h.tail.count == 1)

        // Redis wiped (meta gone): another link sees no epoch.
        _ = try redis.connection().command("FLUSHALL")
        let h2 = LinkHarness(redis, epoch: 0x20, host: "b")
        h2.link.start()
        #expect(h2.waitForTail(1, seconds: 5))
        guard case .epochChanged(nil) = h2.tail.first else {
            Issue.record("wiped: \(String(describing: h2.tail.first))")
            return
        }
        #expect(h2.link.submit(h2.job(1, ["x"])))
        #expect(h2.waitForCompletions(1))
        #expect(h2.completions[1]?.outcome == .epochChanged(clusterEpoch: nil))
    }

    @Test func twoHostsReportingTheSameDivergenceMakeOneNewEpoch() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 0x100)
        let a = LinkHarness(redis, epoch: e, host: "a"), b = LinkHarness(redis, epoch: e, host: "b")
        a.link.start()
        b.link.start()
        #expect(waitUntil { a.link.isUp && b.link.isUp })
        #expect(a.link.submit(a.job(1, ["x", "y"])))
        #expect(a.waitForCompletions(1))
        a.link.reportDivergence(newEpoch: 0x200)
        b.link.reportDivergence(newEpoch: 0x300)
        let c = try redis.connection()
        #expect(waitUntil { (try? c.command("HGET", keys.meta, "epoch")) != .string(bytes("00000100")) })
        #expect(waitUntil { a.waitForTail(3, seconds: 0) && b.waitForTail(1, seconds: 0) })
        let now = try c.command("HGET", keys.meta, "epoch")
        #expect(now == .string(bytes("00000200")) || now == .string(bytes("00000300")))
        // Whoever lost the race did not bump again: seq is 0 and the epoch stays.
        a.link.stop()
        b.link.stop()
        #expect(try c.command("HGET", keys.meta, "epoch") == now)
        #expect(try c.command("GET", keys.seq) == .string(bytes("0")))
    }

    @Test func theTailWaitsWhileItsQueueIsFullAndLosesNothing() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 1)
        let c = try redis.connection()
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        var argv = [bytes("00000001"), bytes("100000"), bytes("1"), bytes("500")]
        for i in 0..<500 { argv += [bytes("s"), bytes("t"), bytes("\(i)")] }
        _ = try script.run(on: c, keys: [keys.stream, keys.seq, keys.meta], arguments: argv)
        let h = LinkHarness(redis, epoch: e, tailBatch: 10)
        h.link.start()
        #expect(waitUntil { h.link.monitor.withLock { h.link.tailQueue.count - h.link.tailHead } >= 31 })
        usleep(300_000)   // room for an overfill to happen, were the limit not kept
        #expect(h.link.monitor.withLock { h.link.tailQueue.count - h.link.tailHead } <= 40)
        #expect(h.waitForTail(500))
        #expect(h.entries.map(\.seq) == Array(1...500))
    }

    @Test func theTailStartsAfterTheCursor() throws {
        let redis = try RedisServer()
        let e = try epoch(redis, 1)
        let c = try redis.connection()
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        var ids: [StreamID] = []
        for i in 0..<5 {
            let r = try script.run(on: c, keys: [keys.stream, keys.seq, keys.meta],
                                   arguments: [bytes("00000001"), bytes("1000"), bytes("1"), bytes("1"), bytes("s"), bytes("t"), bytes("\(i)")])
            guard case .array(let p) = r, case .string(let id) = p[1] else { throw TestFailure("\(r)") }
            ids.append(StreamID(bytes: id)!)
        }
        let h = LinkHarness(redis, epoch: e, cursor: ids[2])
        h.link.start()
        #expect(h.waitForTail(2))
        _ = waitUntil(seconds: 0.3) { h.drain(); return false }
        #expect(h.entries.map(\.seq) == [4, 5])
        #expect(h.entries.first?.id == ids[3])
    }
}
