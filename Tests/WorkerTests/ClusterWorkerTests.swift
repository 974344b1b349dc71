import Foundation   // JSONSerialization, to check bodies the way a client parses them
import Testing
@testable import RingLog
import WireProtocol
@testable import Worker

/// Cluster mode in the worker without sockets: history pulls across gaps in the log, the
/// cluster `/readyz` answers and the cluster metrics.
@Suite struct ClusterWorkerTests {
    final class Log {
        let base: UnsafeMutableRawPointer
        let region: LogRegion
        let scratch: UnsafeMutableRawBufferPointer
        var writer: LogWriter

        init() {
            let geometry = try! LogGeometry(capacityBytes: 16 << 10, maxSlots: 8)
            base = .allocate(byteCount: geometry.totalBytes, alignment: 4096)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
            region = try! LogRegion.format(base: base, length: geometry.totalBytes, geometry: geometry, epoch: 0x5f3a_9c01)
            scratch = .allocate(byteCount: geometry.maxRecordBytes, alignment: 8)
            writer = LogWriter(region: region, reuseRolledBackSeqs: true)
        }

        deinit {
            base.deallocate()
            scratch.deallocate()
        }

        func apply(_ slot: String, seq: UInt64) {
            let s = Array(slot.utf8), t = Array("m".utf8), d = Array("\"\(seq)\"".utf8)
            s.withUnsafeBytes { sp in
                t.withUnsafeBytes { tp in
                    d.withUnsafeBytes { dp in _ = try! writer.append(slot: sp, type: tp, data: dp, timeMilliseconds: 1, seq: seq) }
                }
            }
        }

        func id(_ seq: UInt64) -> String { EventID(epoch: region.epoch, seq: seq).description }

        func history(_ slot: String, after: UInt64?, limit: Int = 100) -> (ids: [String], reset: Bool) {
            var json = JSONWriter()
            let body = HistoryBody(reader: LogReader(region: region), scratch: scratch)
            let complete = Array(slot.utf8).withUnsafeBytes { name in
                body.write(&json, HistoryBody.Query(slot: name, after: after, foreignEpoch: false,
                                                    requestedAfter: after.map { id($0) }, limit: limit))
            }
            #expect(complete)
            let object = try! JSONSerialization.jsonObject(with: Data(json.bytes)) as! [String: Any]
            let ids = (object["events"] as! [[String: Any]]).map { $0["id"] as! String }
            return (ids, object["reset"] as! Bool)
        }
    }

    /// a@1 b@2 a@3, gap 4...6, a@7, b@8, gap 9...10.
    func gappedLog() -> Log {
        let log = Log()
        log.apply("a", seq: 1)
        log.apply("b", seq: 2)
        log.apply("a", seq: 3)
        log.apply("a", seq: 7)
        log.apply("b", seq: 8)
        try! log.writer.recordGap(through: 10)
        log.writer.commit()
        return log
    }

    @Test func aHistoryPullThatCrossesAGapSaysResetOneBeforeItDoesNot() {
        let log = gappedLog()
        // Before the gap: the events returned skip nothing.
        #expect(log.history("a", after: 1, limit: 1) == ([log.id(3)], false))
        #expect(log.history("b", after: 1, limit: 1) == ([log.id(2)], false))
        // Across it: 4...6 are missing from this host (of any slot).
        #expect(log.history("a", after: 1) == ([log.id(3), log.id(7)], true))
        #expect(log.history("a", after: 3) == ([log.id(7)], true))
        #expect(log.history("b", after: 2) == ([log.id(8)], true))
        // After it: nothing missing between.
        #expect(log.history("a", after: 7) == ([], false))
        #expect(log.history("b", after: 8) == ([], false))
        // The newest events (no `after`): no position to have crossed anything from.
        #expect(log.history("a", after: nil) == ([log.id(1), log.id(3), log.id(7)], false))
    }

    @Test func aSingleHostLogsHistoryNeverSaysGap() {
        let log = Log()
        for seq in 1...6 { log.apply(seq % 2 == 0 ? "b" : "a", seq: UInt64(seq)) }
        #expect(log.history("a", after: 1) == ([log.id(3), log.id(5)], false))
    }

    func counters(_ log: Log) -> CounterBlock { CounterBlock(region: log.region, process: ProcessBlock.ingest) }

