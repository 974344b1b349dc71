import Auth
import CRinggateSys
import HTTPServer
import GatewayCore
import IO
import Glibc
import Logging
import RingLog
import RoleSupport
import StreamPolicy
import WireProtocol

/// A worker process: serves subscribers from the shared log on its own io_uring loop.
///
/// Each new record is copied out of the log once, encoded once, and copied into the send
/// buffer of every live subscriber of its slot. A subscriber whose buffer is full leaves the
/// fan-out and catches up later from its cursor; nothing is queued per subscriber.
public final class Worker: HTTPEngineDelegate {
    public struct Descriptors: Sendable {
        public var log: Int32
        public var listen: Int32
        public var wake: Int32
        public var admission: Int32
        public init(log: Int32, listen: Int32, wake: Int32, admission: Int32 = -1) {
            self.log = log
            self.listen = listen
            self.wake = wake
            self.admission = admission
        }
    }

    let config: GatewayConfig
    let index: Int
    let region: LogRegion
    let reader: LogReader
    let counters: CounterBlock
    let logger: Logger
    let engine: HTTPEngine
    let metrics: MetricsRenderer
    let admission: SlotAdmissionTable?

    var subscribers: UnsafeMutablePointer<Subscriber>
    var slots: SlotTable
    let recordScratch: UnsafeMutableRawBufferPointer
    let frameScratch: UnsafeMutableRawBufferPointer
    let wsFrameScratch: UnsafeMutableRawBufferPointer
    // MARK: SEVERAL SLOTS: frames that name their slot, for streams of several slots.
    let slotFrameScratch: UnsafeMutableRawBufferPointer
    let wsSlotFrameScratch: UnsafeMutableRawBufferPointer
    /// Catch-up of a stream of several slots: one window per slot, merged by seq.
    var slotWindows: [LogReader.Window] = []
    var mergedRecords: [MergedRecord] = []
    var demoted: [Int32] = []
    var historyBuffer: [UInt8] = []
    var readPosition: UInt64
    var fanoutSeq: UInt64
    /// Subscribers (live or catching up); wake-ups are wanted while there is one.
    var activeSubscribers = 0
    var catchUpList: [Int32] = []
    /// Streams are closed at once on SIGTERM; requests in flight get this long to finish.
    var shutdown = RoleShutdown(graceNanoseconds: 3_000_000_000)
    var lastStatusScan: UInt64 = 0
    /// Each stream's next heartbeat, ping answer, lifetime end or token expiry, so the timer
    /// looks only at the streams that are due (`sendHeartbeats`).
    var timers = TimerWheel(slotNanoseconds: Worker.timerSlotNanoseconds, slotCount: 512, nowNanoseconds: 0)
    var lastTimerToken: UInt32 = 0
    var dueTimers: [TimerWheel.Entry] = []
    static let timerSlotNanoseconds: UInt64 = 100_000_000
    var random: SplitMix64
    /// The heartbeats, sent from the engine's copy (`streamSendFixed`).
    let fixedHeartbeat: HTTPEngine.FixedFrame
    let fixedPing: HTTPEngine.FixedFrame
    let catchUpBatch = 64
    /// What a WebSocket subscriber may send between two pings (pongs, pings, stray messages).
    let webSocketInputBudgetBytes = 1 << 20
    // MARK: READER
    /// Damaged records at positions below this were counted and logged already (see `noteDamaged`).
    var damagedReportedBelow: UInt64 = 0
    // MARK: SUPERVISOR + BROWSERS
    let cors: CORSPolicy
    /// The CORS headers for the request being answered, computed once when it arrives.
    var corsHeaders: [(String, String)] = []
    // MARK: STATUS PAGE
    /// Open stats streams (`GET /v1/status/stream`), at most `--max-status-streams`.
    var statusStreams: [Int32] = []
    var lastStatusFrame: UInt64 = 0
    let status: StatusSnapshot
    // MARK: AUTH (issue 14)
    /// `--subscribe-auth jwt`: the token verifier (it remembers the last token it accepted,
    /// so a page pulling history with one token pays one signature check); nil = anyone may subscribe.
    var verifier: RememberingVerifier?

