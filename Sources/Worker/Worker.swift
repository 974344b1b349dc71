import CRinggateSys
import EventLoop
import Glibc
import Logging
import RingLog
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
        public init(log: Int32, listen: Int32, wake: Int32) {
            self.log = log
            self.listen = listen
            self.wake = wake
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

    var subscribers: UnsafeMutablePointer<Subscriber>
    var slots: SlotTable
    let recordScratch: UnsafeMutableRawBufferPointer
    let frameScratch: UnsafeMutableRawBufferPointer
    var readPosition: UInt64
    var fanoutSeq: UInt64
    var catchUpList: [Int32] = []
    var shuttingDown = false
    var shutdownDeadline: UInt64 = 0
    var lastHeartbeatScan: UInt64 = 0
    var random = SplitMix64(seed: rg_monotonic_ns())
    let heartbeatFrame: [UInt8] = Array(": hb\n\n".utf8)
    let catchUpBatch = 64

    public init(config: GatewayConfig, index: Int, descriptors: Descriptors, logger: Logger) throws {
        self.config = config
        self.index = index
        self.logger = logger
        let mapping = try LogFile.map(fd: descriptors.log)
        region = try LogRegion.attach(base: mapping.base, length: mapping.length)
        reader = LogReader(region: region)
        counters = CounterBlock(region: region, process: ProcessBlock.worker(index))
        counters.set(.pid, UInt64(getpid()))
        metrics = MetricsRenderer(region: region, workers: config.workers)
        let maxRecord = reader.maxRecordBytes
        recordScratch = .allocate(byteCount: maxRecord, alignment: 8)
        let maxFrame = SSEEncoder.maxEncodedLength(idBytes: EventID.maxLength, typeBytes: 64,
                                                   dataBytes: config.maxEventBytes) + 64
        frameScratch = .allocate(byteCount: maxFrame, alignment: 8)
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
            sendBufferCount: min(tableCapacity, 4096))
        engineConfig.userTimeoutMilliseconds = config.tcpUserTimeoutMilliseconds
        engineConfig.sendTimeoutNanoseconds = config.sendTimeoutNanoseconds
        if config.tcpKeepaliveNanoseconds > 0 {
            engineConfig.keepaliveIdleSeconds = Int32(max(1, min(config.tcpKeepaliveNanoseconds / 1_000_000_000, 32767)))
            engineConfig.keepaliveIntervalSeconds = 10
            engineConfig.keepaliveCount = 3
        }
        engine = try HTTPEngine(configuration: engineConfig, listenFD: descriptors.listen, wakeFD: descriptors.wake,
                                counters: counters, logger: logger)
        subscribers = .allocate(capacity: tableCapacity)
        subscribers.initialize(repeating: Subscriber(), count: tableCapacity)
        slots = SlotTable(cacheLimit: 2 * region.geometry.maxSlots)
        readPosition = reader.tailAcquire()
        fanoutSeq = reader.headSeqAcquire()
        engine.delegate = self
    }

    public func run() {
        logger.info("worker \(index) serving", metadata: ["pid": "\(getpid())"])
        engine.run { [unowned self] in
            shuttingDown && (engine.connectionCount == 0 || rg_monotonic_ns() > shutdownDeadline)
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
                total &+= rg_load_relaxed_u64(region.counterPointer(process: block, counter: gauge.rawValue))
            }
        }
        return Int64(bitPattern: total) < Int64(config.maxConnections)
    }

    public func engineTurnEnd(_ engine: HTTPEngine) {
        if !catchUpList.isEmpty {
            let list = catchUpList
            catchUpList.removeAll(keepingCapacity: true)
            for connection in list { catchUp(connection) }
        }
    }

    public func engineTick(_ engine: HTTPEngine, nowNanoseconds now: UInt64) {
        if rg_signal_take() & Int32(RG_SIG_TERM) != 0 && !shuttingDown { beginShutdown() }
        pump()   // a lost wake-up costs at most one tick
        if now &- lastHeartbeatScan >= 250_000_000 {
            lastHeartbeatScan = now
            sendHeartbeats(now: now)
        }
    }

    public func engine(_ engine: HTTPEngine, streamWritable connection: Int32) {
        let s = subscribers + Int(connection)
        if s.pointee.active && s.pointee.liveIndex < 0 { catchUp(connection) }
    }

    public func engine(_ engine: HTTPEngine, streamClosed connection: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.active else { return }
        if s.pointee.liveIndex >= 0 { leaveLive(connection) }
        if s.pointee.catchingUp { counters.subtract(.connectionsCatchingUp) }
        slots.release(s.pointee.localSlot)
        s.pointee = Subscriber()
    }

    public func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32) {
        switch WorkerRoute.match(method: request.method, path: request.path) {
        case .health:
            respondJSON(connection, request, status: 200, Array(#"{"status":"ok"}"#.utf8))
        case .ready:
            if ingestAlive() {
                respondJSON(connection, request, status: 200, Array(#"{"status":"ready"}"#.utf8))
            } else {
                respondJSON(connection, request, status: 503, ErrorBody.json(error: "not_ready", detail: "the ingest process is not running"))
            }
        case .metrics:
            let body = metrics.render()
            engine.respond(connection, HTTPResponseWriter.head(
                status: 200, contentType: "text/plain; version=0.0.4", contentLength: body.count,
                keepAlive: request.keepAlive, extraHeaders: []) + (request.method == .head ? [] : body))
        case .history(let slot):
            history(connection, request, slot: slot)
        case .stream(let slot):
            subscribe(connection, request, slot: slot)
        case .badSlot:
            engine.respondError(connection, status: 400, error: "bad_slot",
                                detail: "slot names are 1-128 bytes of [A-Za-z0-9._:-]")
        case .methodNotAllowed(let allow):
            engine.respondError(connection, status: 405, error: "method_not_allowed",
                                detail: "\(request.method) is not allowed here; use \(allow)", extraHeaders: [("Allow", allow)])
        case .notFound:
            engine.respondError(connection, status: 404, error: "not_found", detail: "no route for \(request.path)")
        }
    }

    func respondJSON(_ connection: Int32, _ request: HTTPRequest, status: Int, _ body: [UInt8]) {
        engine.respond(connection, HTTPResponseWriter.json(status: status, body: request.method == .head ? [] : body,
                                                           keepAlive: request.keepAlive, extraHeaders: []))
    }

    func ingestAlive() -> Bool {
        let hb = rg_load_relaxed_u64(region.counterPointer(process: ProcessBlock.ingest, counter: LogCounter.heartbeatNanoseconds.rawValue))
        return hb != 0 && rg_monotonic_ns() &- hb < 3_000_000_000
    }

    // MARK: - History

    func history(_ connection: Int32, _ request: HTTPRequest, slot: String) {
        counters.add(.historyRequests)
        var limit = min(100, config.maxLimit)
        if let raw = request.queryValue("limit") {
            guard let n = Int(raw), n >= 1, n <= config.maxLimit else {
                engine.respondError(connection, status: 400, error: "bad_limit",
                                    detail: "limit must be an integer from 1 to \(config.maxLimit)")
                return
            }
            limit = n
        }
        var after: UInt64? = nil
        var foreignEpoch = false
        if let raw = request.queryValue("after") {
            guard let id = EventID(parsing: raw) else {
                engine.respondError(connection, status: 400, error: "bad_id",
                                    detail: "after must be an event id like 5f3a9c01-42")
                return
            }
            if id.epoch != reader.epoch || id.seq > reader.headSeqAcquire() {
                foreignEpoch = true
                after = 0
            } else {
                after = id.seq
            }
        }
        let name = Array(slot.utf8)
        var json = JSONWriter()
        var attempts = 0
        while true {
            attempts += 1
            json = JSONWriter()
            let complete = name.withUnsafeBytes { nameBytes in
                writeHistory(&json, slot: nameBytes, after: after, foreignEpoch: foreignEpoch,
                             requestedAfter: request.queryValue("after"), limit: limit)
            }
            if complete || attempts >= 4 { break }
        }
        let body = json.bytes
        engine.respond(connection, HTTPResponseWriter.json(status: 200, body: request.method == .head ? [] : body,
                                                           keepAlive: request.keepAlive, extraHeaders: []))
    }

    /// Writes the history body; false when a record was overwritten while being read (retry).
    func writeHistory(_ json: inout JSONWriter, slot: UnsafeRawBufferPointer, after: UInt64?, foreignEpoch: Bool,
                      requestedAfter: String?, limit: Int) -> Bool {
        let window = reader.window(slot: slot, after: after, afterOrdinal: nil, limit: limit, maxSeq: .max,
                                   scratch: recordScratch)
        json.appendRaw(#"{"slot":"#)
        json.appendString(slot)
        json.appendRaw(#","events":["#)
        var lastSeq: UInt64 = 0
        var first = true
        for position in window.positions {
            guard case .record(let view) = reader.copyRecord(at: position, into: recordScratch) else { return false }
            if !first { json.appendRaw(",") }
            first = false
            json.appendRaw(#"{"id":""#)
            json.appendRaw(EventID(epoch: reader.epoch, seq: view.seq).description)
            json.appendRaw(#"","type":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(recordScratch)[view.type]))
            json.appendRaw(#","data":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(recordScratch)[view.data]))
            json.appendRaw(#","time":"#)
            json.appendInt(Int(view.timeMilliseconds))
            json.appendRaw("}")
            lastSeq = view.seq
        }
        json.appendRaw(#"],"next":"#)
        if lastSeq != 0 {
            appendID(&json, lastSeq)
        } else if let requestedAfter, !foreignEpoch {
            json.appendString(Array(requestedAfter.utf8).withUnsafeBytes { UnsafeRawBufferPointer($0) })
        } else {
            json.appendRaw("null")
        }
        json.appendRaw(#","oldest":"#)
        appendID(&json, window.slotOldestSeq)
        json.appendRaw(#","head":"#)
        appendID(&json, window.slotHeadSeq)
        json.appendRaw(#","reset":"#)
        json.appendRaw(window.reset || (foreignEpoch && window.slotOldestSeq != 0) ? "true" : "false")
        json.appendRaw("}")
        return true
    }

    func appendID(_ json: inout JSONWriter, _ seq: UInt64) {
        if seq == 0 {
            json.appendRaw("null")
        } else {
            json.appendRaw("\"" + EventID(epoch: reader.epoch, seq: seq).description + "\"")
        }
    }

    // MARK: - Streams

    func subscribe(_ connection: Int32, _ request: HTTPRequest, slot: String) {
        let resumeRaw = request.header("Last-Event-ID") ?? request.queryValue("after") ?? request.queryValue("lastEventId")
        var resume: EventID? = nil
        if let resumeRaw, !resumeRaw.isEmpty {
            guard let id = EventID(parsing: resumeRaw) else {
                engine.respondError(connection, status: 400, error: "bad_id",
                                    detail: "Last-Event-ID / after / lastEventId must be an event id like 5f3a9c01-42")
                return
            }
            resume = id
        }
        if request.method == .head {
            engine.respond(connection, HTTPResponseWriter.head(status: 200, contentType: "text/event-stream",
                                                               contentLength: 0, keepAlive: request.keepAlive, extraHeaders: []))
            return
        }
        let slotName = Array(slot.utf8)
        let perSlot = config.maxSubscribersPerSlotPerWorker
        if perSlot > 0, let id = slots.byName[slotName], slots.slots[Int(id)]!.subscribers >= perSlot {
            counters.add(.overCapacitySlot)
            engine.respondError(connection, status: 503, error: "over_capacity",
                                detail: "slot \(slot) has its maximum of subscribers (--max-subscribers-per-slot)",
                                extraHeaders: [("Retry-After", "5")])
            return
        }
        engine.startStream(connection, gauge: .connectionsSSE)
        let head = HTTPResponseWriter.head(status: 200, contentType: "text/event-stream", contentLength: nil,
                                           keepAlive: false,
                                           extraHeaders: [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")])
        let retryMilliseconds = Jitter.retryMilliseconds(random: random.next())
        var prelude = head
        prelude += Array("retry: \(retryMilliseconds)\n\n".utf8)
        guard prelude.withUnsafeBytes({ engine.streamAppend(connection, $0) }) else {
            engine.beginClose(connection, reason: .overCapacity)
            return
        }
        let s = subscribers + Int(connection)
        s.pointee = Subscriber()
        s.pointee.active = true
        s.pointee.localSlot = slots.acquire(name: slotName)
        s.pointee.lastWriteNanoseconds = engine.nowNanoseconds
        s.pointee.deadlineNanoseconds = Jitter.lifetimeDeadline(
            startNanoseconds: engine.nowNanoseconds, lifetimeNanoseconds: config.maxLifetimeNanoseconds,
            random: random.next())
        if let resume {
            if resume.epoch != reader.epoch || resume.seq > reader.headSeqAcquire() {
                s.pointee.pendingReset = .epoch
                s.pointee.cursorSeq = 0
            } else {
                s.pointee.cursorSeq = resume.seq
            }
            markCatchingUp(connection)
            catchUp(connection)
        } else {
            s.pointee.cursorSeq = fanoutSeq
            joinLive(connection)
        }
    }

    func joinLive(_ connection: Int32) {
        let s = subscribers + Int(connection)
        if s.pointee.catchingUp {
            s.pointee.catchingUp = false
            counters.subtract(.connectionsCatchingUp)
        }
        s.pointee.liveIndex = slots.addLive(s.pointee.localSlot, connection: connection)
    }

    func markCatchingUp(_ connection: Int32) {
        let s = subscribers + Int(connection)
        if !s.pointee.catchingUp {
            s.pointee.catchingUp = true
            counters.add(.connectionsCatchingUp)
        }
    }

    func leaveLive(_ connection: Int32) {
        let s = subscribers + Int(connection)
        if let moved = slots.removeLive(s.pointee.localSlot, at: s.pointee.liveIndex) {
            subscribers[Int(moved)].liveIndex = s.pointee.liveIndex
        }
        s.pointee.liveIndex = -1
    }

    /// Reads new records from the log, once each, and fans them out to live subscribers.
    func pump() {
        while true {
            switch reader.copyRecord(at: readPosition, into: recordScratch) {
            case .record(let view):
                readPosition = view.nextPosition
                guard view.seq > fanoutSeq else { continue }
                fanoutSeq = view.seq
                fanOut(view)
            case .padding(let next):
                readPosition = next
            case .notYetWritten:
                return
            case .lapped:
                // This worker fell a whole ring behind: live subscribers lost events too, so
                // they all catch up from their cursors, which reports the gap as a reset.
                readPosition = max(readPosition, reader.oldestPositionAcquire())
                demoteAllLive()
            }
        }
    }

    func fanOut(_ view: LogReader.RecordView) {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        let key = UInt64(view.slotIndex) << 32 | UInt64(view.slotGeneration)
        let local = slots.resolve(logKey: key, name: UnsafeRawBufferPointer(rebasing: scratch[view.name]))
        guard local >= 0, let slot = slots.slots[Int(local)], !slot.live.isEmpty else { return }
        let frameLength = encodeFrame(view, into: frameScratch)
        let frame = UnsafeRawBufferPointer(start: frameScratch.baseAddress, count: frameLength)
        var demoted: [Int32] = []
        var delivered: UInt64 = 0
        for connection in slot.live {
            if engine.streamAppend(connection, frame) {
                let s = subscribers + Int(connection)
                s.pointee.cursorSeq = view.seq
                s.pointee.cursorOrdinal = view.slotOrdinal
                s.pointee.lastWriteNanoseconds = engine.nowNanoseconds
                delivered += 1
            } else {
                demoted.append(connection)
            }
        }
        counters.add(.eventsDeliveredSSE, delivered)
        for connection in demoted {
            leaveLive(connection)
            markCatchingUp(connection)
            // The next send completion (or a freed buffer) resumes it from its cursor.
        }
    }

    func encodeFrame(_ view: LogReader.RecordView, into out: UnsafeMutableRawBufferPointer) -> Int {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        var idBytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &idBytes) { idBuffer in
            let idLength = EventID(epoch: reader.epoch, seq: view.seq).write(into: idBuffer, at: 0)
            return SSEEncoder.encodeEvent(id: UnsafeRawBufferPointer(rebasing: idBuffer[0..<idLength]),
                                          type: UnsafeRawBufferPointer(rebasing: scratch[view.type]),
                                          data: UnsafeRawBufferPointer(rebasing: scratch[view.data]),
                                          into: out, at: 0)
        }
    }

    func demoteAllLive() {
        for id in slots.slots.indices {
            guard let slot = slots.slots[id] else { continue }
            for connection in slot.live {
                subscribers[Int(connection)].liveIndex = -1
                markCatchingUp(connection)
                catchUpList.append(connection)
            }
            slots.slots[id]!.live.removeAll()
        }
    }

    /// Brings a subscriber from its cursor up to the fan-out position through windowed reads
    /// of its slot, then puts it back in the live fan-out. Stops whenever its buffer is full.
    func catchUp(_ connection: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.active, !s.pointee.closing, s.pointee.liveIndex < 0, engine.isOpenStream(connection) else { return }
        guard let name = slots.slots[Int(s.pointee.localSlot)]?.name else { return }
        while true {
            if engine.streamSpace(connection) < 512 { return }
            s.pointee.maxLag = max(s.pointee.maxLag, fanoutSeq &- s.pointee.cursorSeq)
            let window = name.withUnsafeBytes { nameBytes in
                reader.window(slot: nameBytes, after: s.pointee.cursorSeq,
                              afterOrdinal: s.pointee.cursorOrdinal == 0 ? nil : s.pointee.cursorOrdinal,
                              limit: catchUpBatch, maxSeq: fanoutSeq, scratch: recordScratch)
            }
            switch config.lagPolicy.action(windowReset: window.reset, gapAccepted: s.pointee.acceptGap,
                                 unknownID: s.pointee.pendingReset == .epoch) {
            case .deliver:
                break
            case .disconnect:
                writeControl(connection, event: "close", json: #"{"reason":"slow_consumer"}"#)
                engine.closeAfterFlush(connection, reason: .slowConsumer)
                return
            case .reset(let reason):
                var body = #"{"reason":""# + reason.rawValue + #"","oldest":"#
                body += window.slotOldestSeq == 0 ? "null" : "\"\(EventID(epoch: reader.epoch, seq: window.slotOldestSeq))\""
                body += #","head":"#
                body += window.slotHeadSeq == 0 ? "null" : "\"\(EventID(epoch: reader.epoch, seq: window.slotHeadSeq))\""
                body += #","dropped":"#
                body += window.dropped.map { "\($0)" } ?? "null"
                body += "}"
                guard writeControl(connection, event: "reset", json: body) else { return }
                counters.add(reason == .epoch ? .resetsEpoch : .resetsLapped)
                s.pointee.pendingReset = .none
                s.pointee.acceptGap = true
            }
            var delivered = 0
            for position in window.positions {
                guard case .record(let view) = reader.copyRecord(at: position, into: recordScratch) else {
                    break   // overwritten meanwhile: the next window reports the gap
                }
                let needed = encodedLength(view)
                if needed > engine.streamSpace(connection) {
                    counters.add(.eventsDeliveredSSE, UInt64(delivered))
                    return   // wait for the socket to drain
                }
                _ = engine.streamWrite(connection) { out in encodeFrame(view, into: out) }
                s.pointee.cursorSeq = view.seq
                s.pointee.cursorOrdinal = view.slotOrdinal
                s.pointee.acceptGap = false
                s.pointee.lastWriteNanoseconds = engine.nowNanoseconds
                delivered += 1
            }
            counters.add(.eventsDeliveredSSE, UInt64(delivered))
            if delivered == window.positions.count && window.positions.count < catchUpBatch {
                // Caught up with everything this worker has fanned out: rejoin the fan-out.
                if s.pointee.cursorSeq < fanoutSeq { s.pointee.cursorSeq = fanoutSeq }
                s.pointee.acceptGap = false
                counters.observeLag(events: s.pointee.maxLag)
                s.pointee.maxLag = 0
                joinLive(connection)
                return
            }
        }
    }

    func encodedLength(_ view: LogReader.RecordView) -> Int {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        return SSEEncoder.encodedLength(id: EventID(epoch: reader.epoch, seq: view.seq).description.utf8.count,
                                        type: view.type.count,
                                        data: UnsafeRawBufferPointer(rebasing: scratch[view.data]))
    }

    @discardableResult
    func writeControl(_ connection: Int32, event: String, json: String) -> Bool {
        let frame = Array("event: \(event)\ndata: \(json)\n\n".utf8)
        let ok = frame.withUnsafeBytes { engine.streamAppend(connection, $0) }
        if ok { subscribers[Int(connection)].lastWriteNanoseconds = engine.nowNanoseconds }
        return ok
    }

    /// Heartbeats after `--heartbeat` of silence (they also make a vanished peer visible to
    /// the send-progress check), and the end of streams past their lifetime.
    func sendHeartbeats(now: UInt64) {
        let interval = config.heartbeatNanoseconds
        engine.forEachStream { connection in
            let s = subscribers + Int(connection)
            guard s.pointee.active else { return }
            if now >= s.pointee.deadlineNanoseconds {
                if s.pointee.liveIndex >= 0 { leaveLive(connection) }
                s.pointee.deadlineNanoseconds = .max
                s.pointee.closing = true
                writeControl(connection, event: "close", json: #"{"reason":"max_lifetime"}"#)
                engine.closeAfterFlush(connection, reason: .maxLifetime)
                return
            }
            guard now &- s.pointee.lastWriteNanoseconds >= interval else { return }
            if heartbeatFrame.withUnsafeBytes({ engine.streamAppend(connection, $0) }) {
                s.pointee.lastWriteNanoseconds = now
            }
        }
    }

    // MARK: - Shutdown

    func beginShutdown() {
        shuttingDown = true
        shutdownDeadline = rg_monotonic_ns() + 3_000_000_000
        logger.info("worker \(index) shutting down", metadata: ["streams": "\(engine.connectionCount)"])
        engine.stopAccepting()
        engine.forEachStream { connection in
            let s = subscribers + Int(connection)
            if s.pointee.liveIndex >= 0 { leaveLive(connection) }
            s.pointee.closing = true
            writeControl(connection, event: "close", json: #"{"reason":"shutdown"}"#)
            engine.closeAfterFlush(connection, reason: .shutdown)
        }
        engine.closeIdleHTTP()
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