    func readiness(_ log: Log) -> (status: Int, object: [String: Any]) {
        let answer = ClusterReadiness(region: log.region, workers: 2, stallNanoseconds: 5_000_000_000).answer()
        return (answer.status, try! JSONSerialization.jsonObject(with: Data(answer.body)) as! [String: Any])
    }

    @Test func clusterReadinessUpDegradedAndStalled() {
        let log = Log()
        let ingest = counters(log)
        ingest.set(.upstreamUp, 1)
        ingest.set(.upstreamLagEvents, 0)
        var r = readiness(log)
        #expect(r.status == 200)
        #expect(r.object["status"] as? String == "ready")
        #expect(r.object["upstream"] as? String == "up")
        #expect(r.object["lag_events"] as? Int == 0)
        #expect(r.object["degraded"] == nil)

        ingest.set(.upstreamUp, 0)
        ingest.set(.upstreamLagEvents, 12)
        r = readiness(log)
        #expect(r.status == 200)
        #expect(r.object["upstream"] as? String == "down")
        #expect(r.object["degraded"] as? Bool == true)
        #expect(r.object["lag_events"] as? Int == 12)

        ingest.set(.upstreamUp, 1)
        ingest.set(.upstreamStalled, 1)
        ingest.set(.upstreamLagEvents, 40)
        r = readiness(log)
        #expect(r.status == 503)
        #expect(r.object["status"] as? String == "stalled")
        #expect(r.object["upstream"] as? String == "up")
        #expect(r.object["lag_events"] as? Int == 40)
        #expect((r.object["detail"] as? String)?.contains("40 events ahead") == true)
        #expect((r.object["detail"] as? String)?.contains("5 s") == true)
    }

    @Test func clusterMetricsAreRenderedInClusterModeOnly() {
        let log = Log()
        let ingest = counters(log)
        ingest.set(.upstreamUp, 1)
        ingest.set(.upstreamClusterHeadSeq, 77)
        ingest.add(.upstreamGaps, 2)
        ingest.add(.upstreamGapDroppedEvents, 9)
        ingest.observeUpstreamPublish(nanoseconds: 800_000)      // le 0.001
        ingest.observeUpstreamPublish(nanoseconds: 3_000_000)    // le 0.005
        CounterBlock(region: log.region, process: ProcessBlock.worker(1)).add(.resetsGap, 4)
        CounterBlock(region: log.region, process: ProcessBlock.supervisor).add(.upstreamReinitializations)

        let single = String(decoding: MetricsRenderer(region: log.region, workers: 2).render(), as: UTF8.self)
        #expect(!single.contains("upstream"))
        #expect(!single.contains("reason=\"gap\""))

        let text = String(decoding: MetricsRenderer(region: log.region, workers: 2, isCluster: true).render(), as: UTF8.self)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for line in [
            "ringgate_upstream_up 1", "ringgate_upstream_cluster_head_seq 77", "ringgate_upstream_lag_events 0",
            "ringgate_upstream_stalled 0", "ringgate_upstream_gaps_total 2", "ringgate_upstream_gap_dropped_events_total 9",
            "ringgate_resets_total{reason=\"gap\"} 4", "ringgate_upstream_reinitializations_total 1",
            "ringgate_upstream_publish_seconds_bucket{le=\"0.0005\"} 0",
            "ringgate_upstream_publish_seconds_bucket{le=\"0.001\"} 1",
            "ringgate_upstream_publish_seconds_bucket{le=\"0.005\"} 2",
            "ringgate_upstream_publish_seconds_bucket{le=\"+Inf\"} 2",
            "ringgate_upstream_publish_seconds_sum 0.0038", "ringgate_upstream_publish_seconds_count 2",
            "ringgate_upstream_reconnects_total 0", "ringgate_upstream_queue_events 0",
            "ringgate_upstream_divergences_total 0", "ringgate_upstream_unavailable_total 0",
            "ringgate_upstream_queue_full_total 0", "ringgate_upstream_entries_applied_total 0",
            "ringgate_upstream_entries_replayed_total 0", "ringgate_upstream_ack_unapplied_total 0",
        ] {
            #expect(lines.contains(line), "missing: \(line)")
        }
        // Prometheus text format: one family's samples together, each family declared once.
        var families: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            families.append(String(line.split(separator: " ")[2]))
        }
        #expect(Set(families).count == families.count)
        let resetLines = text.split(separator: "\n").enumerated().filter { $0.element.hasPrefix("ringgate_resets_total") }.map(\.offset)
        #expect(resetLines == Array(resetLines.first!...resetLines.last!))
    }
}
