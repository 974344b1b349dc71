import CHiredis
import Glibc

/// One event of the cluster's stream, as the tail reads it.
public struct ClusterEntry: Sendable, Equatable {
    public var id: StreamID
    public var epoch: UInt32
    public var seq: UInt64
    public var slot: [UInt8]
    public var type: [UInt8]
    public var data: [UInt8]
    public var timeMilliseconds: UInt64

    public init(id: StreamID, epoch: UInt32, seq: UInt64, slot: [UInt8], type: [UInt8], data: [UInt8], timeMilliseconds: UInt64) {
        self.id = id
        self.epoch = epoch
        self.seq = seq
        self.slot = slot
        self.type = type
        self.data = data
        self.timeMilliseconds = timeMilliseconds
    }

    /// Bytes the tail queue counts for this entry (its limit is in bytes as well as entries).
    var queuedBytes: Int { slot.count + type.count + data.count + 64 }
}

/// What the tail hands the ingest's loop, in stream order.
public enum TailEvent: Sendable {
    case entry(ClusterEntry)
    /// An entry without the fields this code writes (another writer on the key?): its seq when
    /// it had a readable one, and what was wrong.
    case malformed(id: StreamID, seq: UInt64?, why: String)
    /// `NAME:meta`'s epoch is no longer the link's (nil: the hash is gone, Redis was wiped).
    case epochChanged(clusterEpoch: UInt32?)
}

/// Turns XREAD replies into tail events. Pure: tested without Redis.
public enum TailDecoding {
    /// The entries of `XREAD ... STREAMS NAME cursor` (one stream), or nil when the reply is not
    /// XREAD's shape. `.null` (BLOCK timed out) is no entries.
    public static func entries(ofXRead reply: RedisReply) -> [RedisReply]? {
        switch reply {
        case .null:
            return []
        case .array(let streams):
            guard streams.count == 1, case .array(let pair) = streams[0], pair.count == 2,
                  case .array(let entries) = pair[1]
            else { return nil }
            return entries
        default:
            return nil
        }
    }

    /// One `[id, [field, value, ...]]` entry. nil when even the id cannot be read (the reply is
    /// not a stream entry at all: the caller drops the connection).
    public static func event(ofEntry reply: RedisReply) -> TailEvent? {
        guard case .array(let pair) = reply, pair.count == 2, case .string(let idBytes) = pair[0],
              let id = StreamID(bytes: idBytes)
        else { return nil }
        guard case .array(let fields) = pair[1], fields.count % 2 == 0 else {
            return .malformed(id: id, seq: nil, why: "fields are not name/value pairs")
        }
        var seqBytes: [UInt8]?, epochBytes: [UInt8]?, slot: [UInt8]?, type: [UInt8]?, data: [UInt8]?, timeBytes: [UInt8]?
        var i = 0
        while i < fields.count {
            guard case .string(let name) = fields[i], case .string(let value) = fields[i + 1] else {
                return .malformed(id: id, seq: nil, why: "a field is not a string")
            }
            switch name {
            case Field.seq: seqBytes = value
            case Field.epoch: epochBytes = value
            case Field.slot: slot = value
            case Field.type: type = value
            case Field.data: data = value
            case Field.time: timeBytes = value
            default: break
            }
            i += 2
        }
        let seq = seqBytes.flatMap { StreamID.decimal($0) }
        guard let seqBytes else { return .malformed(id: id, seq: nil, why: "no seq field") }
        guard let seq, seq > 0, seq <= ClusterEntry.maxSeq else {
            return .malformed(id: id, seq: nil, why: "seq '\(String(decoding: seqBytes.prefix(32), as: UTF8.self))' is not a decimal from 1 to 2^53")
        }
        guard let epochBytes else { return .malformed(id: id, seq: seq, why: "no epoch field") }
        guard let epoch = ClusterMeta.parseEpoch(epochBytes) else {
            return .malformed(id: id, seq: seq, why: "epoch is not 8 hex digits")
        }
        guard let slot else { return .malformed(id: id, seq: seq, why: "no slot field") }
        guard let type else { return .malformed(id: id, seq: seq, why: "no type field") }
        guard let data else { return .malformed(id: id, seq: seq, why: "no data field") }
        guard let timeBytes else { return .malformed(id: id, seq: seq, why: "no time field") }
        guard let time = StreamID.decimal(timeBytes) else {
            return .malformed(id: id, seq: seq, why: "time is not a decimal")
        }
        return .entry(ClusterEntry(id: id, epoch: epoch, seq: seq, slot: slot, type: type, data: data, timeMilliseconds: time))
    }

