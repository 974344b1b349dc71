import Glibc
import IOSimulation
import RingLog
import WireProtocol

/// The seeds a suite runs: `RINGGATE_SIM_SEED=0x…` replays one, `RINGGATE_SIM_SEEDS=N` runs N
/// (from a base that `RINGGATE_SIM_BASE` may move), otherwise `defaultCount`.
enum SimSeeds {
    static func list(defaultCount: Int, salt: UInt64) -> [UInt64] {
        if let one = environment("RINGGATE_SIM_SEED"), let seed = parse(one) { return [seed] }
        let count = environment("RINGGATE_SIM_SEEDS").flatMap { Int($0) } ?? defaultCount
        let base = environment("RINGGATE_SIM_BASE").flatMap(parse) ?? 0x5eed_0000
        return (0..<UInt64(max(0, count))).map { (base &+ $0) ^ (salt << 40) }
    }

    static func environment(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }

    static func parse(_ s: String) -> UInt64? {
        s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : UInt64(s)
    }

    static func hex(_ seed: UInt64) -> String { "0x" + String(seed, radix: 16) }
}

/// A zeroed, formatted log on the heap with a writer on it (the ingest's role in worker schedules).
final class SimLog {
    let base: UnsafeMutableRawPointer
    let region: LogRegion
    var writer: LogWriter
    /// Seqs appended per slot, in order: what a gap-free stream of that slot must show.
    var seqsBySlot: [String: [UInt64]] = [:]

    init(capacityBytes: Int, maxSlots: Int = 8) {
        let geometry = try! LogGeometry(capacityBytes: capacityBytes, maxSlots: maxSlots)
        base = .allocate(byteCount: geometry.totalBytes, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
        region = try! LogRegion.format(base: base, length: geometry.totalBytes, geometry: geometry, epoch: 0x5f3a_9c01)
        writer = LogWriter(region: region)
    }

    deinit { base.deallocate() }

    @discardableResult
    func append(slot: String, data: [UInt8]) -> UInt64 {
        let s = Array(slot.utf8), t = Array("m".utf8)
        let seq = s.withUnsafeBytes { sp in
            t.withUnsafeBytes { tp in
                data.withUnsafeBytes { dp in try! writer.append(slot: sp, type: tp, data: dp, timeMilliseconds: 1) }
            }
        }
        seqsBySlot[slot, default: []].append(seq)
        return seq
    }

    /// The slot's next seq after `seq`, or nil if none was appended yet.
    func next(in slot: String, after seq: UInt64) -> UInt64? {
        let list = seqsBySlot[slot] ?? []
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid] <= seq { lo = mid + 1 } else { hi = mid }
        }
        return lo < list.count ? list[lo] : nil
    }
}

/// One message a subscriber received, as a client parses it.
enum StreamItem: Equatable {
    case event(seq: UInt64)
    case reset
    case close
    case ping([UInt8])
}

/// An HTTP response head at the start of `bytes`: (status, head length) once complete.
func parseHead(_ bytes: [UInt8]) -> (status: Int, length: Int)? {
    guard bytes.count >= 12 else { return nil }
    var i = 0
    while i + 3 < bytes.count {
        if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            let line = String(decoding: bytes[0..<min(12, i)], as: UTF8.self)
            let status = Int(line.dropFirst(9).prefix(3)) ?? -1
            return (status, i + 4)
        }
        i += 1
    }
    return nil
}

/// The `Content-Length` of a head, if present.
func contentLength(_ head: ArraySlice<UInt8>) -> Int? {
    let text = String(decoding: head, as: UTF8.self).lowercased()
    guard let r = text.range(of: "content-length: ") else { return nil }
    return Int(text[r.upperBound...].prefix { $0.isNumber })
}

/// Parses an SSE body incrementally: complete blocks (ended by a blank line) only.
struct SSEParser {
    var offset: Int

