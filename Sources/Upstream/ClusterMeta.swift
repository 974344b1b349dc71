/// The Redis keys of one cluster (`?key=NAME`): the stream, its seq counter, its epoch hash.
public struct ClusterKeys: Sendable, Equatable {
    public let stream: String
    public let seq: String
    public let meta: String

    public init(key: String) {
        stream = key
        seq = key + ":seq"
        meta = key + ":meta"
    }
}

/// The cluster's epoch, as the supervisor reads (and on first start creates) it.
public enum ClusterMeta {
    /// Makes the epoch when there is none, atomically. Its entries start after the stream's
    /// last entry, and its seqs at 1 (as after a bump): a stream that outlived its `meta` hash
    /// (evicted, deleted) holds another epoch's entries, which no host may take as this one's.
    static let ensureScript = """
        if redis.call('HEXISTS', KEYS[1], 'epoch') == 1 then return 0 end
        local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
        local start = '0-0'
        if #last > 0 then start = last[1][1] end
        redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'start', start)
        redis.call('SET', KEYS[2], 0)
        return 1
        """

    /// `HSETNX meta epoch <random()>` and `HSETNX meta start 0-0`, then reads both: the first
    /// host to start makes the epoch, every other host (and every restart) reads it.
    public static func ensureEpoch(_ c: RedisConnection, keys: ClusterKeys, random: () -> UInt32) throws(UpstreamError)
        -> (epoch: UInt32, start: StreamID)
    {
        let fresh = epochHex(random())
        try c.append(["EVAL", ensureScript, "3", keys.meta, keys.seq, keys.stream, fresh].map { Array($0.utf8) })
        try c.append(["HMGET", keys.meta, "epoch", "start"].map { Array($0.utf8) })
        if case .error(let message) = try c.reply() {
            throw UpstreamError(.server, "Redis at \(c.url.endpoint) refused to create the cluster epoch in \(keys.meta): \(message)")
        }
        let reply = try c.reply()
        guard case .array(let fields) = reply, fields.count == 2 else {
            throw UpstreamError(.protocolError, "Redis at \(c.url.endpoint): HMGET \(keys.meta) answered \(reply)")
        }
        guard case .string(let e) = fields[0], let epoch = parseEpoch(e) else {
            throw UpstreamError(.protocolError, "Redis at \(c.url.endpoint): \(keys.meta) epoch is not 8 hex digits: \(fields[0])")
        }
        guard case .string(let s) = fields[1], let start = StreamID(bytes: s) else {
            throw UpstreamError(.protocolError, "Redis at \(c.url.endpoint): \(keys.meta) start is not a stream id: \(fields[1])")
        }
        return (epoch, start)
    }

    /// 8 lowercase hex digits, as the stream's `epoch` field and the meta hash hold it.
    public static func epochHex(_ epoch: UInt32) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { out[i] = digits[Int(epoch >> UInt32(28 - 4 * i) & 15)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Exactly 8 hex digits (either case), else nil.
    public static func parseEpoch<C: Collection>(_ bytes: C) -> UInt32? where C.Element == UInt8 {
        guard bytes.count == 8 else { return nil }
        var value: UInt32 = 0
        for b in bytes {
            let d: UInt32
            switch b {
            case 48...57: d = UInt32(b - 48)
            case 97...102: d = UInt32(b - 87)
            case 65...70: d = UInt32(b - 55)
            default: return nil
            }
            value = value << 4 | d
        }
        return value
    }
}
