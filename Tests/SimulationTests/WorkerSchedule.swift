import CRinggateSys
import GatewayCore
import IO
import IOSimulation
import Logging
import RingLog
import WireProtocol
@testable import HTTPServer
@testable import Worker

/// One seeded schedule against the real worker: subscribers (SSE, WebSocket), history pulls,
/// slow heads, peers that stop reading, vanish or reset, a writer appending between turns
/// (lapping a small log), every fault of `SimulatedIO`. Invariants are checked every turn.
final class WorkerSchedule {
    enum Role: CaseIterable { case sse, webSocket, history, slowHead, pipelined }

    final class Client {
        let peer: SimPeer
        let role: Role
        let slot: String
        var request: [UInt8]
        var requestSent = 0
        var lastSeq: UInt64?
        var resetPending = false
        var sawClose = false
        var headLength = -1
        var everReading = true
        /// A history client that half-closes right after its request (`nc -N`).
        var finEarly = false
        var answerChecked = false
        var sentClose = false
        var closeSentAt: UInt64 = 0
        var closeChecked = false
        var skipped = 0   // bytes of answers before the stream's head (pipelined)
        var status = 0
        var sse = SSEParser(offset: 0)
        var ws = WebSocketParser(offset: 0)
        var acceptedAt: UInt64 = 0
        var stallStart: UInt64 = 0
        var stallNoticedAt: UInt64 = 0
        var timersAtStall = 0
        var refusalsAtStall = 0
        var finSeenAt: UInt64 = 0
        var pastDeadlineSeenAt: UInt64 = 0
        var timersAtPastDeadline = 0
        var refusalsAtPastDeadline = 0
        var finished = false   // the client sent its FIN or reset
        var pingMask: UInt32 = 0x1234_5678
        init(peer: SimPeer, role: Role, slot: String, request: [UInt8]) {
            self.peer = peer
            self.role = role
            self.slot = slot
            self.request = request
        }
    }

    struct Outcome {
        var failures: [String] = []
        var transcriptHash: UInt64 = 0
        var transcript: [String] = []
        var turns = 0
        var events = 0
        var delivered = 0
        var resets = 0
        var clients = 0
    }

    let seed: UInt64
    let sim: SimulatedIO
    let log: SimLog
    let config: GatewayConfig
    let worker: Worker
    let wakeFD: Int32
    var random: SimRandom
    var clients: [Client] = []
    var outcome = Outcome()
    var done = false
    var windingDown = false
    let runTurns: Int
    let maxClients: Int
    static let slots = ["a", "b", "c"]
    let tick: UInt64 = 100_000_000

    /// Behaviours added later draw from the PRNG only from their version on, so a regression
    /// seed replays the schedule it was found with: 1 = the first, 2 = history clients that
    /// half-close early, 3 = WebSocket clients' own text and close frames.
    static let currentVersion = 3
    let version: Int

