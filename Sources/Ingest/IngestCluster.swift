import CRinggateSys
import HTTPServer
import GatewayCore
import Glibc
import Logging
import RingLog
import RoleSupport
import Upstream
import WireProtocol

/// Cluster mode's state in the ingest: the link to Redis (its own two threads), the publishes
/// Redis has not answered yet, and those answered but not yet in the local log.
final class IngestCluster {
    struct Pending {
        let ticket: DeferredAnswer
        /// The slot of a single publish (its 201 names it); nil for a batch.
        let slot: [UInt8]?
        let count: Int
        let keepAlive: Bool
    }

    struct Applied {
        let pending: Pending
        let firstSeq: UInt64
    }

    let link: UpstreamLink
    let wakeFD: Int32
    let settings: UpstreamSettings
    var nextToken: UInt64 = 1
    /// Submitted to the link, keyed by job token; bounded by the link's queue limit.
    var submitted: [UInt64: Pending] = [:]
    var waiting = AppliedWaitQueue<StreamID, Applied>()
    /// The last head seq seen and when it moved, for the stall verdict.
    var lastHeadSeq: UInt64 = 0
    var lastHeadMoveNanoseconds: UInt64 = 0
    /// Set once the host must be re-initialised: nothing more is applied or accepted.
    var reinitializeReason: String? = nil
    var malformedLogged = 0
    /// Where the replay check copies a record: a quarter of the log at most, so it is made
    /// once, on the first entry not ahead of the head (a restart's re-read), never per turn.
    private var scratch: UnsafeMutableRawBufferPointer? = nil

    func replayScratch(maxRecordBytes: Int) -> UnsafeMutableRawBufferPointer {
        if let scratch { return scratch }
        let made = UnsafeMutableRawBufferPointer.allocate(byteCount: maxRecordBytes, alignment: 8)
        scratch = made
        return made
    }

    deinit { scratch?.deallocate() }

    init(link: UpstreamLink, wakeFD: Int32, settings: UpstreamSettings) {
        self.link = link
        self.wakeFD = wakeFD
        self.settings = settings
    }
}

extension Ingest {
    /// The link's settings from the configuration and the log (its epoch and stored cursor).
    static func upstreamSettings(_ config: GatewayConfig, region: LogRegion) throws -> UpstreamSettings {
        guard let text = config.upstream else { throw RoleStartError("cluster mode without --upstream") }
        let url: UpstreamURL
        do {
            url = try UpstreamURL.parse(text, passwordFromEnvironment: Ingest.environment("RINGGATE_UPSTREAM_PASSWORD"))
        } catch {
            throw RoleStartError("--upstream: \(error)")
        }
        let cursor = region.upstreamCursor
        var host = [CChar](repeating: 0, count: 256)
        _ = gethostname(&host, host.count - 1)
        let hostName = String(cString: host)
        return UpstreamSettings(
            url: url, keys: ClusterKeys(key: url.key), epoch: region.epoch,
            cursor: StreamID(milliseconds: cursor.milliseconds, sequence: cursor.sequence),
            retain: config.upstreamRetain, timeoutNanoseconds: config.upstreamTimeoutNanoseconds,
            waitReplicas: config.upstreamWaitReplicas, maxQueuedEvents: config.upstreamMaxQueuedEvents,
            tailBatch: config.upstreamTailBatch, hostName: "ringgate-\(hostName)-\(getpid())",
            maxQueuedBytes: config.maxPendingBodyBytes)
    }

    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    /// Sends one publish (a single event or a whole batch, which Redis takes all or nothing)
    /// to the cluster; its answer is given when Redis has answered and the log holds it.
    func clusterPublish(_ conn: Int32, _ request: HTTPRequest, events: [PublishEvent], slot: [UInt8]?) {
        guard let cluster else { return }
        if let reason = cluster.reinitializeReason {
            counters.add(.upstreamUnavailable)
            return reject(conn, status: 503, error: "upstream_unavailable",
                          detail: "this host is re-initialising (\(reason)); publish again in a moment",
                          headers: [("Retry-After", "1")])
        }
        guard events.count <= config.upstreamMaxQueuedEvents else {
            return reject(conn, status: 413, error: "payload_too_large",
                          detail: "the batch has \(events.count) events; in cluster mode a batch is one Redis call and may hold at most --upstream-max-queued-events \(config.upstreamMaxQueuedEvents); nothing was appended")
        }
        guard let ticket = engine.deferAnswer(conn) else {
            counters.add(.upstreamQueueFull)
            return reject(conn, status: 503, error: "upstream_busy",
                          detail: "too many publishes wait for Redis; nothing was appended", headers: [("Retry-After", "1")])
        }
        let token = cluster.nextToken
        cluster.nextToken += 1
        let job = PublishJob(token: token, events: events, timeMilliseconds: rg_realtime_ns() / 1_000_000)
        guard cluster.link.submit(job) else {
            counters.add(.upstreamQueueFull)
            counters.add(.publishRejected)
            engine.answerError(ticket, status: 503, error: "upstream_busy",
                               detail: "the publishes waiting for Redis hold --upstream-max-queued-events \(config.upstreamMaxQueuedEvents) events or --max-pending-body-bytes \(config.maxPendingBodyBytes) bytes; nothing was appended",
                               extraHeaders: [("Retry-After", "1")])
            return
        }
        cluster.submitted[token] = IngestCluster.Pending(ticket: ticket, slot: slot, count: events.count,
                                                         keepAlive: request.keepAlive)
    }