    /// A worker on the log, listener and wake descriptor the supervisor handed down.
    public convenience init(config: GatewayConfig, index: Int, descriptors: Descriptors, logger: Logger) throws {
        let region = try RoleLog.attach(fd: descriptors.log)
        var admission: SlotAdmissionTable? = nil
        if config.maxSubscribersPerSlot > 0 {
            guard descriptors.admission >= 0, let table = SlotAdmissionTable.map(
                fd: descriptors.admission, entries: config.admissionTableEntries, workers: config.workers) else {
                throw RoleStartError("cannot map the slot admission table (--admission-fd \(descriptors.admission))")
            }
            admission = table
        }
        let io = try IOSelection.make(IOSelection.resolve(config.io).kind,
                                      configuration: Worker.ioConfiguration(config))
        try self.init(config: config, index: index, region: region, listenFD: descriptors.listen,
                      wakeFD: descriptors.wake, admission: admission, io: io, logger: logger)
    }

    /// The backend's sizes for a worker.
    public static func ioConfiguration(_ config: GatewayConfig) -> IOBackendConfiguration {
        config.ioConfiguration(receiveBufferBytes: config.recvBufferBytes)
    }

    /// A worker on an attached log and a given backend (the simulation tests pass theirs).
    public init(config: GatewayConfig, index: Int, region: LogRegion, listenFD: Int32, wakeFD: Int32,
                admission: SlotAdmissionTable?, io: any IOBackend, logger: Logger) throws {
        self.config = config
        self.index = index
        self.logger = logger
        self.region = region
        self.admission = admission
        cors = CORSPolicy(origins: config.corsOrigins)
        do {
            verifier = try config.subscriberVerifier().map(RememberingVerifier.init)
        } catch {
            throw RoleStartError(error.description)
        }
        reader = LogReader(region: region)
        counters = RoleLog.counters(region: region, process: ProcessBlock.worker(index))
        status = StatusSnapshot(region: region, workers: config.workers, ioBackend: io.kind.rawValue,
                                isCluster: config.isCluster)
        metrics = MetricsRenderer(region: region, workers: config.workers, ioBackend: io.kind.rawValue,
                                  ioFallback: getenv(IOSelection.fellBackVariable) != nil,
                                  isCluster: config.isCluster)
        random = SplitMix64(seed: io.now() &+ UInt64(index))
        let maxRecord = reader.maxRecordBytes
        recordScratch = .allocate(byteCount: maxRecord, alignment: 8)
        // Records written under a larger --max-event-bytes than today's may still be in the
        // ring: frames and send buffers fit the largest the log says it may hold (bounded by
        // its largest record, so a bad header cannot ask for more).
        let maxEventBytes = max(config.maxEventBytes, min(region.maxEventBytesAcquire, maxRecord))
        let maxSSE = SSEEncoder.maxEncodedLength(idBytes: EventID.maxLength, typeBytes: 64,
                                                 dataBytes: maxEventBytes) + 64
        let maxWS = WebSocketMessageEncoder.maxEventFrameLength(typeBytes: 64, dataBytes: maxEventBytes)
        let maxSlotSSE = SSEEncoder.maxEncodedLength(idBytes: EventID.maxLength, typeBytes: Worker.maxSlotEventNameBytes,
                                                     dataBytes: maxEventBytes) + 64
        let maxSlotWS = WebSocketMessageEncoder.maxEventFrameLength(slotBytes: SlotName.maxBytes, typeBytes: 64,
                                                                    dataBytes: maxEventBytes)
        frameScratch = .allocate(byteCount: maxSSE, alignment: 8)
        wsFrameScratch = .allocate(byteCount: maxWS, alignment: 8)
        slotFrameScratch = .allocate(byteCount: maxSlotSSE, alignment: 8)
        wsSlotFrameScratch = .allocate(byteCount: maxSlotWS, alignment: 8)
        let maxFrame = max(maxSlotSSE, maxSlotWS)
        var sendBufferBytes = 64 << 10
        while sendBufferBytes < maxFrame + 1024 { sendBufferBytes <<= 1 }
        let limits = HTTPLimits(maxBodyBytes: 0)
        // The limit is host-wide (checked against every worker's gauges on accept); a worker's
        // table may hold more than its share, since SO_REUSEPORT spreads connections unevenly.
        let tableCapacity = min(config.maxConnections, 2 * config.maxConnectionsPerWorker + 64)
        var engineConfig = HTTPEngine.Configuration(
            maxConnections: tableCapacity,
            headerTimeoutNanoseconds: config.headerTimeoutNanoseconds,
            limits: limits,
            sendBufferBytes: sendBufferBytes,
            sendBufferCount: min(tableCapacity, config.sendBuffers))
        engineConfig.sharedFrameCount = config.sharedFrames
        // MARK: HTTP limits (issue 10)
        engineConfig.maxPipelinedRequests = config.maxPipelinedRequests
        engineConfig.maxResponseQueueBytes = config.maxResponseQueueBytes
        engineConfig.bodyTimeoutNanoseconds = config.bodyTimeoutNanoseconds
        engineConfig.adminReserveConnections = config.adminReserveConnections
        engineConfig.userTimeoutMilliseconds = UInt32(min(config.tcpUserTimeoutNanoseconds / 1_000_000, UInt64(UInt32.max)))
        engineConfig.sendTimeoutNanoseconds = config.sendTimeoutNanoseconds
        if config.tcpKeepaliveNanoseconds > 0 {
            engineConfig.keepaliveIdleSeconds = Int32(max(1, min(config.tcpKeepaliveNanoseconds / 1_000_000_000, 32767)))
            engineConfig.keepaliveIntervalSeconds = 10
            engineConfig.keepaliveCount = 3
        }
        engine = HTTPEngine(configuration: engineConfig, io: io, listenFD: listenFD, wakeFD: wakeFD,
                            counters: counters, logger: logger)
        subscribers = .allocate(capacity: tableCapacity)
        subscribers.initialize(repeating: Subscriber(), count: tableCapacity)
        slots = SlotTable(cacheLimit: 2 * region.geometry.maxSlots)
        readPosition = reader.tailAcquire()
        fanoutSeq = reader.headSeqAcquire()
        counters.set(.wakeWanted, 0)   // a restarted worker starts with no subscribers
        fixedHeartbeat = engine.registerFixedFrame(SSEEncoder.heartbeat)
        fixedPing = engine.registerFixedFrame(WebSocketFrameEncoder.frame(opcode: .ping, payload: []))
        engine.delegate = self
    }