    init(seed: UInt64, version: Int = WorkerSchedule.currentVersion, faults given: SimulatedIO.Faults? = nil,
         recordsTranscript: Bool = false) throws {
        self.seed = seed
        self.version = version
        var r = SimRandom(seed: seed ^ 0xC11E_17)
        random = r
        var io = IOBackendConfiguration()
        io.receiveBufferCount = r.within(2...8)
        io.receiveBufferBytes = 512
        io.completionBatch = 64
        // A third of the schedules run the harsh mix.
        let faults = given ?? (r.below(3) == 0 ? .harsh : .mixed)
        sim = SimulatedIO(seed: seed, faults: faults, configuration: io)
        sim.recordsTranscript = recordsTranscript
        log = SimLog(capacityBytes: [8 << 10, 16 << 10, 64 << 10][r.below(3)])
        var c = GatewayConfig()
        c.workers = 1
        c.heartbeatNanoseconds = 1_000_000_000
        c.sendTimeoutNanoseconds = 2_000_000_000
        c.headerTimeoutNanoseconds = 1_000_000_000
        // Sometimes a low limit: connections past it land on the admin reserve (503 but for /healthz…).
        c.maxConnections = r.chance(300) ? r.within(2...8) : 64
        c.sendBuffers = r.within(2...16)
        c.maxEventBytes = 4096
        c.maxPipelinedRequests = r.within(1...8)
        config = c
        let listenFD = sim.makeListener()
        wakeFD = sim.makeWakeDescriptor()
        worker = try Worker(config: c, index: 0, region: log.region, listenFD: listenFD, wakeFD: wakeFD,
                            admission: nil, io: sim, logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        runTurns = r.within(100...400)
        maxClients = r.within(4...20)
        random = r
    }

    func fail(_ message: String) { outcome.fail(message, seed: seed, sim: sim) }

    func run() -> Outcome {
        sim.onTurn = { [unowned self] _ in step() }
        worker.engine.run { [unowned self] in done }
        outcome.finish(seed: seed, sim: sim, peers: clients.map(\.peer))
        return outcome
    }

    // MARK: - One turn

    func step() {
        let now = sim.now()
        if sim.turn > runTurns + 20000 || (windingDown && now > windDownStart + 180_000_000_000) {
            fail("did not wind down: \(worker.engine.connectionCount) connections left, \(clients.filter { !$0.peer.serverClosed }.count) peers open")
            done = true
            return
        }
        if quiesceStart == 0 && sim.turn >= runTurns { quiesceStart = now }
        if quiesceStart == 0 {
            if clients.count < maxClients && random.chance(60) { connect() }
            if random.chance(300) { publish() }
        }
        for c in clients { drive(c, now: now) }
        if !windingDown && quiesceStart > 0 && now >= quiesceStart + quiesceNanoseconds {
            // After this turn's bytes were parsed. Bytes in flight (short sends, a clock
            // jump) get more time: thirty seconds and three hundred ticks at most.
            if quiesceTimers == 0 { quiesceTimers = sim.timersFired }
            let final = now >= quiesceStart + 30_000_000_000 && sim.timersFired >= quiesceTimers + 300
            if checkCaughtUp(final: final) || final { beginWindDown() }
        }
        if windingDown && clients.allSatisfy({ $0.peer.serverClosed })
            && worker.engine.connectionCount == 0 {
            checkFinalState()
            done = true
        }
    }

    var windDownStart: UInt64 = 0
    /// Publishing stops at `runTurns`; this long after, every reader that kept reading has
    /// every event of its slot (or a reset): nobody is left stuck behind.
    var quiesceStart: UInt64 = 0
    let quiesceNanoseconds: UInt64 = 3_000_000_000

    var quiesceTimers = 0

    func checkCaughtUp(final: Bool) -> Bool {
        var all = true
        // Fast readers only: a slow one (bytes per turn) may rightly be minutes behind.
        for c in clients where c.everReading && c.peer.readBytesPerTurn >= 1 << 20 && !c.peer.vanished && !c.finished && !c.peer.serverFIN && !c.peer.serverClosed
            && (c.status == 200 || c.status == 101) && c.role != .history {
            guard let last = c.lastSeq, let head = log.seqsBySlot[c.slot]?.last else { continue }
            if last != head && !c.resetPending {
                all = false
                guard final else { continue }
                fail("peer \(c.peer.id) (\(c.role), slot \(c.slot)) kept reading but is stuck at \(last); the slot's last event is \(head), \((sim.now() - quiesceStart) / 1_000_000) ms after the last publish; \(describeServerSide(c.peer.serverFD)); \(describeSubscriber(c.peer.serverFD)); peer unread \(c.peer.unreadBytes), received \(c.peer.received.count), parsed to \(c.ws.offset)/\(c.sse.offset), tail \(String(decoding: c.peer.received.suffix(300), as: UTF8.self).debugDescription)")
            }
        }
        return all
    }

    func beginWindDown() {
        windingDown = true
        windDownStart = sim.now()
        for c in clients where !c.finished && !c.peer.vanished {
            c.finished = true
            if random.chance(300) { sim.reset(c.peer) } else { sim.finish(c.peer) }
        }
    }

    func connect() {
        let role = Role.allCases[random.below(Role.allCases.count)]
        let slot = WorkerSchedule.slots[random.below(WorkerSchedule.slots.count)]
        let peer = sim.connect(sendBufferBytes: random.within(256...8192),
                               readBytesPerTurn: random.chance(300) ? random.within(16...256) : 1 << 20)
        var resume: UInt64? = nil
        if let list = log.seqsBySlot[slot], !list.isEmpty, random.chance(500) { resume = list[random.below(list.count)] }
        let epoch = log.region.epoch
        var head: String
        switch role {
        case .sse:
            head = "GET /v1/slots/\(slot)/stream HTTP/1.1\r\nHost: sim\r\n"
            if let resume { head += "Last-Event-ID: \(EventID(epoch: epoch, seq: resume))\r\n" }
        case .webSocket:
            head = "GET /v1/slots/\(slot)/ws\(resume.map { "?after=\(EventID(epoch: epoch, seq: $0))" } ?? "") HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        case .history:
            head = "GET /v1/slots/\(slot)/events?limit=\(random.within(1...50))\(resume.map { "&after=\(EventID(epoch: epoch, seq: $0))" } ?? "") HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n"
        case .slowHead:
            head = "GET /v1/slots/\(slot)/stream HTTP/1.1\r\nHost: sim\r\nX-Slow: "
        case .pipelined:
            // Answers to read before the stream starts: the stream's request may wait in the
            // stash of a paused connection.
            head = ""
            for k in 0..<random.within(1...6) {
                head += k % 2 == 0 ? "GET /healthz HTTP/1.1\r\nHost: sim\r\n\r\n"
                    : "GET /v1/slots/\(slot)/events?limit=\(random.within(1...5)) HTTP/1.1\r\nHost: sim\r\n\r\n"
            }
            head += random.chance(500) ? "GET /v1/slots/\(slot)/stream HTTP/1.1\r\nHost: sim\r\n"
                : "GET /v1/slots/\(slot)/ws HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            resume = nil
        }
        if role != .slowHead { head += "\r\n" }
        let c = Client(peer: peer, role: role, slot: slot, request: Array(head.utf8))
        c.lastSeq = role == .history ? nil : resume
        c.finEarly = version >= 2 && role == .history && random.chance(300)
        c.pingMask = UInt32(truncatingIfNeeded: random.next())
        clients.append(c)
    }

    func publish() {
        let n = random.within(1...4)
        for _ in 0..<n {
            let slot = WorkerSchedule.slots[random.below(WorkerSchedule.slots.count)]
            let data = Array(("\"" + String(repeating: "x", count: random.within(1...600)) + "\"").utf8)
            log.append(slot: slot, data: data)
            outcome.events += 1
        }
        // What the ingest does after a turn with appends: fence, then signal if wanted.
        rg_fence_seq_cst()
        if worker.counters.get(.wakeWanted) != 0 { sim.signal(wake: wakeFD) }
    }

    // MARK: - A client's turn

    let tracePeer = SimSeeds.environment("RINGGATE_SIM_TRACE").flatMap { Int($0) }

    func drive(_ c: Client, now: UInt64) {
        let p = c.peer
        if tracePeer == p.id && !p.serverClosed {
            print("trace t=\(sim.turn) clock=\(now) fd=\(p.serverFD) sent=\(c.requestSent)/\(c.request.count) toServer=\(p.pendingToServer) unread=\(p.unreadBytes) received=\(p.received.count) \(describeServerSide(p.serverFD))")
        }
        if p.serverFD >= 0 && c.acceptedAt == 0 { c.acceptedAt = now }
        // Send the request in pieces split at random points.
        if c.requestSent < c.request.count && !c.finished && !p.vanished {
            let n = random.within(1...(c.request.count - c.requestSent))
            sim.write(p, Array(c.request[c.requestSent..<(c.requestSent + n)]))
            c.requestSent += n
            if c.requestSent == c.request.count && c.finEarly {
                c.finished = true
                sim.finish(p)
            }
        }
        parse(c)
        if c.sentClose && !c.closeChecked && p.sawEnd {
            // The closing handshake: the server answers a client's close with its own.
            c.closeChecked = true
            // The reply waits behind the stream's pending bytes for at most the linger time: a
            // clock jump past it (a loop that stalled that long) closes without it, rightly.
            let withinLinger = now <= c.closeSentAt + worker.engine.configuration.lingerNanoseconds
            if !c.sawClose && !p.resetByServer && !p.resetSent && c.everReading && p.readBytesPerTurn >= 1 << 20
                && withinLinger {
                fail("peer \(p.id) (WebSocket) sent a close frame; the server closed without one; send buffers in use \(worker.engine.sendPool.inUse)/\(worker.engine.sendPool.capacity), tail \(p.received.suffix(12))")
            }
        }
        checkDeadlines(c, now: now)
        guard quiesceStart == 0, !c.finished, !p.vanished, !p.serverClosed else { return }
        if version >= 3 && c.status == 101 && c.requestSent == c.request.count {
            // A WebSocket client's own frames: a stray text message (dropped), or its close.
            if random.chance(5) {
                c.pingMask = c.pingMask &* 1_103_515_245 &+ 12345
                sim.write(p, clientFrame(opcode: 0x1, payload: Array("hello".utf8), mask: c.pingMask))
            } else if random.chance(3) {
                c.pingMask = c.pingMask &* 1_103_515_245 &+ 12345
                sim.write(p, clientFrame(opcode: 0x8, payload: [0x03, 0xE8], mask: c.pingMask))
                c.finished = true   // it sends nothing more and waits for the server's close
                c.sentClose = true
                c.closeSentAt = sim.now()
                return
            }
        }
        // Faults a client brings: it stops reading, vanishes, resets or leaves.
        if random.chance(4) { p.readBytesPerTurn = 0; c.everReading = false }
        else if random.chance(2) { sim.vanish(p); c.everReading = false }
        else if random.chance(3) { c.finished = true; sim.reset(p) }
        else if random.chance(3) { c.finished = true; sim.finish(p) }
    }

    func parse(_ c: Client) {
        let bytes = c.peer.received
        while c.headLength < 0 {
            guard let (status, length) = parseHead(Array(bytes[c.skipped...])) else { return }
            if c.role == .pipelined && status == 200,
               let body = contentLength(bytes[c.skipped..<(c.skipped + length)]) {
                // An answer before the stream's: skip it whole.
                guard bytes.count >= c.skipped + length + body else { return }
                c.skipped += length + body
                continue
            }
            c.headLength = c.skipped + length
            c.status = status
            c.sse.offset = c.headLength
            c.ws.offset = c.headLength
        }
        switch c.role {
        case .sse where c.status == 200, .slowHead where c.status == 200, .pipelined where c.status == 200:
            for item in c.sse.parse(bytes) { observe(c, item) }
        case .webSocket where c.status == 101, .pipelined where c.status == 101:
            for item in c.ws.parse(bytes) { observe(c, item) }
        case .history:
            checkHistory(c, bytes)
        default:
            // An error answer (503 at the descriptor limit, 408): complete, then the server closes.
            if c.peer.sawEnd && !c.finished { c.finished = true; sim.finish(c.peer) }
        }
    }

    func observe(_ c: Client, _ item: StreamItem) {
        switch item {
        case .event(let seq):
            if c.sawClose { fail("peer \(c.peer.id) (\(c.role), slot \(c.slot)): event \(seq) after the close notice") }
            outcome.delivered += 1
            if let last = c.lastSeq {
                if c.resetPending {
                    if seq <= last { fail("peer \(c.peer.id) (\(c.role), slot \(c.slot)): event \(seq) after a reset is not past \(last)") }
                } else {
                    let expected = log.next(in: c.slot, after: last)
                    if seq != expected {
                        fail("peer \(c.peer.id) (\(c.role), slot \(c.slot)): event \(seq) follows \(last) without a reset; expected \(expected.map(String.init) ?? "none")")
                    }
                }
            }
            c.lastSeq = seq
            c.resetPending = false
        case .reset:
            outcome.resets += 1
            c.resetPending = true
        case .close:
            c.sawClose = true
        case .ping(let payload):
            if !c.finished && !c.peer.vanished {
                c.pingMask = c.pingMask &* 1_103_515_245 &+ 12345
                sim.write(c.peer, clientFrame(opcode: 0xA, payload: payload, mask: c.pingMask))
            }
        }
    }

    func checkHistory(_ c: Client, _ bytes: [UInt8]) {
        guard !c.answerChecked, c.status > 0 else { return }
        let head = bytes[0..<c.headLength]
        guard let length = contentLength(head), bytes.count >= c.headLength + length else {
            if c.peer.sawEnd && !c.peer.resetByServer && !c.peer.resetSent && c.peer.readBytesPerTurn > 0 {
                fail("peer \(c.peer.id)\(c.finEarly ? " (FIN after its request)" : ""): history answer cut short (\(bytes.count) bytes)")
                c.answerChecked = true
            }
            return
        }
        c.answerChecked = true
        if !c.finished {
            c.finished = true
            sim.finish(c.peer)   // a client that read its answer leaves
        }
        guard c.status == 200 else { return }
        let body = String(decoding: bytes[c.headLength..<(c.headLength + length)], as: UTF8.self)
        let seqs = historySeqs(body)
        for (i, seq) in seqs.enumerated() where i > 0 {
            if log.next(in: c.slot, after: seqs[i - 1]) != seq {
                fail("peer \(c.peer.id): history of \(c.slot) has \(seq) after \(seqs[i - 1]), not the slot's next event")
            }
        }
    }

    /// A stalled connection is closed within its deadline (plus a tick), judged from the
    /// first turn that saw the deadline pass (a clock jump may leap past it). Chained timers
    /// (a 408, then the linger) each start when the server could first have seen the cause.
    func checkDeadlines(_ c: Client, now: UInt64) {
        let p = c.peer
        guard p.serverFD >= 0, !p.serverClosed else { return }
        let engineConfig = worker.engine.configuration
        if p.serverFIN && c.finSeenAt == 0 { c.finSeenAt = now }
        var deadlines: [UInt64] = []
        if p.readBytesPerTurn == 0 && p.unreadBytes > 0 && !p.finSent && !p.resetSent {
            if c.stallStart == 0 {
                c.stallStart = now
                c.timersAtStall = sim.timersFired
                c.refusalsAtStall = sim.submissionsRefused
            }
            // The server samples the kernel's counters every progress check: it has seen the
            // stall by the first turn a check and a tick later, and as many ticks fired (one
            // more per refused submission: a tick that could not be armed is late).
            let ticksPerCheck = Int(engineConfig.progressCheckNanoseconds / tick) + 1
            if c.stallNoticedAt == 0 && now >= c.stallStart + engineConfig.progressCheckNanoseconds + tick
                && sim.timersFired >= c.timersAtStall + ticksPerCheck + (sim.submissionsRefused - c.refusalsAtStall) {
                c.stallNoticedAt = now
            }
            if c.stallNoticedAt > 0 {
                deadlines.append(c.stallNoticedAt + config.sendTimeoutNanoseconds + engineConfig.progressCheckNanoseconds + 2 * tick)
            }
        } else {
            c.stallStart = 0
            c.stallNoticedAt = 0
        }
        if c.finSeenAt > 0 && !p.finSent && !p.resetSent {
            deadlines.append(c.finSeenAt + engineConfig.lingerNanoseconds + 2 * tick)   // lingering for the peer's FIN
        }
        if c.role == .slowHead && c.acceptedAt > 0 && c.finSeenAt == 0 && p.unreadBytes == 0 && p.received.isEmpty {
            deadlines.append(c.acceptedAt + config.headerTimeoutNanoseconds + 2 * tick)   // the 408
        }
        guard let deadline = deadlines.min(), now >= deadline else {
            c.pastDeadlineSeenAt = 0
            return
        }
        if c.pastDeadlineSeenAt == 0 {
            c.pastDeadlineSeenAt = now
            c.timersAtPastDeadline = sim.timersFired
            c.refusalsAtPastDeadline = sim.submissionsRefused
        }
        // Late: two ticks of time and three timer completions (the loop's chances to act; a
        // clock jump may pass the two ticks within one turn) after the deadline was seen, one more
        // for each submission refused meanwhile (the loop retries it on a later turn).
        if now >= c.pastDeadlineSeenAt + 2 * tick + 10_000_000 && sim.timersFired >= c.timersAtPastDeadline + 3 + (sim.submissionsRefused - c.refusalsAtPastDeadline) {
            fail("peer \(p.id) (\(c.role), \(p.vanished ? "vanished" : p.readBytesPerTurn == 0 ? "stopped reading" : "reading")) still open \((now - deadline) / 1_000_000) ms past its deadline; accepted at \(c.acceptedAt), stalled since \(c.stallStart), unread \(p.unreadBytes), server FIN \(p.serverFIN), \(describeServerSide(p.serverFD)), received \(String(decoding: p.received.prefix(300), as: UTF8.self).debugDescription)")
            c.pastDeadlineSeenAt = UInt64.max / 2   // reported once
        }
    }

    func describeServerSide(_ fd: Int32) -> String {
        let e = worker.engine
        for i in 0..<e.tableCapacity where i < e.initializedCount || i >= e.configuration.maxConnections {
            let c = e.table[i]
            if c.fd == fd && c.phase != .free {
                return "server conn \(i): phase \(c.phase), recvArmed \(c.recvArmed), sendInFlight \(c.sendInFlight), closeAfterFlush \(c.closeAfterFlush), linger deadline \(c.lingerDeadlineNanoseconds), headStart \(c.headStartNanoseconds), watch \(c.watchProgress), stalledSince \(c.progress.stalledSinceNanoseconds), out \(c.out?.count ?? -1)/\(c.outOffset), backend \(sim.describeOperations(fd: fd))"
            }
        }
        return "no server connection"
    }

    func describeSubscriber(_ fd: Int32) -> String {
        let e = worker.engine
        for i in 0..<e.configuration.maxConnections where i < e.initializedCount {
            if e.table[i].fd == fd && e.table[i].phase != .free {
                let s = worker.subscribers[i]
                // Only fields that survive main's SubscriberCursor refactor (merge-friendly).
                return "subscriber: active \(s.active), live \(s.liveIndex), catchingUp \(s.catchingUp), pending \(e.streamPendingBytes(Int32(i))); worker fanoutSeq \(worker.fanoutSeq), readPosition \(worker.readPosition), liveTotal \(worker.slots.liveTotal), catchUpList \(worker.catchUpList), log head \(worker.reader.headSeqAcquire()) tail \(worker.reader.tailAcquire())"
            }
        }
        return "no subscriber"
    }

    // MARK: - The end

    func checkFinalState() {
        let e = worker.engine
        if e.sendPool.inUse != 0 { fail("\(e.sendPool.inUse) send buffers still taken") }
        if e.pendingBodyBytes != 0 { fail("pending body bytes \(e.pendingBodyBytes)") }
        for gauge: LogCounter in [.connectionsSSE, .connectionsHTTP, .connectionsWS, .connectionsAdmin, .sendBuffersInUse,
                                  .connectionsCatchingUp, .pendingSendBytes, .responseQueueBytes, .pendingBodyBytes] {
            let v = worker.counters.get(gauge)
            if v != 0 { fail("gauge \(gauge) is \(Int64(bitPattern: v)) with no connection") }
        }
        if worker.activeSubscribers != 0 { fail("\(worker.activeSubscribers) subscribers still active") }
        if sim.receiveBuffersInUse != 0 { fail("\(sim.receiveBuffersInUse) receive buffers not returned") }
        if sim.openConnectionDescriptors != 0 { fail("\(sim.openConnectionDescriptors) connection descriptors not closed") }
    }
}
