import CRinggateSys
import Glibc
import GatewayCore
import IO
import IOSimulation
import Logging
import RingLog
import WireProtocol
@testable import HTTPServer
@testable import Ingest

/// One seeded schedule against the real ingest: publishers sending single and NDJSON-batch
/// publishes split at random points, pipelined, slow heads and bodies, resets mid-body.
/// Every turn: each 201 names events that are in the log with the bytes that request sent, in
/// order, each acknowledged once; no event is in the log twice or from an incomplete request.
final class IngestSchedule {
    struct Request {
        var bytes: [UInt8]
        var events: [(slot: String, token: String)]
    }

    final class Publisher {
        let peer: SimPeer
        var stream: [UInt8] = []
        var requests: [Request] = []
        var sent = 0
        /// Bytes of `stream` this publisher sends before it stalls (slow head/body) or resets.
        var stopAt: Int
        var resetsAtStop: Bool
        /// Half-closes (FIN) as soon as its whole stream is out, before reading the answers.
        var finAfterSend = false
        var checkedAnswers = false
        /// An answer said `Connection: close` (503 at the connection limit): the rest may go unanswered.
        var closeAnswered = false
        var answered = 0
        var offset = 0
        var lastAckSeq: UInt64 = 0
        var lastSendAt: UInt64 = 0
        var lastAnswerAt: UInt64 = 0
        /// The first turn that saw everything written received (bytes written in a turn are
        /// received in its wait, which a clock jump may move far ahead).
        var deliveredAt: UInt64 = 0
        var finSeenAt: UInt64 = 0
        var finished = false
        var pastDeadlineSeenAt: UInt64 = 0
        var timersAtPastDeadline = 0
        var refusalsAtPastDeadline = 0
        init(peer: SimPeer, stopAt: Int, resetsAtStop: Bool) {
            self.peer = peer
            self.stopAt = stopAt
            self.resetsAtStop = resetsAtStop
        }
    }

    let seed: UInt64
    let sim: SimulatedIO
    let log: SimLog
    let config: GatewayConfig
    let ingest: Ingest
    let memfd: Int32
    var random: SimRandom
    var publishers: [Publisher] = []
    var outcome = WorkerSchedule.Outcome()
    var done = false
    var windingDown = false
    var windDownStart: UInt64 = 0
    let runTurns: Int
    let maxPublishers: Int
    let tick: UInt64 = 100_000_000
    /// Tokens of requests whose bytes were all sent: only those may be in the log.
    var completeTokens: Set<String> = []
    var tokensInLog: [String: UInt64] = [:]
    var ackedSeqs: Set<UInt64> = []
    var scanPosition: UInt64 = 0
    let scratch: UnsafeMutableRawBufferPointer
    var nextToken = 0

