import CRinggateSys
import Foundation   // JSONSerialization, to read messages the way a client does
import GatewayCore
import IOSimulation
import Logging
import RingLog
import Testing
import WireProtocol
@testable import Worker

/// Cluster mode's gaps (seqs the host's log will never hold) as subscribers see them, through
/// the real worker on the simulated kernel: a `reset` with reason `gap` and the exact number of
/// missing seqs, in order between the events before and after, for live subscribers, subscribers
/// catching up from `Last-Event-ID`, and WebSocket ones.
@Suite struct GapResetTests {
    /// What a client read, as a client parses it: `e<seq>` for an event, `gap:<dropped>` for a reset.
    static func sseItems(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let body = text.range(of: "\r\n\r\n") else { return [] }
        var items: [String] = []
        for block in text[body.upperBound...].components(separatedBy: "\n\n") {
            var id: String? = nil, event = "message", data = ""
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = String(line.dropFirst(4)) }
                if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            if event == "reset" {
                items.append(resetItem(data))
            } else if let id, let seq = EventID(parsing: id)?.seq {
                items.append("e\(seq)")
            }
        }
        return items
    }

    static func resetItem(_ json: String) -> String {
        let object = try! JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        let dropped = (object["dropped"] as? NSNumber).map { "\($0.intValue)" } ?? "null"
        return "\(object["reason"] as! String):\(dropped)"
    }

    /// Server-to-client WebSocket frames (unmasked, text): the JSON messages.
    static func webSocketItems(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.utf8.firstRange(of: Array("\r\n\r\n".utf8)) else { return [] }
        var i = text.utf8.distance(from: text.utf8.startIndex, to: end.upperBound)
        var items: [String] = []
        while i + 2 <= bytes.count {
            let opcode = bytes[i] & 0x0f
            var length = Int(bytes[i + 1] & 0x7f)
            var header = 2
            if length == 126 {
                guard i + 4 <= bytes.count else { break }
                length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
                header = 4
            } else if length == 127 {
                break   // not sent for these small messages
            }
            guard i + header + length <= bytes.count else { break }
            let payload = Array(bytes[(i + header)..<(i + header + length)])
            i += header + length
            guard opcode == 1 else { continue }
            let object = try! JSONSerialization.jsonObject(with: Data(payload)) as! [String: Any]
            if object["event"] as? String == "reset" {
                items.append(resetItem(String(decoding: payload, as: UTF8.self)))
            } else if let id = object["id"] as? String, let seq = EventID(parsing: id)?.seq {
                items.append("e\(seq)")
            }
        }
        return items
    }

    final class Script {
        let sim = SimulatedIO(seed: 0x6a9, faults: SimulatedIO.Faults())
        let log = SimLog(capacityBytes: 64 << 10)
        let worker: Worker
        let wakeFD: Int32
        var done = false

        init() throws {
            var c = GatewayConfig()
            c.workers = 1
            c.heartbeatNanoseconds = 60_000_000_000
            c.maxEventBytes = 4096
            let listenFD = sim.makeListener()
            wakeFD = sim.makeWakeDescriptor()
            worker = try Worker(config: c, index: 0, region: log.region, listenFD: listenFD, wakeFD: wakeFD,
                                admission: nil, io: sim,
                                logger: Logger(label: "sim", factory: { _ in SwiftLogNoOpLogHandler() }))
        }

        /// An entry of the cluster's stream, appended under its seq (what the tail does).
        func apply(_ slot: String, seq: UInt64) {
            let s = Array(slot.utf8), t = Array("m".utf8), d = Array("\"\(seq)\"".utf8)
            s.withUnsafeBytes { sp in
                t.withUnsafeBytes { tp in
                    d.withUnsafeBytes { dp in
                        _ = try! log.writer.append(slot: sp, type: tp, data: dp, timeMilliseconds: 1, seq: seq)
                    }
                }
            }
            wake()
        }

        /// Entries this host cannot store: a gap without an event.
        func skip(through seq: UInt64) {
            try! log.writer.recordGap(through: seq)
            log.writer.commit()
            wake()
        }

        func wake() {
            rg_fence_seq_cst()
            if worker.counters.get(.wakeWanted) != 0 { sim.signal(wake: wakeFD) }
        }

        func subscribe(_ path: String, lastEventID: UInt64? = nil) -> SimPeer {
            let peer = sim.connect()
            var head = "GET \(path) HTTP/1.1\r\nHost: sim\r\n"
            if let lastEventID { head += "Last-Event-ID: \(EventID(epoch: log.region.epoch, seq: lastEventID))\r\n" }
            sim.write(peer, Array((head + "\r\n").utf8))
            return peer
        }

        func webSocket(_ slot: String) -> SimPeer {
            let peer = sim.connect()
            sim.write(peer, Array(("GET /v1/slots/\(slot)/ws HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\n"
                + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8))
            return peer
        }

        /// Runs the worker, calling `at[turn]` at those turns, until `turns`.
        func run(turns: Int, at: [Int: () -> Void]) {
            sim.onTurn = { [unowned self] sim in
                at[sim.turn]?()
                if sim.turn >= turns { done = true }
            }
            worker.engine.run { [unowned self] in done }
        }
    }

    @Test func liveResumingAndWebSocketSubscribersGetAGapResetBetweenTheEventsAroundIt() throws {
        let script = try Script()
        script.apply("a", seq: 1)
        script.apply("b", seq: 2)
        script.apply("a", seq: 3)
        var live: SimPeer!, resumed: SimPeer!, ws: SimPeer!, late: SimPeer!, other: SimPeer!
        script.run(turns: 400, at: [
            1: {
                live = script.subscribe("/v1/slots/a/stream")
                resumed = script.subscribe("/v1/slots/a/stream", lastEventID: 1)
                ws = script.webSocket("a")
                other = script.subscribe("/v1/slots/b/stream")
            },
            50: { script.apply("a", seq: 7) },                 // 4...6 trimmed while away
            100: {
                script.apply("b", seq: 8)
                script.skip(through: 10)                        // 9, 10: entries it cannot store
                script.apply("a", seq: 13)                      // 11, 12 missing too
            },
            150: { late = script.subscribe("/v1/slots/a/stream", lastEventID: 3) },
            200: { script.apply("a", seq: 14) },                // no gap: no reset
        ])
        #expect(Self.sseItems(live.received) == ["gap:3", "e7", "gap:4", "e13", "e14"])
        #expect(Self.sseItems(resumed.received) == ["e3", "gap:3", "e7", "gap:4", "e13", "e14"])
        #expect(Self.webSocketItems(ws.received) == ["gap:3", "e7", "gap:4", "e13", "e14"])
        #expect(Self.sseItems(late.received) == ["gap:3", "e7", "gap:4", "e13", "e14"])
        // Slot b's subscriber crossed the same gaps (it cannot know their slots).
        #expect(Self.sseItems(other.received) == ["gap:3", "e8", "gap:4"])
        #expect(script.worker.counters.get(.resetsGap) == 10)
    }

    @Test func aHostWithoutGapsSendsNoGapReset() throws {
        let script = try Script()
        for seq in 1...3 { script.apply(seq == 2 ? "b" : "a", seq: UInt64(seq)) }
        var live: SimPeer!, resumed: SimPeer!
        script.run(turns: 200, at: [
            1: {
                live = script.subscribe("/v1/slots/a/stream")
                resumed = script.subscribe("/v1/slots/a/stream", lastEventID: 1)
            },
            50: { script.apply("b", seq: 4); script.apply("a", seq: 5) },
        ])
        #expect(Self.sseItems(live.received) == ["e5"])
        #expect(Self.sseItems(resumed.received) == ["e3", "e5"])
        #expect(script.worker.counters.get(.resetsGap) == 0)
    }

    /// A fresh host's log starts at the stream's oldest retained seq: the gap 1...99. A client
    /// with an id of this cluster from before it is told how many seqs it missed; a client
    /// with an id of another epoch gets the `epoch` reset only (it starts over: the gap before
    /// the oldest event is no news to it); a new client nothing.
    @Test func aFreshHostsLeadingGap() throws {
        let script = try Script()
        script.apply("a", seq: 100)
        script.apply("b", seq: 101)
        script.apply("a", seq: 102)
        var sameEpoch: SimPeer!, otherEpoch: SimPeer!, fresh: SimPeer!
        script.run(turns: 200, at: [
            1: {
                sameEpoch = script.subscribe("/v1/slots/a/stream", lastEventID: 5)
                let peer = script.sim.connect()
                let foreign = EventID(epoch: script.log.region.epoch ^ 1, seq: 5)
                script.sim.write(peer, Array("GET /v1/slots/a/stream HTTP/1.1\r\nHost: sim\r\nLast-Event-ID: \(foreign)\r\n\r\n".utf8))
                otherEpoch = peer
                fresh = script.subscribe("/v1/slots/a/stream")
            },
            50: { script.apply("a", seq: 103) },
        ])
        #expect(Self.sseItems(sameEpoch.received) == ["gap:94", "e100", "e102", "e103"])   // 6...99
        #expect(Self.sseItems(otherEpoch.received) == ["epoch:null", "e100", "e102", "e103"])
        #expect(Self.sseItems(fresh.received) == ["e103"])
    }
}