    /// The link's wake: its answers, then the entries it tailed, then the 201s they made due.
    func clusterWake() {
        guard let cluster else { return }
        cluster.link.drainCompletions { completion in
            guard let pending = cluster.submitted.removeValue(forKey: completion.token) else { return }
            switch completion.outcome {
            case .appended(let firstSeq):
                counters.observeUpstreamPublish(nanoseconds: completion.roundTripNanoseconds)
                if let reason = cluster.reinitializeReason {
                    // Taken under the epoch this host is leaving: the new epoch's history starts
                    // after it, so it will never be served. Not acknowledged.
                    counters.add(.upstreamUnavailable)
                    engine.answerError(pending.ticket, status: 503, error: "upstream_unavailable",
                                       detail: "this host is re-initialising (\(reason)); publish again in a moment",
                                       extraHeaders: [("Retry-After", "1")])
                    return
                }
                // Applied once the tail's cursor reaches the call's last entry (a seq at or
                // below the head may name another event after a fork of the history: then
                // the tail finds the divergence first and the host re-initialises).
                let key = completion.lastStreamID ?? StreamID(milliseconds: .max, sequence: .max)
                cluster.waiting.append(key: key, dueNanoseconds: engine.nowNanoseconds + config.upstreamTimeoutNanoseconds,
                                       IngestCluster.Applied(pending: pending, firstSeq: firstSeq))
            case .unavailable(let why):
                counters.add(.upstreamUnavailable)
                counters.add(.publishRejected)
                engine.answerError(pending.ticket, status: 503, error: "upstream_unavailable",
                                   detail: "Redis (--upstream) did not take the publish: \(why)", extraHeaders: [("Retry-After", "1")])
            case .notReplicated(let why):
                counters.add(.publishRejected)
                engine.answerError(pending.ticket, status: 503, error: "upstream_not_replicated",
                                   detail: "Redis took the publish but fewer than --upstream-wait-replicas \(config.upstreamWaitReplicas) replicas confirmed it (\(why)); it may still be delivered",
                                   extraHeaders: [("Retry-After", "1")])
            case .epochChanged(let epoch):
                counters.add(.upstreamUnavailable)
                counters.add(.publishRejected)
                engine.answerError(pending.ticket, status: 503, error: "upstream_unavailable",
                                   detail: "the cluster epoch changed; this host is re-initialising", extraHeaders: [("Retry-After", "1")])
                beginReinitialize("the cluster epoch is now \(epoch.map { Ingest.hex($0) } ?? "none"), the log's is \(Ingest.hex(region.epoch))")
            }
        }
        if cluster.reinitializeReason == nil {
            let more = applyTail(cluster)
            if more { _ = rg_eventfd_signal(cluster.wakeFD) }   // the rest on the next turn
        }
        answerApplied(cluster)
    }