    /// Tells the ingest whether to signal this worker after it appends. A worker with no
    /// subscriber needs no wake-ups (its tick keeps the fan-out cursor near the head).
    ///
    /// Turning it on is a store, a full fence, then a read of the head (`pump`); the ingest
    /// stores the head, fences, then reads the flag. So either this worker's read sees the
    /// new event, or the ingest's read sees the flag and signals: no event is left unseen.
    func setWakeWanted(_ on: Bool) {
        counters.set(.wakeWanted, on ? 1 : 0)
        rg_fence_seq_cst()
    }

    public func run() {
        logger.info("worker \(index) serving", metadata: ["pid": "\(getpid())", "io": "\(engine.io.kind.rawValue)"])
        engine.run { [unowned self] in
            shutdown.isFinished(connectionCount: engine.connectionCount, nowNanoseconds: engine.nowNanoseconds)
        }
        logger.info("worker \(index) stopped")
    }

    // MARK: - Engine events

    public func engineWake(_ engine: HTTPEngine) { pump() }

    /// Host-wide admission: every worker's open connections, from the shared counters.
    public func engineAdmits(_ engine: HTTPEngine) -> Bool {
        var total: UInt64 = 0
        for w in 0..<config.workers {
            let block = ProcessBlock.worker(w)
            for gauge in [LogCounter.connectionsSSE, .connectionsHTTP, .connectionsWS] {
                total &+= region.loadCounterRelaxed(gauge, process: block)
            }
        }
        return Int64(bitPattern: total) < Int64(config.maxConnections)
    }

    public func engineTurnEnd(_ engine: HTTPEngine) {
        if !catchUpList.isEmpty {
            let list = catchUpList
            catchUpList.removeAll(keepingCapacity: true)
            for conn in list { catchUp(conn) }
        }
    }

    public func engineTick(_ engine: HTTPEngine, nowNanoseconds now: UInt64) {
        if RoleShutdown.takeTermination(), shutdown.begin(nowNanoseconds: engine.io.now()) { beginShutdown() }
        pump()   // a lost wake-up costs at most one tick
        sendHeartbeats(now: now)   // the streams due only: every tick
        if now &- lastStatusScan >= 250_000_000 {
            lastStatusScan = now
            sendStatusFrames(now: now)
        }
    }

