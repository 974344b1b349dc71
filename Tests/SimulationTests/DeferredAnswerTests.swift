import Glibc
import IO
import IOSimulation
import Logging
import RingLog
import Testing
import WireProtocol
@testable import HTTPServer

/// The engine's deferred answers (issue 12) on the simulated backend: a delegate that defers
/// every request whose path starts with `/defer` and answers the others at once; a script of
/// steps run at the start of each turn gives the deferred answers, drives the peers and checks
/// what they read.
final class DeferredHarness: HTTPEngineDelegate {
    let sim: SimulatedIO
    let log = SimLog(capacityBytes: 1 << 16)
    let counters: CounterBlock
    let engine: HTTPEngine
    /// Deferred requests' tickets by path; paths whose deferral was refused (the cap).
    var tickets: [String: DeferredAnswer] = [:]
    var refused: [String] = []
    var dispatched: [String] = []
    /// Steps, each run every turn until it returns true; the loop ends when all are done.
    var steps: [() -> Bool] = []
    var maxTurns = 2_000

    init(seed: UInt64 = 1, faults: SimulatedIO.Faults = SimulatedIO.Faults(),
         configure: (inout HTTPEngine.Configuration) -> Void = { _ in }) {
        var io = IOBackendConfiguration()
        io.receiveBufferCount = 8
        io.receiveBufferBytes = 256
        sim = SimulatedIO(seed: seed, faults: faults, configuration: io)
        counters = CounterBlock(region: log.region, process: ProcessBlock.ingest)
        var config = HTTPEngine.Configuration(maxConnections: 8, headerTimeoutNanoseconds: 1_000_000_000,
                                              limits: HTTPLimits(maxBodyBytes: 4096), sendBufferBytes: 4096,
                                              sendBufferCount: 4)
        config.keepAliveIdleNanoseconds = 3_000_000_000
        config.bodyTimeoutNanoseconds = 2_000_000_000
        configure(&config)
        engine = HTTPEngine(configuration: config, io: sim, listenFD: sim.makeListener(), wakeFD: -1,
                            counters: counters, logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        engine.delegate = self
    }

    /// Runs the steps; false when the turn limit came first (`steps.count` tells which one stuck).
    func run() -> Bool {
        var finished = false
        sim.onTurn = { [unowned self] _ in
            while let step = steps.first, step() { steps.removeFirst() }
            finished = steps.isEmpty
        }
        engine.run { [unowned self] in finished || sim.turn >= maxTurns }
        return finished
    }

    static func answerBytes(_ path: String, status: Int = 200, keepAlive: Bool = true) -> [UInt8] {
        HTTPResponseWriter.json(status: status, body: Array(#"{"path":"\#(path)"}"#.utf8), keepAlive: keepAlive,
                                extraHeaders: [])
    }

    func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32) {
        dispatched.append(request.path)
        guard request.path.hasPrefix("/defer") else {
            engine.respond(connection, DeferredHarness.answerBytes(request.path, keepAlive: request.keepAlive))
            return
        }
        guard let ticket = engine.deferAnswer(connection) else {
            refused.append(request.path)
            engine.respondError(connection, status: 503, error: "over_capacity", detail: "deferred answers are at their limit")
            return
        }
        tickets[request.path] = ticket
    }

    @discardableResult
    func answer(_ path: String, keepAlive: Bool = true) -> Bool {
        engine.answer(tickets[path]!, DeferredHarness.answerBytes(path, keepAlive: keepAlive))
    }

    func engine(_ engine: HTTPEngine, streamWritable connection: Int32) {}
    func engine(_ engine: HTTPEngine, streamClosed connection: Int32) {}
    func engineWake(_ engine: HTTPEngine) {}
    func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64) {}
    func engineTurnEnd(_ engine: HTTPEngine) {}
}

/// A GET request for `path`.
func getRequest(_ path: String, close: Bool = false) -> [UInt8] {
    Array("GET \(path) HTTP/1.1\r\nHost: sim\r\n\(close ? "Connection: close\r\n" : "")\r\n".utf8)
}