    /// Appends what the tail read, in stream order, with the cluster's seqs. At most one
    /// bounded batch per loop turn, so publishes and probes are served while a host catches up.
    func applyTail(_ cluster: IngestCluster) -> Bool {
        let reader = LogReader(region: region)
        var changed = false
        let more = cluster.link.drainTail(maxEntries: Ingest.tailEntriesPerTurn) { event in
            guard cluster.reinitializeReason == nil else { return }
            switch event {
            case .entry(let entry):
                let head = writer.headSeq
                let decision = ClusterApply.decide(entryEpoch: entry.epoch, entrySeq: entry.seq, logEpoch: region.epoch,
                                                   headSeq: head) {
                    entry.slot.withUnsafeBytes { s in entry.type.withUnsafeBytes { t in entry.data.withUnsafeBytes { d in
                        reader.holdsEvent(seq: entry.seq, slot: s, type: t, data: d,
                                          timeMilliseconds: entry.timeMilliseconds,
                                          scratch: cluster.replayScratch(maxRecordBytes: region.geometry.maxRecordBytes))
                    } } }
                }
                switch decision {
                case .append(let gapFrom):
                    // The cursor moves past what was applied (or replayed) only: an entry that
                    // makes the host re-initialise must be read again if it does not.
                    writer.setUpstreamCursor(milliseconds: entry.id.milliseconds, sequence: entry.id.sequence)
                    changed = true
                    if let gapFrom {
                        counters.add(.upstreamGaps)
                        counters.add(.upstreamGapDroppedEvents, entry.seq - gapFrom)
                        logger.warning("cluster stream: seqs \(gapFrom)...\(entry.seq - 1) are not in the stream (trimmed while this host was away, or lost by Redis); readers crossing them get reset reason gap",
                                       metadata: ["missing": "\(entry.seq - gapFrom)"])
                    }
                    appendEntry(entry)
                case .replay:
                    writer.setUpstreamCursor(milliseconds: entry.id.milliseconds, sequence: entry.id.sequence)
                    changed = true
                    counters.add(.upstreamEntriesReplayed)
                case .diverged:
                    counters.add(.upstreamDivergences)
                    let newEpoch = Ingest.randomEpoch()
                    cluster.link.reportDivergence(newEpoch: newEpoch)
                    beginReinitialize("the stream holds a different event under seq \(entry.seq), which this host already applied (head \(head)): the cluster's history diverged; asked for a new epoch")
                case .otherEpoch:
                    beginReinitialize("a stream entry of epoch \(Ingest.hex(entry.epoch)) follows this host's cursor; the log's epoch is \(Ingest.hex(region.epoch))")
                }
            case .malformed(let id, let seq, let why):
                writer.setUpstreamCursor(milliseconds: id.milliseconds, sequence: id.sequence)
                changed = true
                if cluster.malformedLogged < 10 {
                    cluster.malformedLogged += 1
                    logger.error("cluster stream: entry \(id) is not a Ringgate event (\(why)); skipped")
                }
                if let seq, seq > writer.headSeq {
                    counters.add(.upstreamGaps)
                    counters.add(.upstreamGapDroppedEvents, seq - writer.headSeq)
                    try? writer.recordGap(through: seq)
                }
            case .epochChanged(let epoch):
                beginReinitialize("the cluster epoch in Redis is now \(epoch.map { Ingest.hex($0) } ?? "gone (Redis lost its data)"), the log's is \(Ingest.hex(region.epoch))")
            }
        }
        // A cursor or gap without a record still has to be published.
        if changed { writer.commit() }
        return more
    }

    /// One tailed event into the log under its cluster seq; an event this host cannot hold
    /// (its limits are smaller than the publishing host's) becomes a recorded gap, never a
    /// silent hole.
    func appendEntry(_ entry: ClusterEntry) {
        let failure: String? = entry.slot.withUnsafeBytes { s -> String? in
            entry.type.withUnsafeBytes { t -> String? in
                entry.data.withUnsafeBytes { d -> String? in
                    if let (_, code, detail) = validate(slot: s, type: t, data: d, publishing: false) { return "\(code): \(detail)" }
                    do throws(LogWriter.AppendError) {
                        try writer.append(slot: s, type: t, data: d, timeMilliseconds: entry.timeMilliseconds, seq: entry.seq)
                        return nil
                    } catch {
                        switch error {
                        case .slotDirectoryFull:
                            counters.add(.slotDirectoryFull)
                            return "the slot directory is full (--max-slots \(config.maxSlots))"
                        case .recordTooLarge:
                            return "the event does not fit this host's log (--log-capacity)"
                        case .seqNotAhead:
                            return "seq \(entry.seq) is not ahead of the log's head \(writer.headSeq)"
                        }
                    }
                }
            }
        }
        if let failure {
            logger.error("cluster stream: event seq \(entry.seq) cannot be stored on this host (\(failure)); readers get reset reason gap in its place")
            if entry.seq > writer.headSeq {
                counters.add(.upstreamGaps)
                counters.add(.upstreamGapDroppedEvents)
                try? writer.recordGap(through: entry.seq)
            }
            return
        }
        counters.add(.eventsAppended)
        counters.add(.upstreamEntriesApplied)
        appendedThisTurn = true
    }