    public func engine(_ engine: HTTPEngine, streamWritable conn: Int32) {
        let s = subscribers + Int(conn)
        if s.pointee.active && s.pointee.liveIndex < 0 { catchUp(conn) }
    }

    public func engine(_ engine: HTTPEngine, streamInput bytes: UnsafeRawBufferPointer, connection conn: Int32) {
        webSocketInput(conn, bytes)
    }

    public func engine(_ engine: HTTPEngine, streamClosed conn: Int32) {
        if forgetStatusStream(conn) { return }
        let s = subscribers + Int(conn)
        guard s.pointee.active else { return }
        if s.pointee.liveIndex >= 0 { leaveLive(conn) }
        if s.pointee.catchingUp { counters.subtract(.connectionsCatchingUp) }
        if s.pointee.namesSlots {
            for m in s.pointee.memberships {
                if m.admissionEntry >= 0 { admission?.add(worker: index, entry: Int(m.admissionEntry), -1) }
                slots.release(m.localSlot)
            }
        } else {
            if s.pointee.admissionEntry >= 0 { admission?.add(worker: index, entry: Int(s.pointee.admissionEntry), -1) }
            slots.release(s.pointee.localSlot)
        }
        s.pointee = Subscriber()
        activeSubscribers -= 1
        if activeSubscribers == 0 { setWakeWanted(false) }
    }

