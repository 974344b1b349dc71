import CHiredis
import Glibc

/// One blocking TCP connection to Redis; every call is bounded by the connection's timeout.
///
/// Not thread-safe: each of the link's threads owns its own. After an I/O error, a timeout or a
/// protocol error the connection is dead: every later call throws, and the owner makes a new one.
public final class RedisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    public let url: UpstreamURL
    private var timeoutNanoseconds: UInt64
    /// The timeout the owner configured (`--upstream-timeout`), as error messages name it.
    private let configuredTimeoutNanoseconds: UInt64
    private var broken: UpstreamError?

    /// Connects (within the timeout), AUTH (user + password, or password), SELECT db,
    /// CLIENT SETNAME name, and checks the server has streams (redis_version >= 5).
    public init(url: UpstreamURL, timeoutNanoseconds: UInt64, name: String) throws(UpstreamError) {
        self.url = url
        self.timeoutNanoseconds = timeoutNanoseconds
        configuredTimeoutNanoseconds = timeoutNanoseconds
        let tv = Self.timeval(timeoutNanoseconds)
        guard let c = redisConnectWithTimeout(url.host, Int32(url.port), tv) else {
            throw UpstreamError(.unreachable, "cannot connect to Redis at \(url.endpoint) (--upstream): out of memory")
        }
        context = c
        if c.pointee.err != 0 {
            let why = Self.errorText(c)
            redisFree(c)
            context = nil
            let kind: UpstreamError.Kind = why.contains("timed out") ? .timeout : .unreachable
            throw UpstreamError(kind, "cannot connect to Redis at \(url.endpoint) (--upstream): \(why)")
        }
        _ = redisSetTimeout(c, tv)
        _ = redisEnableKeepAlive(c)
        do {
            // The whole handshake shares one timeout, so a connect is bounded by it, not by
            // (number of commands) × timeout.
            try handshake(name: name, deadlineNanoseconds: MonotonicClock.nanoseconds() + timeoutNanoseconds)
            setTimeout(nanoseconds: configuredTimeoutNanoseconds)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Before each handshake command: the reads may take what is left of the connect's timeout.
    private func bound(by deadlineNanoseconds: UInt64) throws(UpstreamError) {
        let now = MonotonicClock.nanoseconds()
        guard deadlineNanoseconds > now else {
            throw UpstreamError(.timeout, "Redis at \(url.endpoint) did not finish the handshake within \(configuredTimeoutNanoseconds / 1_000_000) ms (--upstream-timeout)")
        }
        setTimeout(nanoseconds: deadlineNanoseconds - now)
    }

    private func handshake(name: String, deadlineNanoseconds: UInt64) throws(UpstreamError) {
        try bound(by: deadlineNanoseconds)
        if let password = url.password {
            var args = ["AUTH"]
            if let user = url.user { args.append(user) }
            args.append(password)
            let reply = try command(args.map { Array($0.utf8) })
            if case .error(let message) = reply {
                throw UpstreamError(.authentication, "Redis at \(url.endpoint) refused the password (--upstream): \(Self.authReason(message))")
            }
        }
        try bound(by: deadlineNanoseconds)
        if url.db != 0 {
            try expectOK(try command("SELECT", String(url.db)), doing: "SELECT \(url.db)")
        }
        try bound(by: deadlineNanoseconds)
        try expectOK(try command("CLIENT", "SETNAME", name), doing: "CLIENT SETNAME")
        try bound(by: deadlineNanoseconds)
        let info = try command("INFO", "server")
        guard let text = info.text else {
            try expectOK(info, doing: "INFO server")
            throw UpstreamError(.protocolError, "Redis at \(url.endpoint): INFO server gave no text")
        }
        let version = Self.version(inInfo: text)
        guard let major = version.first, major >= 5 else {
            let shown = version.map(String.init).joined(separator: ".")
            throw UpstreamError(.noStreams, "Redis at \(url.endpoint) is version \(shown.isEmpty ? "unknown" : shown); cluster mode needs Redis >= 5.0 (streams)")
        }
    }

    private func expectOK(_ reply: RedisReply, doing what: String) throws(UpstreamError) {
        guard case .error(let message) = reply else { return }
        if message.hasPrefix("NOAUTH") {
            throw UpstreamError(.authentication, "Redis at \(url.endpoint) needs a password (--upstream redis://:PASSWORD@... or RINGGATE_UPSTREAM_PASSWORD): \(message)")
        }
        if message.hasPrefix("WRONGPASS") || message.contains("invalid password") {
            throw UpstreamError(.authentication, "Redis at \(url.endpoint) refused the password (--upstream): \(message)")
        }
        throw UpstreamError(.server, "Redis at \(url.endpoint) refused \(what): \(message)")
    }

    private static func authReason(_ message: String) -> String {
        if message.contains("without any password configured") {
            return "a password was given but Redis has none configured for this user (\(message))"
        }
        return message
    }

    /// Major, minor, patch of `redis_version:` in an INFO reply.
    static func version(inInfo text: String) -> [Int] {
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("redis_version:") {
            return line.dropFirst("redis_version:".count).split(separator: ".").compactMap { Int($0) }
        }
        return []
    }

    public func command(_ arguments: String...) throws(UpstreamError) -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    /// Sends one command and waits for its reply (an error reply is a value, not a throw).
    public func command(_ arguments: [[UInt8]]) throws(UpstreamError) -> RedisReply {
        try append(arguments)
        return try reply()
    }

    /// Queues one command in the output buffer (sent by the next `reply()`): pipelining.
    public func append(_ arguments: [[UInt8]]) throws(UpstreamError) {
        let c = try live()
        precondition(!arguments.isEmpty, "a Redis command has at least its name")
        var total = 0
        for a in arguments { total += a.count }
        var joined = [UInt8]()
        joined.reserveCapacity(max(total, 1))
        var lengths = [Int]()
        lengths.reserveCapacity(arguments.count)
        for a in arguments {
            joined.append(contentsOf: a)
            lengths.append(a.count)
        }
        if joined.isEmpty { joined.append(0) }
        let status: Int32 = joined.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers = [UnsafePointer<CChar>?]()
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for n in lengths {
                pointers.append(base + offset)
                offset += n
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisAppendCommandArgv(c, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
        }
        if status != REDIS_OK { try fail(c) }
    }

    /// The next reply, in the order commands were appended. Flushes what `append` queued first.
    public func reply() throws(UpstreamError) -> RedisReply {
        let c = try live()
        var raw: UnsafeMutableRawPointer?
        if redisGetReply(c, &raw) != REDIS_OK || raw == nil {
            try fail(c)
        }
        let typed = raw!.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return RedisReply(hiredis: typed)
    }

    /// The next reply handed to `body` as hiredis's own tree (valid only inside `body`): the
    /// tail decodes XREAD from it without copying every field into a `RedisReply` first.
    func withReply<T>(_ body: (UnsafePointer<redisReply>) throws(UpstreamError) -> T) throws(UpstreamError) -> T {
        let c = try live()
        var raw: UnsafeMutableRawPointer?
        if redisGetReply(c, &raw) != REDIS_OK || raw == nil {
            try fail(c)
        }
        defer { freeReplyObject(raw) }
        return try body(UnsafePointer(raw!.assumingMemoryBound(to: redisReply.self)))
    }

    /// Bounds the next reads and writes (e.g. a blocking XREAD needs its BLOCK time on top).
    public func setTimeout(nanoseconds: UInt64) {
        guard let c = context, nanoseconds != timeoutNanoseconds else { return }
        timeoutNanoseconds = nanoseconds
        _ = redisSetTimeout(c, Self.timeval(nanoseconds))
    }

    public var isBroken: Bool { broken != nil || context == nil }

    public func close() {
        if let c = context { redisFree(c) }
        context = nil
    }

    private func live() throws(UpstreamError) -> UnsafeMutablePointer<redisContext> {
        if let broken { throw broken }
        guard let c = context else { throw UpstreamError(.unreachable, "connection to Redis at \(url.endpoint) is closed") }
        return c
    }

    private func fail(_ c: UnsafeMutablePointer<redisContext>) throws(UpstreamError) -> Never {
        let why = Self.errorText(c)
        let error: UpstreamError
        switch c.pointee.err {
        case REDIS_ERR_IO where why.contains("temporarily unavailable") || why.contains("timed out"):
            error = UpstreamError(.timeout, "Redis at \(url.endpoint) did not answer within \(configuredTimeoutNanoseconds / 1_000_000) ms (--upstream-timeout)")
        case REDIS_ERR_PROTOCOL:
            error = UpstreamError(.protocolError, "Redis at \(url.endpoint) sent a reply that cannot be parsed: \(why)")
        default:
            error = UpstreamError(.unreachable, "connection to Redis at \(url.endpoint) lost: \(why)")
        }
        broken = error
        close()
        throw error
    }

    private static func errorText(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let n = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<n], as: UTF8.self)
        }
    }

    private static func timeval(_ nanoseconds: UInt64) -> Glibc.timeval {
        let ns = max(nanoseconds, 1_000_000)
        return Glibc.timeval(tv_sec: Int(ns / 1_000_000_000), tv_usec: Int(ns % 1_000_000_000 / 1000))
    }
}