    /// The 201s whose events the log now holds (or whose wait for the local log ran out: the
    /// event is in the cluster, so it is acknowledged, and counted).
    func answerApplied(_ cluster: IngestCluster) {
        let cursor = region.upstreamCursor
        let reached = StreamID(milliseconds: cursor.milliseconds, sequence: cursor.sequence)
        cluster.waiting.drain(reached: reached, nowNanoseconds: engine.nowNanoseconds) { applied, inLog in
            if !inLog { counters.add(.upstreamAckUnapplied) }
            answerCreated(applied.pending, firstSeq: applied.firstSeq)
        }
    }

    func answerCreated(_ pending: IngestCluster.Pending, firstSeq: UInt64) {
        let epoch = region.epoch
        if let slot = pending.slot {
            slot.withUnsafeBytes { buildCreated(id: EventID(epoch: epoch, seq: firstSeq), slot: $0, keepAlive: pending.keepAlive) }
            engine.answer(pending.ticket, responseHead)
        } else {
            var body: [UInt8] = []
            body.reserveCapacity(16 + pending.count * 24)
            body += Array(#"{"ids":["#.utf8)
            for i in 0..<pending.count {
                if i > 0 { body.append(UInt8(ascii: ",")) }
                body.append(UInt8(ascii: "\""))
                EventID(epoch: epoch, seq: firstSeq + UInt64(i)).append(to: &body)
                body.append(UInt8(ascii: "\""))
            }
            body += Array("]}".utf8)
            engine.answer(pending.ticket, HTTPResponseWriter.json(status: 201, body: body, keepAlive: pending.keepAlive,
                                                                  extraHeaders: []))
        }
    }

    /// The host's log no longer matches the cluster: refuse publishes, answer every one in
    /// flight with 503, and end the loop; the supervisor re-initialises the log and restarts
    /// the host's processes (its streams end, clients reconnect and get `reset`).
    func beginReinitialize(_ reason: String) {
        guard let cluster, cluster.reinitializeReason == nil else { return }
        cluster.reinitializeReason = reason
        logger.warning("re-initialising this host: \(reason)")
        let refuse: (IngestCluster.Pending) -> Void = { pending in
            self.counters.add(.upstreamUnavailable)
            self.engine.answerError(pending.ticket, status: 503, error: "upstream_unavailable",
                                    detail: "this host is re-initialising (\(reason)); publish again in a moment",
                                    extraHeaders: [("Retry-After", "1")])
        }
        cluster.waiting.removeAll { refuse($0.pending) }
        exitCode = RoleExit.reinitialize
        if shutdown.begin(nowNanoseconds: engine.nowNanoseconds) { engine.stopServing() }
    }

    /// Every loop tick: the lag and stall gauges, and 201s whose wait for the log ran out.
    func clusterTick(nowNanoseconds now: UInt64) {
        guard let cluster else { return }
        let head = writer.headSeq
        if head != cluster.lastHeadSeq || cluster.lastHeadMoveNanoseconds == 0 {
            cluster.lastHeadSeq = head
            cluster.lastHeadMoveNanoseconds = now
        }
        let clusterHead = cluster.link.clusterHeadSeq
        let lag = clusterHead > head ? clusterHead - head : 0
        counters.set(.upstreamLagEvents, lag)
        // Behind a cluster that Redis says has moved on, and not moving: a host that serves
        // old data must not look healthy. (With Redis down there is no newer head to be
        // behind: that is `degraded`, not stalled.)
        let stalled = cluster.link.clusterHeadIsCurrent && lag > 0
            && now &- cluster.lastHeadMoveNanoseconds >= config.upstreamStallNanoseconds
        counters.set(.upstreamStalled, stalled ? 1 : 0)
        answerApplied(cluster)
    }

    static let tailEntriesPerTurn = 4096

    /// An epoch as ids print it: 8 lowercase hex digits.
    static func hex(_ epoch: UInt32) -> String {
        let digits = String(epoch, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// A new cluster epoch for the bump script (never 0, which reads as "none").
    static func randomEpoch() -> UInt32 { UInt32.random(in: 1...UInt32.max) }
}