/// The complete responses at the start of what a peer read: (status, body), in order.
func responses(_ bytes: [UInt8]) -> [(status: Int, body: String)] {
    var out: [(status: Int, body: String)] = []
    var rest = bytes[...]
    while let (status, length) = parseHead(Array(rest)) {
        let n = contentLength(rest.prefix(length)) ?? 0
        guard rest.count >= length + n else { break }
        out.append((status, String(decoding: rest.dropFirst(length).prefix(n), as: UTF8.self)))
        rest = rest.dropFirst(length + n)
    }
    return out
}

/// The paths a peer's responses name (`{"path":…}` bodies), in the order it read them.
func answeredPaths(_ peer: SimPeer) -> [String] {
    responses(peer.received).map { r in
        guard r.body.hasPrefix(#"{"path":""#) else { return "\(r.status)" }
        return String(r.body.dropFirst(9).dropLast(2))
    }
}

@Suite struct DeferredAnswerTests {
    @Test func answersLeaveInRequestOrderWhateverOrderTheyAreGivenIn() {
        let h = DeferredHarness()
        let p = h.sim.connect()
        h.sim.write(p, getRequest("/defer/1") + getRequest("/now/2") + getRequest("/defer/3") + getRequest("/now/4"))
        var readBeforeAnswers = -1
        h.steps = [
            { h.dispatched.count == 4 },
            { h.sim.timersFired > 3 },   // a few ticks: nothing may leave ahead of /defer/1
            {
                readBeforeAnswers = p.received.count
                #expect(h.engine.deferredAnswers == 2)
                #expect(h.answer("/defer/3"))   // the later one first
                return true
            },
            { h.sim.timersFired > 6 },
            {
                #expect(p.received.isEmpty, "answers behind the first deferred one left early")
                #expect(h.answer("/defer/1"))
                return true
            },
            { answeredPaths(p).count == 4 },
        ]
        #expect(h.run(), "stuck at step \(6 - h.steps.count)")
        #expect(readBeforeAnswers == 0)
        #expect(answeredPaths(p) == ["/defer/1", "/now/2", "/defer/3", "/now/4"])
        #expect(h.engine.deferredAnswers == 0)
        #expect(!h.answer("/defer/1"), "a ticket answers once")
        #expect(h.counters.get(.responseQueueBytes) == 0)
    }

    @Test func aHalfCloseAfterTheRequestStillGetsTheAnswerThenTheClose() {
        let h = DeferredHarness()
        // One with an answer held behind the deferred one, one with nothing else to answer.
        let p = h.sim.connect(), q = h.sim.connect()
        h.sim.write(p, getRequest("/defer/1") + getRequest("/now/2"))
        h.sim.write(q, getRequest("/defer/solo"))
        h.sim.finish(p)
        h.sim.finish(q)
        h.steps = [
            { h.dispatched.count == 3 },
            { h.sim.timersFired > 5 },   // the FINs were received meanwhile: the connections wait
            {
                #expect(h.engine.connectionCount == 2)
                #expect(!p.serverFIN && !p.serverClosed && !q.serverFIN && !q.serverClosed)
                #expect(h.answer("/defer/1") && h.answer("/defer/solo"))
                return true
            },
            { p.serverClosed && q.serverClosed && h.engine.connectionCount == 0 },
        ]
        #expect(h.run(), "stuck at step \(4 - h.steps.count)")
        #expect(answeredPaths(p) == ["/defer/1", "/now/2"])
        #expect(answeredPaths(q) == ["/defer/solo"])
        #expect(!p.resetByServer && !q.resetByServer)
    }

    @Test func aResetPeerMakesItsTicketStaleAndLeaksNothing() {
        let h = DeferredHarness()
        let p = h.sim.connect()
        h.sim.write(p, getRequest("/defer/1") + getRequest("/now/2"))
        var second: SimPeer? = nil
        h.steps = [
            { h.dispatched.count == 2 },
            { h.sim.reset(p); return true },
            { h.engine.connectionCount == 0 },
            {
                #expect(h.engine.deferredAnswers == 0)
                #expect(h.counters.get(.responseQueueBytes) == 0)
                #expect(h.sim.openConnectionDescriptors == 0)
                #expect(!h.answer("/defer/1"), "the connection is gone")
                // A new connection takes the same table entry: the old ticket must not reach it.
                second = h.sim.connect()
                h.sim.write(second!, getRequest("/defer/A"))
                return true
            },
            { h.tickets["/defer/A"] != nil },
            {
                #expect(h.tickets["/defer/A"]!.connection == h.tickets["/defer/1"]!.connection)
                #expect(!h.answer("/defer/1"), "a ticket of the entry's previous connection")
                #expect(h.engine.deferredAnswers == 1)
                #expect(h.answer("/defer/A"))
                return true
            },
            { answeredPaths(second!).count == 1 },
        ]
        #expect(h.run(), "stuck at step \(7 - h.steps.count)")
        #expect(answeredPaths(second!) == ["/defer/A"])
        #expect(h.sim.violations.isEmpty, "\(h.sim.violations)")
    }

    @Test func pastTheCapDeferAnswerRefusesAndTheCallerAnswersAtOnce() {
        let h = DeferredHarness { $0.maxDeferredAnswers = 2 }
        let a = h.sim.connect(), b = h.sim.connect(), c = h.sim.connect()
        h.sim.write(a, getRequest("/defer/a"))
        h.sim.write(b, getRequest("/defer/b"))
        h.steps = [
            { h.engine.deferredAnswers == 2 },
            { h.sim.write(c, getRequest("/defer/c")); return true },
            { responses(c.received).count == 1 },
            {
                #expect(h.refused == ["/defer/c"])
                #expect(responses(c.received).first?.status == 503)
                #expect(responses(c.received).first?.body.contains("over_capacity") == true)
                #expect(a.received.isEmpty && b.received.isEmpty)
                #expect(h.answer("/defer/a"))
                h.sim.write(c, getRequest("/defer/c2"))   // room again
                return true
            },
            { h.tickets["/defer/c2"] != nil },
            { h.answer("/defer/b") && h.answer("/defer/c2") },
            { answeredPaths(b).count == 1 && answeredPaths(c).count == 2 },
        ]
        #expect(h.run(), "stuck at step \(7 - h.steps.count)")
        #expect(answeredPaths(a) == ["/defer/a"])
        #expect(answeredPaths(c) == ["503", "/defer/c2"])
        #expect(h.refused == ["/defer/c"])
        #expect(h.engine.deferredAnswers == 0)
    }

    @Test func noHeaderOrKeepAliveTimeoutClosesAConnectionWhileItsAnswerIsDeferred() {
        let h = DeferredHarness()   // header timeout 1 s, keep-alive idle 3 s
        let p = h.sim.connect()
        // The deferred request, then part of the next request's head.
        h.sim.write(p, getRequest("/defer/1") + Array("GET /now/2 HTTP/1.1\r\nHo".utf8))
        var start: UInt64 = 0
        h.steps = [
            { h.tickets["/defer/1"] != nil },
            { start = h.sim.now(); return true },
            { h.sim.now() > start + 10_000_000_000 },   // ten header timeouts and more
            {
                #expect(h.engine.connectionCount == 1)
                #expect(p.received.isEmpty, "no 408 while the answer waits")
                #expect(!p.serverFIN)
                #expect(h.answer("/defer/1"))
                return true
            },
            { p.serverFIN },
        ]
        #expect(h.run(), "stuck at step \(5 - h.steps.count)")
        // Once the answer is out, the unfinished head is long past its deadline: 408, then the close.
        #expect(answeredPaths(p) == ["/defer/1", "408"])
    }

    @Test func inputPausesBehindDeferredAnswersAtThePipeliningCap() {
        let h = DeferredHarness { $0.maxPipelinedRequests = 2 }
        let p = h.sim.connect()
        h.sim.write(p, (1...5).flatMap { getRequest("/defer/\($0)") })
        h.steps = [
            { h.dispatched.count == 2 },
            { h.sim.timersFired > 5 },
            {
                #expect(h.dispatched == ["/defer/1", "/defer/2"], "read past the cap")
                #expect(h.counters.get(.pipelinePaused) >= 1)
                #expect(h.answer("/defer/2") && h.answer("/defer/1"))
                return true
            },
            { h.dispatched.count == 4 },
            { h.answer("/defer/3") && h.answer("/defer/4") },
            { h.dispatched.count == 5 },
            { h.answer("/defer/5", keepAlive: false) },
            { answeredPaths(p).count == 5 },
        ]
        #expect(h.run(), "stuck at step \(8 - h.steps.count)")
        #expect(answeredPaths(p) == (1...5).map { "/defer/\($0)" })
    }

    @Test func anErrorAnswerSaysCloseOnlyWhenItsOwnRequestAskedForIt() {
        let h = DeferredHarness()
        let p = h.sim.connect(), q = h.sim.connect()
        // p: the close belongs to the request after the deferred one; q: to the deferred one.
        h.sim.write(p, getRequest("/defer/p") + getRequest("/now/p2", close: true))
        h.sim.write(q, getRequest("/defer/q", close: true))
        h.steps = [
            { h.dispatched.count == 3 },
            {
                h.engine.answerError(h.tickets["/defer/p"]!, status: 503, error: "upstream_unavailable", detail: "p",
                                     extraHeaders: [("Retry-After", "1")])
                    && h.engine.answerError(h.tickets["/defer/q"]!, status: 503, error: "upstream_unavailable", detail: "q")
            },
            { p.serverFIN && q.serverFIN },
        ]
        #expect(h.run(), "stuck at step \(3 - h.steps.count)")
        let pText = String(decoding: p.received, as: UTF8.self)
        let qText = String(decoding: q.received, as: UTF8.self)
        #expect(responses(p.received).map(\.status) == [503, 200])
        #expect(pText.hasPrefix("HTTP/1.1 503"))
        let firstHead = pText.prefix(while: { $0 != "{" })
        #expect(firstHead.contains("Connection: keep-alive") && firstHead.contains("Retry-After: 1"), "\(firstHead)")
        #expect(responses(q.received).map(\.status) == [503])
        #expect(qText.contains("Connection: close"), "\(qText)")
    }

    @Test func aStopWaitsForDeferredAnswersThenClosesTheConnection() {
        let h = DeferredHarness()
        let waiting = h.sim.connect(), idle = h.sim.connect()
        h.sim.write(waiting, getRequest("/defer/1"))
        h.sim.write(idle, getRequest("/now/x"))
        var answeredAt: UInt64 = 0
        var finAt: UInt64 = 0
        h.steps = [
            { h.tickets["/defer/1"] != nil && answeredPaths(idle).count == 1 },
            { h.engine.stopLikeARole(); return true },
            { idle.serverClosed },
            { h.sim.timersFired > 5 },
            {
                #expect(!waiting.serverClosed && h.engine.connectionCount == 1)
                #expect(h.answer("/defer/1"))
                answeredAt = h.sim.now()
                return true
            },
            {
                guard waiting.serverFIN else { return false }
                finAt = h.sim.now()
                return true
            },
        ]
        // The loop ends by itself once the stop closed every connection.
        #expect(h.run(), "stuck at step \(6 - h.steps.count)")
        h.maxTurns = h.sim.turn + 500
        h.engine.run { h.sim.turn >= h.maxTurns }
        #expect(h.sim.turn < h.maxTurns, "the loop did not end: \(h.engine.connectionCount) connections left")
        #expect(waiting.serverClosed)
        // Closed once answered (a lingering close: the server's FIN at once, so the client
        // reads the answer and no reset can drop it), not after the keep-alive idle time (3 s).
        #expect(finAt &- answeredAt < 1_000_000_000)
        #expect(answeredPaths(waiting) == ["/defer/1"])
        #expect(h.engine.connectionCount == 0)
    }
}

extension HTTPEngine {
    /// What `RoleSupport`'s `stopServing` does for a role without streams.
    func stopLikeARole() {
        stopAccepting()
        closeIdleHTTP()
    }
}
