import Foundation
import Testing
@testable import Upstream

/// Loopback throughput of the link, printed for the report; no speed is asserted. Runs only
/// with RINGGATE_UPSTREAM_BENCH=1 (it loads the machine for a few seconds).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["RINGGATE_UPSTREAM_BENCH"] == "1"))
struct UpstreamLinkThroughputTests {
    func nowMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    func publish(_ h: LinkHarness, jobs: Int, eventsPerJob: Int, firstToken: UInt64) -> Double {
        let payload = String(repeating: "x", count: 64)
        let start = Date()
        var token = firstToken
        var submitted = 0
        let target = h.completions.count + jobs
        while submitted < jobs {
            let job = PublishJob(token: token, events: (0..<eventsPerJob).map { _ in
                PublishEvent(slot: bytes("room"), type: bytes("msg"), data: bytes(payload)) }, timeMilliseconds: nowMilliseconds())
            if h.link.submit(job) {
                token += 1
                submitted += 1
            } else {
                h.drain()
            }
        }
        #expect(h.waitForCompletions(target, seconds: 120))
        return Date().timeIntervalSince(start)
    }

    @Test func publishAndTailRates() throws {
        let redis = try RedisServer()
        let e = try ClusterMeta.ensureEpoch(try redis.connection(), keys: ClusterKeys(key: "rg-test"), random: { 1 }).epoch
        let h = LinkHarness(redis, epoch: e, tailBatch: 1000)
        h.link.start()
        #expect(waitUntil { h.link.isUp })
        let singles = 20_000
        let t1 = publish(h, jobs: singles, eventsPerJob: 1, firstToken: 1)
        let batches = 500
        let t2 = publish(h, jobs: batches, eventsPerJob: 100, firstToken: 1_000_000)
        #expect(h.completions.values.allSatisfy { if case .appended = $0.outcome { true } else { false } })
        print("BENCH publish single-event jobs: \(singles) in \(String(format: "%.2f", t1)) s = \(Int(Double(singles) / t1)) completions/s")
        print("BENCH publish 100-event jobs: \(batches) in \(String(format: "%.2f", t2)) s = \(Int(Double(batches) / t2)) completions/s = \(Int(Double(batches * 100) / t2)) events/s")

        // A second link tails the whole stream from 0-0.
        let total = singles + batches * 100
        let reader = LinkHarness(redis, epoch: e, tailBatch: 1000, host: "reader")
        let start = Date()
        reader.link.start()
        #expect(reader.waitForTail(total, seconds: 120))
        let t3 = Date().timeIntervalSince(start)
        #expect(reader.entries.map(\.seq) == Array(1...UInt64(total)))
        print("BENCH tail: \(total) entries in \(String(format: "%.2f", t3)) s = \(Int(Double(total) / t3)) entries/s (includes connect)")
    }
}