    public func engine(_ engine: HTTPEngine, request: HTTPRequest, connection conn: Int32) {
        let origin = request.header("Origin")
        corsHeaders = cors.responseHeaders(origin: origin)
        let route = WorkerRoute.match(method: request.method, path: request.path)
        if !cors.allows(origin: origin), route.answersWithCORS { counters.add(.originRejectedCORS) }
        switch route {
        case .health:
            engine.respond(conn, HealthResponse.ok(request, extraHeaders: corsHeaders))
        case .ready:
            if region.loadCounterRelaxed(.drainingSinceNanoseconds, process: ProcessBlock.supervisor) != 0 {
                // SIGTERM began the drain: the load balancer takes this host out while its
                // streams go on (until --drain-delay is over).
                respondJSON(conn, request, status: 503,
                            ErrorBody.json(error: "draining", detail: "this host is shutting down; connect to another one"))
            } else if ingestAlive() {
                if config.isCluster {
                    let answer = ClusterReadiness(region: region, workers: config.workers,
                                                  stallNanoseconds: config.upstreamStallNanoseconds).answer()
                    respondJSON(conn, request, status: answer.status, answer.body)
                } else {
                    respondJSON(conn, request, status: 200, Array(#"{"status":"ready"}"#.utf8))
                }
            } else {
                respondJSON(conn, request, status: 503, ErrorBody.json(error: "not_ready", detail: "the ingest process is not running"))
            }
        case .metrics:
            serveStatic(conn, request, contentType: "text/plain; version=0.0.4", body: metrics.render(),
                        extraHeaders: corsHeaders)
        case .statusPage:
            serveStatusPage(conn, request)
        case .statusStream:
            subscribeStatus(conn, request)
        case .openAPI:
            serveOpenAPI(conn, request)
        case .history(let slot):
            guard authorize(conn, request, slot: slot) != nil else { return }
            history(conn, request, slot: slot)
        case .stream(let slot):
            guard let expires = authorize(conn, request, slot: slot) else { return }
            subscribe(conn, request, slot: slot, transport: .sse, tokenExpiresAtNanoseconds: expires)
        case .webSocket(let slot):
            guard webSocketOriginAllowed(conn, origin),
                  let expires = authorize(conn, request, slot: slot) else { return }
            subscribe(conn, request, slot: slot, transport: .webSocket, tokenExpiresAtNanoseconds: expires)
        case .multiHistory:
            guard let names = streamSlots(conn, request, sse: false),
                  authorize(conn, request, slots: names) != nil else { return }
            history(conn, request, slots: names, namesSlots: true)
        case .multiStream:
            guard let names = streamSlots(conn, request, sse: true),
                  let expires = authorize(conn, request, slots: names) else { return }
            subscribe(conn, request, slots: names, namesSlots: true, transport: .sse, tokenExpiresAtNanoseconds: expires)
        case .multiWebSocket:
            guard webSocketOriginAllowed(conn, origin),
                  let names = streamSlots(conn, request, sse: false),
                  let expires = authorize(conn, request, slots: names) else { return }
            subscribe(conn, request, slots: names, namesSlots: true, transport: .webSocket, tokenExpiresAtNanoseconds: expires)
        case .options(let allow):
            preflight(conn, request, origin: origin, allow: allow)
        case .badSlot:
            engine.respondError(conn, status: 400, error: "bad_slot",
                                detail: "slot names are 1-128 bytes of [A-Za-z0-9._:-]", extraHeaders: corsHeaders)
        case .methodNotAllowed(let allow):
            engine.respondError(conn, status: 405, error: "method_not_allowed",
                                detail: "\(request.method) is not allowed here; use \(allow)",
                                extraHeaders: [("Allow", allow)] + corsHeaders)
        case .notFound:
            notFound(conn, request)
        }
    }

    /// `--ws-origins`; answers 403 when the handshake's origin is not allowed. Browsers always
    /// send Origin on a handshake; other clients may send anything, so a handshake without one
    /// is not a browser's and is let through.
    func webSocketOriginAllowed(_ conn: Int32, _ origin: String?) -> Bool {
        guard let origin, !config.webSocketOrigins.contains(origin) else { return true }
        counters.add(.originRejectedWebSocket)
        engine.respondError(conn, status: 403, error: "origin_not_allowed",
                            detail: "WebSocket handshakes from origin \(origin) are not allowed (--ws-origins)")
        return false
    }

    /// The slots a stream or pull of several slots names, or nil after a 400 (`StreamSlots`).
    func streamSlots(_ conn: Int32, _ request: HTTPRequest, sse: Bool) -> [String]? {
        switch StreamSlots.parse(query: request.query, max: config.maxSlotsPerStream, sse: sse) {
        case .success(let slots):
            return slots.names
        case .failure(let refusal):
            if refusal.overLimit { counters.add(.streamSlotLimit) }
            engine.respondError(conn, status: 400, error: refusal.code, detail: refusal.detail, extraHeaders: corsHeaders)
            return nil
        }
    }

    func respondJSON(_ conn: Int32, _ request: HTTPRequest, status: Int, _ body: [UInt8]) {
        engine.respond(conn, HTTPResponseWriter.json(status: status, body: body, keepAlive: request.keepAlive,
                                                     extraHeaders: corsHeaders, headOnly: request.method == .head))
    }

    /// `OPTIONS`: a browser's preflight before a cross-origin request with headers of its own
    /// (`Authorization`, `Last-Event-ID`), answered from `--cors-origins`.
    func preflight(_ conn: Int32, _ request: HTTPRequest, origin: String?, allow: String) {
        guard let headers = cors.preflightHeaders(origin: origin, methods: allow) else {
            engine.respondError(conn, status: 403, error: "origin_not_allowed",
                                detail: "cross-origin requests from \(origin ?? "") are not allowed (--cors-origins)",
                                extraHeaders: [("Vary", "Origin")])
            return
        }
        engine.respond(conn, HTTPResponseWriter.head(status: 204, contentType: nil, contentLength: nil,
                                                           keepAlive: request.keepAlive,
                                                           extraHeaders: [("Allow", allow)] + headers))
    }

    func ingestAlive() -> Bool {
        let hb = region.loadCounterRelaxed(.heartbeatNanoseconds, process: ProcessBlock.ingest)
        return hb != 0 && engine.io.now() &- hb < 3_000_000_000
    }

    // MARK: - Shutdown

    /// Closes every stream with `event: close` (WebSocket: the notice and 1001). The reconnect
    /// delay each asks for is drawn from 0...--drain-spread, so this host's clients come back
    /// to the others spread over that time instead of all at once.
    func beginShutdown() {
        logger.info("worker \(index) shutting down", metadata: ["streams": "\(engine.connectionCount)"])
        let spreadMilliseconds = config.drainSpreadNanoseconds / 1_000_000
        engine.stopServing { conn in
            let retry: UInt64? = spreadMilliseconds == 0 ? nil : random.next() % (spreadMilliseconds + 1)
            if closeStatusStream(conn, retryMilliseconds: retry) { return }
            closeStream(conn, reason: .shutdown, retryMilliseconds: retry)
        }
    }
}

/// A small, fast PRNG for jitter (not for secrets).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
