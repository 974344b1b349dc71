import Glibc
import IO
import IOSimulation
import Logging
import RingLog
import Testing
import WireProtocol
@testable import HTTPServer

/// One seeded schedule of deferred answers under the backend's faults: clients pipelining
/// deferred and immediate requests in random pieces, some with `Connection: close`, some
/// half-closing or resetting; answers given in random order on random turns (all three answer
/// calls). Every turn: each client's responses name its requests in order. At the end: every
/// request the server received was answered (unless the connection ended on a 408 or 503 or a
/// reset), and nothing is left: no connection, no deferred answer, no queued response byte.
final class DeferredSchedule: HTTPEngineDelegate {
    final class Client {
        let peer: SimPeer
        var paths: [String] = []
        var stream: [UInt8] = []
        /// Where each request ends in `stream`.
        var ends: [Int] = []
        var written = 0
        var resetAt: Int? = nil
        var finAfterSend = false
        var checked = 0
        /// A response that ends the connection (503 at the limit, 408): nothing more is owed.
        var ended = false
        init(peer: SimPeer) { self.peer = peer }
    }

    struct Pending {
        var ticket: DeferredAnswer
        var path: String
        var keepAlive: Bool
        var client: Int
    }

    let seed: UInt64
    let sim: SimulatedIO
    let log = SimLog(capacityBytes: 1 << 16)
    let counters: CounterBlock
    let engine: HTTPEngine
    var random: SimRandom
    var clients: [Client] = []
    var clientByPath: [String: Int] = [:]
    var pending: [Pending] = []
    var refused: Set<String> = []
    var failures: [String] = []
    var answeredCount = 0
    var deferredCount = 0
    let runTurns: Int
    var windingDown = false
    var done = false

    init(seed: UInt64) {
        self.seed = seed
        var r = SimRandom(seed: seed ^ 0xDEF3_77ED)
        var io = IOBackendConfiguration()
        io.receiveBufferCount = r.within(2...8)
        io.receiveBufferBytes = 128
        sim = SimulatedIO(seed: seed, faults: r.below(3) == 0 ? .harsh : .mixed, configuration: io)
        counters = CounterBlock(region: log.region, process: ProcessBlock.ingest)
        var config = HTTPEngine.Configuration(maxConnections: r.within(2...8), headerTimeoutNanoseconds: 1_000_000_000,
                                              limits: HTTPLimits(maxBodyBytes: 1024), sendBufferBytes: 4096,
                                              sendBufferCount: 4)
        config.maxPipelinedRequests = r.within(1...8)
        config.maxDeferredAnswers = r.within(1...12)
        config.adminReserveConnections = 2
        engine = HTTPEngine(configuration: config, io: sim, listenFD: sim.makeListener(), wakeFD: -1,
                            counters: counters, logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        runTurns = r.within(100...300)
        random = r
        engine.delegate = self
    }

    func fail(_ message: String) {
        if failures.count < 10 { failures.append("seed=\(SimSeeds.hex(seed)) turn=\(sim.turn): \(message)") }
    }

    func run() -> [String] {
        sim.onTurn = { [unowned self] _ in step() }
        engine.run { [unowned self] in done }
        checkEnd()
        return failures
    }

    func step() {
        if sim.turn > runTurns + 5_000 {
            fail("did not wind down: \(engine.connectionCount) connections, \(engine.deferredAnswers) deferred answers left")
            done = true
            return
        }
        if !windingDown && sim.turn >= runTurns { windingDown = true }
        if !windingDown && clients.count < 12 && random.chance(60) { connect() }
        for (i, c) in clients.enumerated() {
            drive(c)
            check(c, index: i)
        }
        giveAnswers()
        if windingDown && pending.isEmpty && engine.connectionCount == 0
            && clients.allSatisfy({ $0.peer.serverClosed || $0.peer.resetSent }) {
            done = true
        }
    }

    func connect() {
        let c = Client(peer: sim.connect(sendBufferBytes: random.within(256...4096)))
        let id = clients.count
        let count = random.within(1...6)
        for k in 0..<count {
            let path = (random.chance(600) ? "/defer/" : "/now/") + "\(id)/\(k)"
            let close = k == count - 1 && random.chance(200)
            c.paths.append(path)
            clientByPath[path] = id
            c.stream += getRequest(path, close: close)
            c.ends.append(c.stream.count)
        }
        if random.chance(100) { c.resetAt = random.within(1...c.stream.count) }
        c.finAfterSend = c.resetAt == nil && random.chance(300)
        clients.append(c)
    }

    func drive(_ c: Client) {
        let p = c.peer
        guard !p.resetSent, !p.serverClosed else { return }
        if windingDown && !p.finSent && c.written == c.stream.count {
            sim.finish(p)   // wind down: every client half-closes once its requests are out
            return
        }
        guard c.written < c.stream.count, random.chance(500) else { return }
        let limit = c.resetAt ?? c.stream.count
        let n = min(limit - c.written, random.within(1...64))
        if n > 0 {
            sim.write(p, Array(c.stream[c.written..<(c.written + n)]))
            c.written += n
        }
        if c.written == c.resetAt { sim.reset(p) }
        else if c.written == c.stream.count && c.finAfterSend { sim.finish(p) }
    }

    /// Every response a client read names its next request, in order.
    func check(_ c: Client, index: Int) {
        let all = responses(c.peer.received)
        while c.checked < all.count {
            let r = all[c.checked]
            defer { c.checked += 1 }
            if c.ended { return fail("client \(index): a response after the one that ended its connection") }
            if r.body.contains("connection limit") || r.status == 408 {
                c.ended = true
                continue
            }
            guard c.checked < c.paths.count else { return fail("client \(index): more responses than requests") }
            let expected = c.paths[c.checked]
            if r.status == 503 {
                if !refused.contains(expected) { fail("client \(index): 503 for \(expected), which was not refused") }
                continue
            }
            if r.body != #"{"path":"\#(expected)"}"# {
                fail("client \(index): response \(c.checked) is \(r.body), expected \(expected); all: \(all.map(\.body))")
            }
        }
    }