    enum Field {
        static let seq = Array("seq".utf8)
        static let epoch = Array("epoch".utf8)
        static let slot = Array("slot".utf8)
        static let type = Array("type".utf8)
        static let data = Array("data".utf8)
        static let time = Array("time".utf8)
    }
}

extension TailDecoding {
    /// XREAD's reply straight from hiredis's tree: an entry with every field is decoded in
    /// place (three copies: slot, type, data); anything else goes through the `RedisReply`
    /// decoder above, so what counts as malformed is decided in one place. nil: not XREAD's shape.
    static func events(ofXRead raw: UnsafePointer<redisReply>) -> [TailEvent]? {
        let r = raw.pointee
        if r.type == REDIS_REPLY_NIL { return [] }
        guard r.type == REDIS_REPLY_ARRAY, r.elements == 1, let stream = r.element[0],
              stream.pointee.type == REDIS_REPLY_ARRAY, stream.pointee.elements == 2,
              let list = stream.pointee.element[1], list.pointee.type == REDIS_REPLY_ARRAY
        else { return nil }
        var events: [TailEvent] = []
        events.reserveCapacity(Int(list.pointee.elements))
        for i in 0..<Int(list.pointee.elements) {
            guard let e = list.pointee.element[i] else { return nil }
            if let fast = entryInPlace(UnsafePointer(e)) {
                events.append(.entry(fast))
            } else if let slow = event(ofEntry: RedisReply(hiredis: UnsafePointer(e))) {
                events.append(slow)
            } else {
                return nil
            }
        }
        return events
    }

    private static func bytes(_ p: UnsafeMutablePointer<redisReply>?) -> UnsafeRawBufferPointer? {
        guard let p, p.pointee.type == REDIS_REPLY_STRING else { return nil }
        return UnsafeRawBufferPointer(start: p.pointee.str, count: p.pointee.len)
    }

    private static func named(_ b: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        b.count == name.utf8CodeUnitCount && memcmp(b.baseAddress!, name.utf8Start, b.count) == 0
    }

    private static func entryInPlace(_ e: UnsafePointer<redisReply>) -> ClusterEntry? {
        guard e.pointee.type == REDIS_REPLY_ARRAY, e.pointee.elements == 2, let idBytes = bytes(e.pointee.element[0]),
              let fields = e.pointee.element[1], fields.pointee.type == REDIS_REPLY_ARRAY, fields.pointee.elements % 2 == 0,
              let dash = idBytes.firstIndex(of: UInt8(ascii: "-")),
              let ms = StreamID.decimal(idBytes[..<dash]), let sq = StreamID.decimal(idBytes[(dash + 1)...])
        else { return nil }
        var seq: UInt64?, epoch: UInt32?, time: UInt64?
        var slot: UnsafeRawBufferPointer?, type: UnsafeRawBufferPointer?, data: UnsafeRawBufferPointer?
        var i = 0
        let n = Int(fields.pointee.elements)
        while i < n {
            guard let name = bytes(fields.pointee.element[i]), let value = bytes(fields.pointee.element[i + 1]) else { return nil }
            if named(name, "seq") { seq = StreamID.decimal(value) }
            else if named(name, "epoch") { epoch = ClusterMeta.parseEpoch(value) }
            else if named(name, "slot") { slot = value }
            else if named(name, "type") { type = value }
            else if named(name, "data") { data = value }
            else if named(name, "time") { time = StreamID.decimal(value) }
            i += 2
        }
        guard let seq, seq > 0, seq <= ClusterEntry.maxSeq, let epoch, let time, let slot, let type, let data else { return nil }
        return ClusterEntry(id: StreamID(milliseconds: ms, sequence: sq), epoch: epoch, seq: seq, slot: Array(slot),
                            type: Array(type), data: Array(data), timeMilliseconds: time)
    }
}

extension ClusterEntry {
    /// The largest seq a stream entry may carry: the publish script counts in Lua numbers
    /// (doubles), exact to 2^53. Anything larger was not written by it, and taken as a seq it
    /// would overflow the log's arithmetic (`seq + 1`) on every host.
    public static let maxSeq: UInt64 = 1 << 53
}