    init(seed: UInt64, faults given: SimulatedIO.Faults? = nil, recordsTranscript: Bool = false) throws {
        self.seed = seed
        var r = SimRandom(seed: seed ^ 0x1B6E_57)
        var io = IOBackendConfiguration()
        io.receiveBufferCount = r.within(2...8)
        io.receiveBufferBytes = 256
        io.completionBatch = 64
        // A third of the schedules run the harsh mix.
        let faults = given ?? (r.below(3) == 0 ? .harsh : .mixed)
        sim = SimulatedIO(seed: seed, faults: faults, configuration: io)
        sim.recordsTranscript = recordsTranscript
        log = SimLog(capacityBytes: 1 << 20)
        var c = GatewayConfig()
        c.headerTimeoutNanoseconds = 1_000_000_000
        c.bodyTimeoutNanoseconds = 2_000_000_000
        c.ingestMaxConnections = r.chance(300) ? r.within(1...4) : 16
        c.maxPendingBodyBytes = [1 << 10, 4 << 10, 1 << 20][r.below(3)]
        c.maxPipelinedRequests = r.within(1...8)
        config = c
        memfd = rg_memfd_create("sim-log")
        scratch = .allocate(byteCount: log.region.geometry.maxRecordBytes, alignment: 8)
        ingest = try Ingest(config: c, region: log.region, logFD: memfd, listenFD: sim.makeListener(), wakeFDs: [],
                            io: sim, logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        runTurns = r.within(100...350)
        maxPublishers = r.within(2...12)
        random = r
    }

    deinit {
        scratch.deallocate()
        if memfd >= 0 { Glibc.close(memfd) }
    }

    func fail(_ message: String) { outcome.fail(message, seed: seed, sim: sim) }

    func run() -> WorkerSchedule.Outcome {
        sim.onTurn = { [unowned self] _ in step() }
        ingest.engine.run { [unowned self] in done }
        outcome.finish(seed: seed, sim: sim, peers: publishers.map(\.peer))
        return outcome
    }

    func step() {
        let now = sim.now()
        if sim.turn > runTurns + 4000 || (windingDown && now > windDownStart + 120_000_000_000) {
            fail("did not wind down: \(ingest.engine.connectionCount) connections left")
            done = true
            return
        }
        if !windingDown && sim.turn >= runTurns {
            windingDown = true
            windDownStart = now
            for p in publishers where !p.finished {
                p.finished = true
                sim.finish(p.peer)
            }
        }
        if !windingDown && publishers.count < maxPublishers && random.chance(50) { connect() }
        scanLog()
        for p in publishers { drive(p, now: now) }
        if windingDown && publishers.allSatisfy({ $0.peer.serverClosed }) && ingest.engine.connectionCount == 0 {
            scanLog()
            checkFinalState()
            done = true
        }
    }

    func token() -> String {
        nextToken += 1
        return "t\(nextToken)x"
    }

    func connect() {
        let peer = sim.connect(sendBufferBytes: random.within(128...4096),
                               readBytesPerTurn: random.chance(200) ? random.within(8...64) : 1 << 20)
        var requests: [Request] = []
        let count = random.within(1...6)
        for i in 0..<count {
            let slot = ["a", "b", "c"][random.below(3)]
            let expect = (random.chance(150) ? "Expect: 100-continue\r\n" : "")
                + (i == count - 1 && random.chance(300) ? "Connection: close\r\n" : "")
            if random.chance(200) {
                // Chunked: the event is the chunks' concatenation.
                let t = token() + String(repeating: "k", count: random.within(0...300))
                var body = ""
                var rest = Substring(t)
                while !rest.isEmpty {
                    let n = random.within(1...rest.count)
                    body += String(n, radix: 16) + "\r\n" + rest.prefix(n) + "\r\n"
                    rest = rest.dropFirst(n)
                }
                body += "0\r\n\r\n"
                let head = "POST /v1/slots/\(slot)/events HTTP/1.1\r\nHost: sim\r\n\(expect)Transfer-Encoding: chunked\r\n\r\n"
                requests.append(Request(bytes: Array((head + body).utf8), events: [(slot, t)]))
            } else if random.chance(400) {
                let t = token() + String(repeating: "p", count: random.within(0...300))
                let head = "POST /v1/slots/\(slot)/events HTTP/1.1\r\nHost: sim\r\n\(expect)Content-Length: \(t.utf8.count)\r\n\r\n"
                requests.append(Request(bytes: Array((head + t).utf8), events: [(slot, t)]))
            } else {
                var body = ""
                var events: [(slot: String, token: String)] = []
                for _ in 0..<random.within(1...5) {
                    let s = ["a", "b", "c"][random.below(3)]
                    let t = token() + String(repeating: "q", count: random.within(0...120))
                    body += #"{"slot":"\#(s)","data":"\#(t)"}"# + "\n"
                    events.append((s, t))
                }
                let head = "POST /v1/events HTTP/1.1\r\nHost: sim\r\n\(expect)Content-Type: application/x-ndjson\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                requests.append(Request(bytes: Array((head + body).utf8), events: events))
            }
        }
        let stream = requests.flatMap(\.bytes)
        // A fifth stall or reset part-way through their stream (a slow head or body, a reset mid-body).
        let stops = random.chance(200)
        let p = Publisher(peer: peer, stopAt: stops ? random.within(1...(stream.count - 1)) : stream.count,
                          resetsAtStop: stops && random.chance(500))
        p.stream = stream
        p.requests = requests
        p.finAfterSend = !stops && random.chance(250)
        publishers.append(p)
    }

    let tracePeer = SimSeeds.environment("RINGGATE_SIM_TRACE").flatMap { Int($0) }

    func drive(_ p: Publisher, now: UInt64) {
        if tracePeer == p.peer.id && !p.peer.serverClosed {
            print("trace t=\(sim.turn) clock=\(now) fd=\(p.peer.serverFD) sent=\(p.sent)/\(p.stopAt)/\(p.stream.count) answered=\(p.answered) toServer=\(p.peer.pendingToServer) unread=\(p.peer.unreadBytes) fin=\(p.peer.finSent) sfin=\(p.peer.serverFIN) \(describeServerSide(p.peer.serverFD)) ops=\(sim.describeOperations(fd: p.peer.serverFD))")
        }
        if p.sent < p.stopAt && !p.finished {
            // Pipelined: the whole stream goes out in pieces split at random points.
            let n = random.within(1...(p.stopAt - p.sent))
            sim.write(p.peer, Array(p.stream[p.sent..<(p.sent + n)]))
            p.sent += n
            p.lastSendAt = now
            var end = 0
            for r in p.requests {
                end += r.bytes.count
                if end <= p.sent { for e in r.events { completeTokens.insert(e.token) } }
            }
            if p.sent == p.stopAt && p.resetsAtStop {
                p.finished = true
                sim.reset(p.peer)
            } else if p.sent == p.stream.count && p.finAfterSend {
                p.finished = true
                sim.finish(p.peer)
            }
        }
        if p.peer.pendingToServer > 0 { p.deliveredAt = 0 } else if p.deliveredAt == 0 { p.deliveredAt = now }
        readAnswers(p)
        checkAnswered(p)
        checkDeadline(p, now: now)
        if !p.finished && p.answered == p.requests.count && !windingDown {
            p.finished = true
            sim.finish(p.peer)
        }
    }

    func readAnswers(_ p: Publisher) {
        let bytes = p.peer.received
        while p.offset < bytes.count {
            let rest = Array(bytes[p.offset...])
            guard let (status, headLength) = parseHead(rest) else { return }
            if status == 100 { p.offset += headLength; continue }
            guard let length = contentLength(rest[0..<headLength]), rest.count >= headLength + length else { return }
            p.offset += headLength + length
            guard p.answered < p.requests.count else {
                fail("peer \(p.peer.id): an answer (\(status)) to a request it did not send")
                return
            }
            if String(decoding: rest[0..<headLength], as: UTF8.self).lowercased().contains("connection: close") {
                p.closeAnswered = true
            }
            let request = p.requests[p.answered]
            p.answered += 1
            p.lastAnswerAt = sim.now()
            guard status == 201 else { continue }
            let body = String(decoding: rest[headLength..<(headLength + length)], as: UTF8.self)
            let seqs = ackIDs(body)
            if seqs.count != request.events.count {
                fail("peer \(p.peer.id): 201 names \(seqs.count) events for a request of \(request.events.count): \(body)")
                continue
            }
            for (seq, event) in zip(seqs, request.events) {
                if !ackedSeqs.insert(seq).inserted { fail("event \(seq) acknowledged twice") }
                if seq <= p.lastAckSeq { fail("peer \(p.peer.id): acknowledgement \(seq) not after \(p.lastAckSeq)") }
                p.lastAckSeq = seq
                guard let found = record(seq) else {
                    fail("peer \(p.peer.id): acknowledged event \(seq) is not in the log")
                    continue
                }
                if found.slot != event.slot || found.data != event.token {
                    fail("peer \(p.peer.id): event \(seq) in the log is \(found.slot)/\(found.data.prefix(20)), the request sent \(event.slot)/\(event.token.prefix(20))")
                }
            }
        }
    }

    /// A publisher that sent whole requests (and maybe its FIN after them), kept reading and
    /// never reset gets an answer to every one of them before the server closes.
    func checkAnswered(_ p: Publisher) {
        guard !p.checkedAnswers, p.peer.sawEnd, !p.peer.resetByServer, p.sent == p.stream.count, !p.closeAnswered,
              !p.resetsAtStop, !windingDown || p.finAfterSend else { return }
        p.checkedAnswers = true
        if p.answered < p.requests.count {
            fail("publisher \(p.peer.id)\(p.finAfterSend ? " (FIN after its requests)" : ""): the server closed after answering \(p.answered) of its \(p.requests.count) requests; it read \(String(decoding: p.peer.received.prefix(400), as: UTF8.self).debugDescription)")
        }
    }

    func ackIDs(_ body: String) -> [UInt64] {
        // {"id":"E-S","slot":…} or {"ids":["E-S",…]}
        var seqs: [UInt64] = []
        var rest = Substring(body)
        if let r = rest.range(of: #""ids":["#) { rest = rest[r.upperBound...] }
        else if let r = rest.range(of: #""id":"#) { rest = rest[r.upperBound...] }
        while let q = rest.firstIndex(of: "\"") {
            let after = rest.index(after: q)
            guard let end = rest[after...].firstIndex(of: "\"") else { break }
            guard let id = EventID(parsing: String(rest[after..<end])) else { break }
            seqs.append(id.seq)
            rest = rest[rest.index(after: end)...]
            if rest.first != "," { break }
        }
        return seqs
    }

    func record(_ seq: UInt64) -> (slot: String, data: String)? {
        let reader = LogReader(region: log.region)
        guard let position = reader.position(ofSeq: seq),
              case .record(let view) = reader.copyRecord(at: position, into: scratch), view.seq == seq else { return nil }
        let raw = UnsafeRawBufferPointer(scratch)
        return (String(decoding: raw[view.name], as: UTF8.self), String(decoding: raw[view.data], as: UTF8.self))
    }

    /// New records: none twice, none from a request whose bytes were not all sent.
    func scanLog() {
        let reader = LogReader(region: log.region)
        while true {
            switch reader.copyRecord(at: scanPosition, into: scratch) {
            case .record(let view):
                scanPosition = view.nextPosition
                let data = String(decoding: UnsafeRawBufferPointer(scratch)[view.data], as: UTF8.self)
                if let earlier = tokensInLog[data] { fail("\(data.prefix(20)) is in the log twice (\(earlier), \(view.seq))") }
                tokensInLog[data] = view.seq
                if !completeTokens.contains(data) { fail("\(data.prefix(20)) (\(view.seq)) is in the log but its request was not all sent") }
                outcome.events += 1
            case .padding(let next):
                scanPosition = next
            case .notYetWritten:
                return
            case .lapped, .damaged:
                fail("the log scan at \(scanPosition) was lapped or found damage")
                return
            }
        }
    }

    /// A publisher that stalled part-way is answered and closed within the header or body
    /// timeout plus the linger time (and a few ticks), from its last byte.
    func checkDeadline(_ p: Publisher, now: UInt64) {
        guard p.sent == p.stopAt, p.stopAt < p.stream.count, !p.resetsAtStop, !p.peer.serverClosed,
              p.peer.serverFD >= 0, p.peer.readBytesPerTurn > 0 else { return }
        // Stalled between two requests, it is an idle keep-alive connection; inside one, the
        // header or body timer runs once its earlier answers are out (pipelined input waits).
        var boundary = 0
        var atBoundary = false
        for r in p.requests {
            boundary += r.bytes.count
            if boundary == p.stopAt { atBoundary = true }
        }
        if p.peer.serverFIN && p.finSeenAt == 0 { p.finSeenAt = now }
        let timeout = atBoundary ? ingest.engine.configuration.keepAliveIdleNanoseconds
            : max(config.headerTimeoutNanoseconds, config.bodyTimeoutNanoseconds)
        // Chained: the 408 within the timeout, then the linger from when the server shut its side.
        let deadline = p.finSeenAt > 0 ? p.finSeenAt + ingest.engine.configuration.lingerNanoseconds + 2 * tick
            : max(p.lastSendAt, p.deliveredAt, p.lastAnswerAt) + timeout + 2 * tick
        guard now >= deadline else {
            p.pastDeadlineSeenAt = 0
            return
        }
        if p.pastDeadlineSeenAt == 0 {
            p.pastDeadlineSeenAt = now
            p.timersAtPastDeadline = sim.timersFired
            p.refusalsAtPastDeadline = sim.submissionsRefused
        }
        // Late: two ticks of time and three timer completions (the loop's chances to act; a
        // clock jump may pass the two ticks within one turn) after the deadline was seen, one more
        // for each submission refused meanwhile (the loop retries it on a later turn).
        if now >= p.pastDeadlineSeenAt + 2 * tick + 10_000_000 && sim.timersFired >= p.timersAtPastDeadline + 3 + (sim.submissionsRefused - p.refusalsAtPastDeadline) {
            fail("publisher \(p.peer.id) stalled at byte \(p.stopAt) of \(p.stream.count) still open \((now - deadline) / 1_000_000) ms past its deadline; answered \(p.answered)/\(p.requests.count), last send \(p.lastSendAt), last answer \(p.lastAnswerAt), FIN seen \(p.finSeenAt), unread \(p.peer.unreadBytes), toServer \(p.peer.pendingToServer), \(describeServerSide(p.peer.serverFD)), pending in the backend \(sim.describeOperations(fd: p.peer.serverFD))")
            p.pastDeadlineSeenAt = UInt64.max / 2
        }
    }

    func describeServerSide(_ fd: Int32) -> String {
        let e = ingest.engine
        for i in 0..<e.tableCapacity where i < e.initializedCount || i >= e.configuration.maxConnections {
            let c = e.table[i]
            if c.fd == fd && c.phase != .free {
                return "server conn \(i): phase \(c.phase), recvArmed \(c.recvArmed), needsRearm \(c.recvNeedsRearm), paused \(c.paused), cancelPending \(c.recvCancelPending), sendInFlight \(c.sendInFlight), closeAfterFlush \(c.closeAfterFlush), headStart \(c.headStartNanoseconds), bodyProgress \(c.bodyProgressNanoseconds), unsent \(c.unsentAnswers), stash \(c.stash.count), out \(c.out?.count ?? -1)/\(c.outOffset), queued \(c.queued.count)"
            }
        }
        return "no server connection"
    }

    func checkFinalState() {
        let e = ingest.engine
        if e.sendPool.inUse != 0 { fail("\(e.sendPool.inUse) send buffers still taken") }
        if e.pendingBodyBytes != 0 { fail("pending body bytes \(e.pendingBodyBytes)") }
        for gauge: LogCounter in [.connectionsHTTP, .connectionsAdmin, .sendBuffersInUse, .pendingSendBytes,
                                  .responseQueueBytes, .pendingBodyBytes] {
            let v = ingest.counters.get(gauge)
            if v != 0 { fail("gauge \(gauge) is \(Int64(bitPattern: v)) with no connection") }
        }
        if sim.receiveBuffersInUse != 0 { fail("\(sim.receiveBuffersInUse) receive buffers not returned") }
        if sim.openConnectionDescriptors != 0 { fail("\(sim.openConnectionDescriptors) connection descriptors not closed") }
        outcome.delivered = ackedSeqs.count
    }
}
