/// The two Lua scripts of design.md, run with EVALSHA (loaded once per connection).
public enum ClusterScripts {
    /// KEYS = [stream, seq, meta], ARGV = [epochHex, retain, timeMs, n, slot1, type1, data1, ...].
    /// All or nothing: the epoch check comes before any write. Seqs are formatted with %d so a
    /// large seq never becomes `1e+15`. Reply: [firstSeq, lastStreamId].
    public static let publish = """
    local cur = redis.call('HGET', KEYS[3], 'epoch')
    if cur ~= ARGV[1] then
      return redis.error_reply('EPOCH ' .. (cur or 'none'))
    end
    local n = tonumber(ARGV[4])
    if n == nil or n < 1 or #ARGV ~= 4 + 3 * n then
      return redis.error_reply('ERR ringgate publish: bad argument count')
    end
    local last = redis.call('INCRBY', KEYS[2], n)
    local first = last - n + 1
    local id
    for i = 0, n - 1 do
      local b = 5 + 3 * i
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
        'seq', string.format('%d', first + i), 'epoch', ARGV[1],
        'slot', ARGV[b], 'type', ARGV[b + 1], 'data', ARGV[b + 2], 'time', ARGV[3])
    end
    return {first, id}
    """

    /// KEYS = [meta, seq, stream], ARGV = [oldEpoch, newEpoch]: compare-and-set of the epoch, so
    /// two hosts that find the same divergence make one new epoch. Reply: the current epoch.
    public static let bump = """
    local cur = redis.call('HGET', KEYS[1], 'epoch')
    if cur == ARGV[1] then
      local start = '0-0'
      local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
      if #last > 0 then start = last[1][1] end
      redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'start', start)
      redis.call('SET', KEYS[2], 0)
      return ARGV[2]
    end
    return cur
    """

    /// A script loaded on one connection: its sha, re-loaded when Redis says NOSCRIPT.
    struct Loaded {
        let source: String
        var sha: [UInt8]?

        init(_ source: String) { self.source = source }

        mutating func load(on c: RedisConnection) throws(UpstreamError) {
            let reply = try c.command("SCRIPT", "LOAD", source)
            guard case .string(let sha) = reply else {
                throw UpstreamError(.server, "Redis at \(c.url.endpoint) refused SCRIPT LOAD: \(reply)")
            }
            self.sha = sha
        }

        /// EVALSHA (loading first if needed); a NOSCRIPT answer reloads and runs it once more.
        mutating func run(on c: RedisConnection, keys: [String], arguments: [[UInt8]]) throws(UpstreamError) -> RedisReply {
            if sha == nil { try load(on: c) }
            let reply = try c.command(evalsha(keys: keys, arguments: arguments))
            if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                try load(on: c)
                return try c.command(evalsha(keys: keys, arguments: arguments))
            }
            return reply
        }

        func evalsha(keys: [String], arguments: [[UInt8]]) -> [[UInt8]] {
            var argv: [[UInt8]] = [Array("EVALSHA".utf8), sha!, Array(String(keys.count).utf8)]
            argv.reserveCapacity(3 + keys.count + arguments.count)
            for k in keys { argv.append(Array(k.utf8)) }
            argv.append(contentsOf: arguments)
            return argv
        }
    }
}