    func giveAnswers() {
        guard !pending.isEmpty else { return }
        var k = 0
        while k < pending.count {
            guard windingDown || random.chance(150) else { k += 1; continue }
            let p = pending.remove(at: k)
            let body = Array(#"{"path":"\#(p.path)"}"#.utf8)
            let given: Bool
            switch random.below(3) {
            case 0:
                given = engine.answer(p.ticket, DeferredHarness.answerBytes(p.path, keepAlive: p.keepAlive))
            case 1:
                let head = HTTPResponseWriter.head(status: 200, contentType: "application/json", contentLength: body.count,
                                                   keepAlive: p.keepAlive)
                given = engine.answer(p.ticket, head: head, body: body)
            default:
                // An error answer names its path in the detail: the check reads it as a 503 refusal.
                refused.insert(p.path)
                given = engine.answerError(p.ticket, status: 503, error: "upstream_unavailable", detail: p.path)
            }
            if given { answeredCount += 1 }
            // Stale only once the server began closing (its shutdown is the peer's FIN).
            if !given && !clients[p.client].peer.resetSent && !clients[p.client].peer.serverFIN {
                fail("answer for \(p.path) refused while its client is connected")
            }
            if engine.answer(p.ticket, body) { fail("a ticket answered twice (\(p.path))") }
        }
    }

    func checkEnd() {
        if engine.connectionCount != 0 { fail("\(engine.connectionCount) connections left") }
        if engine.deferredAnswers != 0 { fail("\(engine.deferredAnswers) deferred answers left") }
        if counters.get(.responseQueueBytes) != 0 { fail("responseQueueBytes = \(counters.get(.responseQueueBytes))") }
        if sim.openConnectionDescriptors != 0 { fail("\(sim.openConnectionDescriptors) descriptors open") }
        for v in sim.violations { fail("backend misuse: \(v)") }
        for (i, c) in clients.enumerated() where !c.ended && !c.peer.resetSent && !c.peer.resetByServer && c.peer.serverFD >= 0 {
            let received = c.written - c.peer.pendingToServer
            let complete = c.ends.filter { $0 <= received }.count
            if c.checked != complete {
                fail("client \(i): \(c.checked) responses for \(complete) complete requests received (\(c.paths))")
            }
        }
    }

    func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32) {
        let client = clientByPath[request.path] ?? -1
        guard request.path.hasPrefix("/defer") else {
            engine.respond(connection, DeferredHarness.answerBytes(request.path, keepAlive: request.keepAlive))
            return
        }
        guard let ticket = engine.deferAnswer(connection) else {
            refused.insert(request.path)
            engine.respondError(connection, status: 503, error: "over_capacity", detail: "deferred answers are at their limit")
            return
        }
        deferredCount += 1
        pending.append(Pending(ticket: ticket, path: request.path, keepAlive: request.keepAlive, client: client))
    }

    func engine(_ engine: HTTPEngine, streamWritable connection: Int32) {}
    func engine(_ engine: HTTPEngine, streamClosed connection: Int32) {}
    func engineWake(_ engine: HTTPEngine) {}
    func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64) {}
    func engineTurnEnd(_ engine: HTTPEngine) {}
}

@Suite struct DeferredAnswerScheduleTests {
    @Test func seededSchedulesAnswerInRequestOrderAndLeaveNothingBehind() {
        var failures: [String] = []
        var deferred = 0, answered = 0
        for seed in SimSeeds.list(defaultCount: 400, salt: 12) {
            let s = DeferredSchedule(seed: seed)
            failures += s.run()
            deferred += s.deferredCount
            answered += s.answeredCount
            if failures.count >= 10 { break }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(deferred > 0 && answered > 0)
        print("deferred-answer simulation: \(deferred) deferred, \(answered) answered")
    }
}
