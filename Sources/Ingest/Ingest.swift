import Auth
import CRinggateSys
import HTTPServer
import GatewayCore
import IO
import Glibc
import Logging
import RingLog
import RoleSupport
import Upstream
import WireProtocol

/// The ingest process: the only writer of the log. Serves the publish API on its own
/// listener and wakes every worker once per loop turn in which it appended.
public final class Ingest: HTTPEngineDelegate {
    let config: GatewayConfig
    let region: LogRegion
    var writer: LogWriter
    let counters: CounterBlock
    let logger: Logger
    let engine: HTTPEngine
    let wakeFDs: [Int32]
    let logFD: Int32
    /// `--publish-token` and `--publish-auth jwt` (it remembers the last verified JWT).
    var publishAuth: PublishAuthorizer
    var appendedThisTurn = false
    /// Cluster mode (`--upstream`): the link to Redis and the publishes waiting on it.
    var cluster: IngestCluster? = nil
    /// What the process exits with once `run` returns: `RoleExit.reinitialize` when the host's
    /// log must be re-made for the cluster.
    public internal(set) var exitCode: Int32 = 0
    var flusherErrorsLogged: UInt64 = 0
    /// In-flight publishes get this long to finish after SIGTERM.
    var shutdown = RoleShutdown(graceNanoseconds: 2_000_000_000)
    /// An instance's, not a `static let`: the optimiser makes a static array an immortal
    /// object, whose every retain and release takes the runtime's slow path (per publish).
    let defaultType = Array("message".utf8)
    /// Connections past `--ingest-max-connections` that may only ask for `adminPaths`: the
    /// publish listener has no /metrics (workers serve it), so a few health probes is all.
    static let adminReserveConnections = 4
    static let adminPaths = [String(decoding: GatewayPath.health, as: UTF8.self)]
    /// The largest body a `/healthz` request may carry (probes send none).
    static let healthBodyBytesMax = 1024
    /// The engine's pooled buffers serve stream output, which the ingest has none of (its
    /// answers are small JSON, sent from per-response buffers): the smallest useful size.
    static let sendBufferBytes = 64 << 10

    /// The ingest on the log file, listener and wake descriptors the supervisor handed down.
    public convenience init(config: GatewayConfig, logFD: Int32, listenFD: Int32, wakeFDs: [Int32], logger: Logger) throws {
        let region = try RoleLog.attach(fd: logFD)
        let io = try IOSelection.make(IOSelection.resolve(config.io).kind,
                                      configuration: Ingest.ioConfiguration(config))
        try self.init(config: config, region: region, logFD: logFD, listenFD: listenFD, wakeFDs: wakeFDs,
                      io: io, logger: logger)
    }

    /// The backend's sizes for the ingest: few connections, large bodies (NDJSON batches), so
    /// larger receive buffers.
    public static func ioConfiguration(_ config: GatewayConfig) -> IOBackendConfiguration {
        config.ioConfiguration(receiveBufferBytes: config.ingestRecvBufferBytes)
    }