    mutating func parse(_ bytes: [UInt8]) -> [StreamItem] {
        var items: [StreamItem] = []
        while true {
            var end = -1
            var i = offset
            while i + 1 < bytes.count {
                if bytes[i] == 10 && bytes[i + 1] == 10 { end = i; break }
                i += 1
            }
            guard end >= 0 else { return items }
            let block = String(decoding: bytes[offset..<end], as: UTF8.self)
            offset = end + 2
            var id: UInt64? = nil
            var type = ""
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("id: ") { id = EventID(parsing: String(line.dropFirst(4)))?.seq }
                if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
            }
            if type == "reset" { items.append(.reset) }
            else if type == "close" { items.append(.close) }
            else if let id { items.append(.event(seq: id)) }
        }
    }
}

/// Parses the server's (unmasked) WebSocket frames incrementally.
struct WebSocketParser {
    var offset: Int

    mutating func parse(_ bytes: [UInt8]) -> [StreamItem] {
        var items: [StreamItem] = []
        while bytes.count - offset >= 2 {
            let opcode = bytes[offset] & 0x0f
            var length = Int(bytes[offset + 1] & 0x7f)
            var header = 2
            if length == 126 {
                guard bytes.count - offset >= 4 else { return items }
                length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                header = 4
            } else if length == 127 {
                guard bytes.count - offset >= 10 else { return items }
                length = 0
                for k in 0..<8 { length = length << 8 | Int(bytes[offset + 2 + k]) }
                header = 10
            }
            guard bytes.count - offset >= header + length else { return items }
            let payload = Array(bytes[(offset + header)..<(offset + header + length)])
            offset += header + length
            switch opcode {
            case 0x1:
                let text = String(decoding: payload, as: UTF8.self)
                if text.hasPrefix(#"{"event":"reset""#) { items.append(.reset) }
                else if text.hasPrefix(#"{"event":"close""#) { items.append(.close) }
                else if text.hasPrefix(#"{"id":""#), let end = text.dropFirst(7).firstIndex(of: "\"") {
                    if let id = EventID(parsing: String(text[text.index(text.startIndex, offsetBy: 7)..<end])) {
                        items.append(.event(seq: id.seq))
                    }
                }
            case 0x8: items.append(.close)
            case 0x9: items.append(.ping(payload))
            default: break
            }
        }
        return items
    }
}

/// A masked client frame (clients must mask).
func clientFrame(opcode: UInt8, payload: [UInt8], mask: UInt32) -> [UInt8] {
    precondition(payload.count < 126)
    let m = [UInt8(truncatingIfNeeded: mask >> 24), UInt8(truncatingIfNeeded: mask >> 16),
             UInt8(truncatingIfNeeded: mask >> 8), UInt8(truncatingIfNeeded: mask)]
    var frame: [UInt8] = [0x80 | opcode, 0x80 | UInt8(payload.count)] + m
    for (i, b) in payload.enumerated() { frame.append(b ^ m[i & 3]) }
    return frame
}

/// The event ids (seqs) of a history body, in order.
func historySeqs(_ body: String) -> [UInt64] {
    var seqs: [UInt64] = []
    var rest = Substring(body)
    while let r = rest.range(of: #"{"id":""#) {
        rest = rest[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { break }
        if let id = EventID(parsing: String(rest[..<end])) { seqs.append(id.seq) }
        rest = rest[end...]
    }
    return seqs
}

extension WorkerSchedule.Outcome {
    /// A broken invariant, with what replays it (the first 20 of a schedule are kept).
    mutating func fail(_ message: String, seed: UInt64, sim: SimulatedIO) {
        if failures.count < 20 {
            failures.append("seed=\(SimSeeds.hex(seed)) turn=\(sim.turn) clock=\(sim.now()): \(message)")
        }
    }

    /// What every schedule records once its loop returned: the turns, one hash over the
    /// backend's transcript and every byte the peers received, and any misuse the backend saw.
    mutating func finish(seed: UInt64, sim: SimulatedIO, peers: [SimPeer]) {
        turns = sim.turn
        transcriptHash = sim.transcriptHash
        for p in peers {
            for b in p.received { transcriptHash = (transcriptHash ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        transcript = sim.transcript
        clients = peers.count
        for v in sim.violations { fail("backend misuse: \(v)", seed: seed, sim: sim) }
    }
}