    /// The ingest on an attached log (`logFD` is its file, for fdatasync) and a given backend.
    public init(config: GatewayConfig, region: LogRegion, logFD: Int32, listenFD: Int32, wakeFDs: [Int32],
                io: any IOBackend, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.wakeFDs = wakeFDs
        self.logFD = logFD
        self.region = region
        let block = RoleLog.counters(region: region, process: ProcessBlock.ingest)
        // The scan is O(retained bytes): its stamps tell the supervisor it is alive meanwhile.
        // In cluster mode the seqs of a batch rolled back by recovery come again from the
        // stream, so they are not skipped.
        writer = LogWriter(region: region, file: logFD, progress: { block.set(.startupProgressNanoseconds, rg_monotonic_ns()) },
                           reuseRolledBackSeqs: config.isCluster)
        counters = block
        flusherErrorsLogged = block.get(.logFsyncErrors)   // the block outlives a restarted ingest
        Ingest.report(writer.recovery, counters: counters, logger: logger)
        if config.fsync == .interval {
            guard rg_flusher_start(logFD, config.fsyncIntervalNanoseconds, region.tailFieldPointer,
                                   counters.base + LogCounter.logFsyncs.rawValue * 8,
                                   counters.base + LogCounter.logFsyncNanoseconds.rawValue * 8,
                                   counters.base + LogCounter.logFsyncErrors.rawValue * 8,
                                   counters.base + LogCounter.logFsyncLastErrno.rawValue * 8) == 0
            else { throw RoleStartError("cannot start the --fsync interval flusher thread (errno \(errno))") }
        }
        do {
            publishAuth = PublishAuthorizer(publishToken: config.publishToken, verifier: try config.publisherVerifier())
        } catch {
            throw RoleStartError("--publish-auth jwt: \(error.description)")
        }
        let limits = HTTPLimits(maxBodyBytes: max(config.maxEventBytes, config.maxBatchBytes))
        var engineConfig = HTTPEngine.Configuration(
            maxConnections: config.ingestMaxConnections, headerTimeoutNanoseconds: config.headerTimeoutNanoseconds,
            limits: limits, sendBufferBytes: Ingest.sendBufferBytes, sendBufferCount: config.ingestSendBuffers)
        engineConfig.maxPipelinedRequests = config.maxPipelinedRequests
        engineConfig.maxResponseQueueBytes = config.maxResponseQueueBytes
        // Uploads are checked (token, route, size) as soon as their head is complete, and
        // their bodies share one budget, so unauthenticated or oversized bodies are never read.
        engineConfig.reportsHeadBeforeBody = true
        engineConfig.maxPendingBodyBytes = config.maxPendingBodyBytes
        engineConfig.bodyTimeoutNanoseconds = config.bodyTimeoutNanoseconds
        engineConfig.adminReserveConnections = Ingest.adminReserveConnections
        engineConfig.adminPaths = Ingest.adminPaths
        var linkWakeFD: Int32 = -1
        if config.isCluster {
            let settings = try Ingest.upstreamSettings(config, region: region)
            linkWakeFD = rg_eventfd(0, 0)
            guard linkWakeFD >= 0 else { throw RoleStartError("eventfd for the Redis link failed (errno \(errno))") }
            let link = UpstreamLink(settings: settings, counters: block, wakeFD: linkWakeFD, logger: logger)
            cluster = IngestCluster(link: link, wakeFD: linkWakeFD, settings: settings)
        }
        engine = HTTPEngine(configuration: engineConfig, io: io, listenFD: listenFD, wakeFD: linkWakeFD,
                            counters: counters, logger: logger)
        engine.delegate = self
    }

    public func run() {
        var metadata: Logger.Metadata = ["pid": "\(getpid())", "head": "\(writer.headSeq)", "io": "\(engine.io.kind.rawValue)"]
        if let cluster {
            metadata["upstream"] = "\(cluster.settings.url.redacted)"
            metadata["epoch"] = "\(Ingest.hex(region.epoch))"
            metadata["cursor"] = "\(cluster.settings.cursor)"
            cluster.link.start()
        }
        logger.info("ingest serving", metadata: metadata)
        engine.run { [unowned self] in
            shutdown.isFinished(connectionCount: engine.connectionCount, nowNanoseconds: engine.nowNanoseconds)
        }
        cluster?.link.stop()
        logger.info("ingest stopped")
    }

    public func engineWake(_ engine: HTTPEngine) { clusterWake() }
    public func engine(_ engine: HTTPEngine, streamWritable conn: Int32) {}
    public func engine(_ engine: HTTPEngine, streamClosed conn: Int32) {}

    public func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64) {
        // Stop accepting, answer what is in flight, close idle keep-alive connections.
        if RoleShutdown.takeTermination(), shutdown.begin(nowNanoseconds: nowNanoseconds) { engine.stopServing() }
        clusterTick(nowNanoseconds: nowNanoseconds)
    }

    /// Counts and logs what the recovery scan did to the log (nothing, on a clean start).
    static func report(_ recovery: LogRecovery, counters: CounterBlock, logger: Logger) {
        if recovery.rolledBackBatch { counters.add(.logRecoveryRolledBackBatches) }
        if recovery.damagedPosition != nil { counters.add(.logRecoveryDamagedRecords) }
        counters.add(.logRecoveryDiscardedBytes, recovery.discardedBytes)
        if let damaged = recovery.damagedPosition {
            logger.error("log recovery: damaged record (bad crc or framing) at position \(damaged); the log was cut there",
                         metadata: ["verified": "\(recovery.recordsVerified)", "discarded_bytes": "\(recovery.discardedBytes)",
                                    "rewound_slots": "\(recovery.rewoundSlots)"])
        }
        if let intent = recovery.damagedTailIntent {
            logger.error("log recovery: the header's tailIntent \(intent) is impossible (behind tail or more than a lap ahead): treated as damage, nothing past tail was claimed")
        }
        if recovery.seqsSkippedPastTail > 0 {
            logger.warning("log recovery: intact records past the header's tail (a rolled-back batch, or a header page older than its data after a power loss): their seqs are not reused",
                           metadata: ["skipped_seqs": "\(recovery.seqsSkippedPastTail)"])
        }
        if recovery.damagedPosition == nil && recovery.rolledBackBatch {
            logger.warning("log recovery: rolled back a batch the previous ingest did not finish (it was never acknowledged)",
                           metadata: ["discarded_bytes": "\(recovery.discardedBytes)", "rewound_slots": "\(recovery.rewoundSlots)"])
        }
    }

    public func engineTurnEnd(_ engine: HTTPEngine) {
        if config.fsync == .interval { reportFlusherErrors() }
        guard appendedThisTurn else { return }
        appendedThisTurn = false
        // Group commit: this turn's 201s are only queued; flushDirty sends them after this
        // returns, so with --fsync always they leave once every appended byte is on disk.
        if config.fsync == .always {
            let start = rg_monotonic_ns()
            // The supervisor allows a blocking flush a longer limit than a loop turn.
            counters.set(.fsyncStartedNanoseconds, start)
            let failed = rg_fdatasync(logFD) != 0
            let code = errno
            // Heartbeat first, then the stamp clears (the supervisor reads them the other way
            // round): a long flush never reads as a loop that stopped turning.
            counters.set(.heartbeatNanoseconds, rg_monotonic_ns())
            rg_fence_release()
            counters.set(.fsyncStartedNanoseconds, 0)
            if failed {
                counters.add(.logFsyncErrors)
                logger.critical("fdatasync of the log failed (errno \(code)); stopping so nothing unflushed is acknowledged")
                exit(74)
            }
            counters.add(.logFsyncs)
            counters.add(.logFsyncNanoseconds, rg_monotonic_ns() - start)
        }
        // Only workers with subscribers are signalled; the fence orders this turn's appends
        // before the reads of their flags (see Worker.setWakeWanted).
        rg_fence_seq_cst()
        for (i, fd) in wakeFDs.enumerated()
        where region.loadCounterRelaxed(.wakeWanted, process: ProcessBlock.worker(i)) != 0 {
            _ = rg_eventfd_signal(fd)
        }
    }

    /// Logs the `--fsync interval` flusher's failures since the last call (it counts them in
    /// `logFsyncErrors`; it cannot log from its own thread).
    func reportFlusherErrors() {
        let errors = counters.get(.logFsyncErrors)
        guard errors != flusherErrorsLogged else { return }
        logger.error("fdatasync of the log by the --fsync interval flusher failed; events acknowledged since its last good flush may be lost on power loss",
                     metadata: ["errno": "\(counters.get(.logFsyncLastErrno))", "failures": "\(errors - flusherErrorsLogged)"])
        flusherErrorsLogged = errors
    }

    // MARK: - Requests

    public func engine(_ engine: HTTPEngine, request: HTTPRequest, connection conn: Int32) {
        // A request whose head was judged (route, method, token) is not judged again.
        let judged = engine.requestHeadWasAccepted(conn)
        // Byte-wise, on the path's own storage: no String or Array is made per publish.
        request.withPath { path in
            let route = IngestRoute(path: path)
            switch route {
            case .health:
                engine.respond(conn, HealthResponse.ok(request))
                return
            case .notFound:
                engine.respondError(conn, status: 404, error: "not_found", detail: "no route for \(request.path)")
                return
            case .batch, .event:
                break
            }
            let slot = IngestRoute.slotOfEventsPath(path)
            var verdict = PublishAuthorizer.Verdict.open
            if !judged {
                guard request.method == .post else { return methodNotAllowed(conn, request) }
            }
            // A single publish whose head was judged had its slot checked too; a batch's
            // slots are known once its body is parsed (the remembered token makes this cheap).
            if !judged || (route == .batch && publishAuth.acceptsJWT) {
                switch authorize(request, slot: slot) {
                case .success(let v): verdict = v
                case .failure(let refusal): return reject(conn, refusal)
                }
            }
            if let slot {
                publishOne(conn, request, slot: slot)
            } else {
                publishBatch(conn, request, verdict: verdict)
            }
        }
    }

    /// The head of an upload, before its body is read: the route, the token and the route's
    /// size limit are checked here, so a refused body is never buffered.
    public func engine(_ engine: HTTPEngine, acceptsHead request: HTTPRequest, contentLength: Int?,
                       connection conn: Int32) -> Bool {
        let route = request.withPath { IngestRoute(path: $0) }
        let limit: Int
        let limitName: String
        switch route {
        case .batch:
            limit = config.maxBatchBytes
            limitName = "--max-batch-bytes"
        case .event:
            limit = config.maxEventBytes
            limitName = "--max-event-bytes"
        case .health:
            // Answered whatever the method, as when the body came with the head; the body is
            // read and dropped. No token guards this path, so a body here may take only a
            // sliver of the pending-body budget, never an event's worth.
            limit = Ingest.healthBodyBytesMax
            limitName = "a health probe's body limit"
        case .notFound:
            return refuseHead(conn, status: 404, error: "not_found", detail: "no route for \(request.path)")
        }
        if route != .health {
            guard request.method == .post else {
                return refuseHead(conn, status: 405, error: "method_not_allowed",
                                  detail: "\(request.method) is not allowed here; use POST", headers: [("Allow", "POST")])
            }
            let refused: AuthRefusal? = request.withPath { p in
                let slot = route == .event ? IngestRoute.slotOfEventsPath(p) : nil
                if case .failure(let refusal) = authorize(request, slot: slot) { return refusal }
                return nil
            }
            if let refusal = refused {
                return refuseHead(conn, status: refusal.status, error: refusal.error, detail: refusal.detail,
                                  headers: [("WWW-Authenticate", refusal.challenge)])
            }
        }
        if let n = contentLength, n > limit {
            return refuseHead(conn, status: 413, error: "payload_too_large",
                              detail: "the body is \(n) bytes; the limit is \(limit) (\(limitName))")
        }
        // A chunked body has no length to judge here: the engine holds it to the route's limit.
        if contentLength == nil { engine.limitBody(conn, maxBytes: limit, name: limitName) }
        return true
    }

    /// Answers a refused upload and closes (lingering, so the client reads the answer while
    /// the rest of its body is discarded).
    func refuseHead(_ conn: Int32, status: Int, error: String, detail: String,
                    headers: [(String, String)] = []) -> Bool {
        counters.add(.publishRejected)
        engine.respondError(conn, status: status, error: error, detail: detail, extraHeaders: headers, close: true)
        return false
    }

    func methodNotAllowed(_ conn: Int32, _ request: HTTPRequest) {
        reject(conn, status: 405, error: "method_not_allowed",
               detail: "\(request.method) is not allowed here; use POST", headers: [("Allow", "POST")])
    }

    func reject(_ conn: Int32, _ refusal: AuthRefusal) {
        reject(conn, status: refusal.status, error: refusal.error, detail: refusal.detail,
               headers: [("WWW-Authenticate", refusal.challenge)])
    }

    func reject(_ conn: Int32, status: Int, error: String, detail: String, headers: [(String, String)] = []) {
        counters.add(.publishRejected)
        engine.respondError(conn, status: status, error: error, detail: detail, extraHeaders: headers)
    }

    /// Checks one event's fields; returns an error (status, code, detail) or nil.
    /// `publishing`: a new event (reserved types refused), not one another host published.
    /// A batch line says what is known already: its slot is the previous line's
    /// (`slotChecked`), it has the default type (`typeChecked`), its data came from a line
    /// that was valid UTF-8 as a whole (`dataIsUTF8`).
    func validate(slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                  publishing: Bool = true, slotChecked: Bool = false, typeChecked: Bool = false,
                  dataIsUTF8: Bool = false) -> (Int, String, String)? {
        guard slotChecked || SlotName.isValid(slot) else {
            return (400, "bad_slot", "slot names are 1-128 bytes of [A-Za-z0-9._:-]")
        }
        guard typeChecked || EventType.isValid(type) else {
            return (400, "bad_type", "event types are 1-64 bytes of [A-Za-z0-9._:-]")
        }
        if publishing, !typeChecked, EventType.isReserved(type) {
            return (400, "reserved_type", "event types reset and close are the streams' own control events; use another name")
        }
        guard data.count <= config.maxEventBytes else {
            return (413, "payload_too_large", "event data is \(data.count) bytes; the limit is \(config.maxEventBytes)")
        }
        guard dataIsUTF8 || UTF8Validator.isValid(data) else {
            return (415, "not_utf8", "event data must be valid UTF-8 text")
        }
        return nil
    }

    /// The 201 answer to a single publish is built in this, reused for every request.
    var responseHead: [UInt8] = []
    /// `{"id":"` + the longest id + `","slot":"` + the longest slot + `"}`.
    static let createdBodyBytesMax = 7 + EventID.maxLength + 10 + SlotName.maxBytes + 2

    /// The whole 201 answer to a single publish, head and `{"id":"…","slot":"…"}`, in
    /// `responseHead` (the cluster's answers, which wait for Redis).
    func buildCreated(id: EventID, slot: UnsafeRawBufferPointer, keepAlive: Bool) {
        withCreated(id: id, slot: slot, keepAlive: keepAlive) { answer in
            responseHead.removeAll(keepingCapacity: true)
            responseHead.append(contentsOf: answer)
        }
    }

    /// Calls `body` with the whole 201 answer written in place on the stack: the body after
    /// room for the head, then the head right before it (a valid slot name needs no escaping).
    func withCreated(id: EventID, slot: UnsafeRawBufferPointer, keepAlive: Bool,
                     _ body: (UnsafeRawBufferPointer) -> Void) {
        let template = keepAlive ? createdTemplate : createdCloseTemplate
        let headMax = template.maxBytes
        withUnsafeTemporaryAllocation(byteCount: headMax + Ingest.createdBodyBytesMax, alignment: 1) { out in
            let n = Ingest.writeCreated(id: id, slot: slot, into: UnsafeMutableRawBufferPointer(rebasing: out[headMax...]))
            let headEnd = template.write(contentLength: n, into: out, at: 0)
            if headEnd < headMax {
                (out.baseAddress! + headEnd).copyMemory(from: out.baseAddress! + headMax, byteCount: n)
            }
            body(UnsafeRawBufferPointer(rebasing: out[..<(headEnd + n)]))
        }
    }

    /// Writes the 201 body of a single publish into `out`; returns its length.
    static func writeCreated(id: EventID, slot: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        func put(_ s: StaticString, _ at: Int) -> Int {
            (out.baseAddress! + at).copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            return at + s.utf8CodeUnitCount
        }
        var k = put(#"{"id":""#, 0)
        k += id.write(into: out, at: k)
        k = put(#"","slot":""#, k)
        (out.baseAddress! + k).copyMemory(from: slot.baseAddress!, byteCount: slot.count)
        k += slot.count
        return put(#""}"#, k)
    }
    let createdTemplate = HTTPResponseWriter.HeadTemplate(status: 201, contentType: "application/json", keepAlive: true)
    let createdCloseTemplate = HTTPResponseWriter.HeadTemplate(status: 201, contentType: "application/json", keepAlive: false)

    func publishOne(_ conn: Int32, _ request: HTTPRequest, slot: UnsafeRawBufferPointer) {
        let type = request.queryValue("type").map { Array($0.utf8) } ?? defaultType
        if cluster != nil {
            let failure: (Int, String, String)? = type.withUnsafeBytes { t in
                request.body.withUnsafeBytes { d in validate(slot: slot, type: t, data: d) }
            }
            if let (status, code, detail) = failure { return reject(conn, status: status, error: code, detail: detail) }
            let event = PublishEvent(slot: Array(slot), type: type, data: request.body)
            return clusterPublish(conn, request, events: [event], slot: event.slot)
        }
        let now = rg_realtime_ns() / 1_000_000
        let outcome: Result<UInt64, PublishFailure> = type.withUnsafeBytes { t in
            request.body.withUnsafeBytes { d in
                if let (status, code, detail) = validate(slot: slot, type: t, data: d) {
                    return .failure(PublishFailure(status: status, code: code, detail: detail))
                }
                return append(slot: slot, type: t, data: d, timeMilliseconds: now)
            }
        }
        switch outcome {
        case .success(let seq):
            withCreated(id: EventID(epoch: region.epoch, seq: seq), slot: slot, keepAlive: request.keepAlive) { answer in
                engine.respond(conn, bytes: answer)
            }
        case .failure(let f):
            reject(conn, status: f.status, error: f.code, detail: f.detail)
        }
    }

    struct PublishFailure: Error {
        let status: Int
        let code: String
        let detail: String
    }

    func append(slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                timeMilliseconds: UInt64) -> Result<UInt64, PublishFailure> {
        do {
            let seq = try writer.append(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds)
            counters.add(.eventsAppended)
            appendedThisTurn = true
            return .success(seq)
        } catch {
            return .failure(failure(error))
        }
    }

    /// One line of a batch, staged (not yet visible); the caller commits or rolls back.
    func stage(slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
               timeMilliseconds: UInt64) -> Result<UInt64, PublishFailure> {
        do {
            return .success(try writer.stage(slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds))
        } catch {
            return .failure(failure(error))
        }
    }

    /// The answer to a refused append or stage (counted where the log says why).
    func failure(_ error: LogWriter.AppendError) -> PublishFailure {
        switch error {
        case .slotDirectoryFull:
            counters.add(.slotDirectoryFull)
            return PublishFailure(status: 507, code: "slot_directory_full",
                                  detail: "the slot directory is full (--max-slots \(config.maxSlots)); no slot's events have expired yet")
        case .recordTooLarge:
            return PublishFailure(status: 413, code: "payload_too_large",
                                  detail: "the event does not fit the log (--log-capacity)")
        case .seqNotAhead:
            // Only the cluster tail passes explicit seqs; a single-host publish never does.
            return PublishFailure(status: 500, code: "internal", detail: "seq not ahead of the log's head")
        }
    }

    func publishBatch(_ conn: Int32, _ request: HTTPRequest, verdict: PublishAuthorizer.Verdict) {
        guard request.body.count <= config.maxBatchBytes else {
            return reject(conn, status: 413, error: "payload_too_large",
                          detail: "the batch is \(request.body.count) bytes; the limit is \(config.maxBatchBytes) (--max-batch-bytes)")
        }
        let parsed = request.body.withUnsafeBytes { NDJSONBatchParser.parse($0, maxEvents: config.maxBatchEvents) }
        let items: [BatchItem]
        switch parsed {
        case .failure(let error):
            return reject(conn, status: 400, error: "bad_batch", detail: "\(error)")
        case .success(let list):
            items = list
        }
        // A JWT must allow every line's slot: one it does not refuses the whole batch.
        if let refusal = refusal(claims: verdict, items: items) { return reject(conn, refusal) }
        // Validate everything first: one bad line rejects the whole batch and appends nothing.
        // The parser checked each line is UTF-8; a slot the line before had is valid already.
        for (i, item) in items.enumerated() {
            let slotChecked = i > 0 && item.slot == items[i - 1].slot
            let failure: (Int, String, String)? = item.slot.withUnsafeBytes { s in
                (item.type ?? defaultType).withUnsafeBytes { t in
                    item.data.withUnsafeBytes { d in
                        validate(slot: s, type: t, data: d, slotChecked: slotChecked, typeChecked: item.type == nil,
                                 dataIsUTF8: true)
                    }
                }
            }
            if let (status, code, detail) = failure {
                return reject(conn, status: status, error: code, detail: "line \(i + 1): \(detail)")
            }
        }
        // The whole batch against the log first: it is appended entirely or not at all.
        var check = LogBatchCheck(writer: writer)
        for item in items {
            let typeBytes = (item.type ?? defaultType).count
            item.slot.withUnsafeBytes { s in _ = check.add(slot: s, typeBytes: typeBytes, dataBytes: item.data.count) }
        }
        if let failure = check.finish() {
            counters.add(.publishBatchRefused)
            if case .slotDirectoryFull = failure {
                counters.add(.slotDirectoryFull)
                return reject(conn, status: 507, error: "slot_directory_full", detail: "\(failure); nothing was appended")
            }
            return reject(conn, status: 413, error: "payload_too_large", detail: "\(failure); nothing was appended")
        }
        if cluster != nil {
            // One script call: Redis takes the whole batch or none of it.
            let events = items.map { PublishEvent(slot: $0.slot, type: $0.type ?? defaultType, data: Array($0.data)) }
            return clusterPublish(conn, request, events: events, slot: nil)
        }
        let now = rg_realtime_ns() / 1_000_000
        var body: [UInt8] = []
        body.reserveCapacity(16 + items.count * 24)
        body += Array(#"{"ids":["#.utf8)
        let epoch = region.epoch
        writer.beginBatch()
        for (i, item) in items.enumerated() {
            let outcome = item.slot.withUnsafeBytes { s in
                (item.type ?? defaultType).withUnsafeBytes { t in
                    item.data.withUnsafeBytes { d in stage(slot: s, type: t, data: d, timeMilliseconds: now) }
                }
            }
            switch outcome {
            case .success(let seq):
                if i > 0 { body.append(UInt8(ascii: ",")) }
                body.append(UInt8(ascii: "\""))
                EventID(epoch: epoch, seq: seq).append(to: &body)
                body.append(UInt8(ascii: "\""))
            case .failure(let f):
                writer.rollback()
                return reject(conn, status: f.status, error: f.code,
                              detail: "line \(i + 1): \(f.detail); nothing was appended")
            }
        }
        // One publish of the new tail: every line becomes visible at once.
        writer.commit()
        counters.add(.eventsAppended, UInt64(items.count))
        appendedThisTurn = true
        body += Array("]}".utf8)
        engine.respond(conn, HTTPResponseWriter.json(status: 201, body: body,
                                                           keepAlive: request.keepAlive, extraHeaders: []))
    }
}
