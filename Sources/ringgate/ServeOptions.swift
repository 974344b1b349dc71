import ArgumentParser
import Auth
import GatewayCore
import IO
import RoleSupport
import StreamPolicy
import Glibc
import Upstream
import WireProtocol
import Worker

/// The `serve` flags. Each falls back to a `RINGGATE_*` environment variable, then to the
/// default in the README; the same flags are handed to every child process.
struct ServeOptions: ParsableArguments {
    @Option(help: "Subscriber listener HOST:PORT (default 0.0.0.0:8080).") var listen: String?
    @Option(name: .customLong("publish-listen"), help: "Publish listener HOST:PORT (default 127.0.0.1:8081).") var publishListen: String?
    @Option(help: "Worker processes (default: CPU count).") var workers: String?
    @Option(name: .customLong("data-dir"), help: "Directory of ring.log (default ./ringgate-data).") var dataDir: String?
    @Flag(help: "Keep the log in memory (memfd) instead of --data-dir.") var ephemeral = false
    @Option(name: .customLong("log-capacity"), help: "Ring capacity, a power of two (default 256MiB).") var logCapacity: String?
    @Option(name: .customLong("max-event-bytes"), help: "Largest event data (default 64KiB).") var maxEventBytes: String?
    @Option(name: .customLong("max-limit"), help: "Largest history limit (default 1000).") var maxLimit: String?
    @Option(help: "SSE heartbeat after this much silence (default 15s).") var heartbeat: String?
    @Option(name: .customLong("send-timeout"), help: "Close when nothing is acknowledged this long (default 10s).") var sendTimeout: String?
    @Option(name: .customLong("header-timeout"), help: "Request head deadline (default 10s).") var headerTimeout: String?
    @Option(name: .customLong("max-lifetime"), help: "Stream lifetime, jittered by up to 10% (default 24h).") var maxLifetime: String?
    @Option(name: .customLong("max-connections"), help: "Connections per host (default 100000).") var maxConnections: String?
    @Option(name: .customLong("lag-policy"), help: "resync or disconnect (default resync).") var lagPolicy: String?
    @Option(name: .customLong("publish-token"), help: "Require Authorization: Bearer <token> to publish.") var publishToken: String?
    @Option(help: "Cluster mode: redis://[user:password@]HOST:PORT[/DB]?key=NAME (password also from RINGGATE_UPSTREAM_PASSWORD).") var upstream: String?
    @Option(name: .customLong("max-slots"), help: "Slot directory entries, a power of two (default 65536).") var maxSlots: String?
    @Option(name: .customLong("max-batch-bytes"), help: "Largest NDJSON batch body (default 16MiB).") var maxBatchBytes: String?
    @Option(name: .customLong("max-subscribers-per-slot"), help: "Streams per slot per host, 0 = no limit (default 0).") var maxSubscribersPerSlot: String?
    @Option(name: .customLong("max-slots-per-stream"), help: "Slots one stream or history pull of several slots may name (default 16).") var maxSlotsPerStream: String?
    @Option(name: .customLong("tcp-keepalive"), help: "TCP keepalive idle time, 0 = off (default 60s).") var tcpKeepalive: String?
    @Option(name: .customLong("tcp-user-timeout"), help: "TCP_USER_TIMEOUT on accepted sockets, 0 = kernel default (default 0).") var tcpUserTimeout: String?
    // MARK: SUPERVISOR + BROWSERS
    @Option(name: .customLong("watchdog-timeout"), help: "Kill and restart a child whose loop has not turned this long, 0 = off (default 10s).") var watchdogTimeout: String?
    @Option(name: .customLong("cors-origins"), help: "Origins whose pages may read subscriber responses: *, none, or a comma-separated list (default *).") var corsOrigins: String?
    @Option(name: .customLong("ws-origins"), help: "Origins allowed to open a WebSocket: *, none, or a comma-separated list (default *).") var wsOrigins: String?
    // MARK: LOG
    @Option(help: "When the log is flushed to disk: none, interval or always (default none).") var fsync: String?
    @Option(name: .customLong("fsync-interval"), help: "Flush period of --fsync interval (default 1s).") var fsyncInterval: String?
    // MARK: HTTP limits (issue 10, items 7-11)
    @Option(name: .customLong("max-pending-body-bytes"), help: "Request body bytes the ingest buffers at once (default 64MiB).") var maxPendingBodyBytes: String?
    @Option(name: .customLong("body-timeout"), help: "408 when a request body makes no progress this long (default 10s).") var bodyTimeout: String?
    @Option(name: .customLong("max-pipelined-requests"), help: "Unsent answers per connection before its input pauses (default 32).") var maxPipelinedRequests: String?
    @Option(name: .customLong("max-response-queue-bytes"), help: "Queued response bytes per connection before its input pauses (default 4MiB).") var maxResponseQueueBytes: String?
    @Option(name: .customLong("admin-reserve-connections"), help: "Connections per worker past --max-connections for /healthz, /readyz, /metrics (default 16).") var adminReserveConnections: String?
    @Option(name: .customLong("send-buffers"), help: "Pooled send buffers per worker (default 4096).") var sendBuffers: String?
    @Option(name: .customLong("shared-frames"), help: "Fan-out frames per worker sent to every idle stream from one copy, 0 = off (default 256).") var sharedFrames: String?
    @Option(name: .customLong("recv-buffers"), help: "Provided receive buffers per process, a power of two (default 256).") var recvBuffers: String?
    @Option(name: .customLong("recv-buffer-bytes"), help: "Size of a worker's receive buffer (default 4KiB).") var recvBufferBytes: String?
    @Option(name: .customLong("ingest-max-connections"), help: "Publish connections the ingest holds (default 4096).") var ingestMaxConnections: String?
    @Option(name: .customLong("ingest-recv-buffer-bytes"), help: "Size of an ingest receive buffer (default 64KiB).") var ingestRecvBufferBytes: String?
    @Option(name: .customLong("ingest-send-buffers"), help: "Pooled send buffers of the ingest (default 64).") var ingestSendBuffers: String?
    @Option(name: .customLong("max-batch-events"), help: "Lines of one NDJSON batch (default 1000000).") var maxBatchEvents: String?
    @Option(name: .customLong("ring-entries"), help: "io_uring submission-queue entries per process, a power of two (default 4096).") var ringEntries: String?
    // MARK: CLUSTER (issue 12)
    @Option(name: .customLong("upstream-retain"), help: "Entries the cluster's Redis stream keeps, MAXLEN ~ (default 1000000).") var upstreamRetain: String?
    @Option(name: .customLong("upstream-timeout"), help: "Redis connect/command timeout; a publish not answered this long gets 503 (default 2s).") var upstreamTimeout: String?
    @Option(name: .customLong("upstream-wait-replicas"), help: "Acknowledge a publish only after WAIT N replicas (default 0 = off).") var upstreamWaitReplicas: String?
    @Option(name: .customLong("upstream-max-queued-events"), help: "Events sent to Redis and not yet answered, at most; over it publishes get 503 (default 100000).") var upstreamMaxQueuedEvents: String?
    // MARK: DRAIN (issue 13)
    @Option(name: .customLong("drain-delay"), help: "After SIGTERM, /readyz answers 503 and the host serves this long before closing streams, 0 = none (default 5s).") var drainDelay: String?
    @Option(name: .customLong("drain-spread"), help: "Closing streams get a retry: drawn from 0 to this, spreading their reconnects, 0 = none (default 5s).") var drainSpread: String?
    // MARK: STATUS PAGE (issue 14)
    @Option(name: .customLong("max-status-streams"), help: "Status page stats streams per worker (default 64).") var maxStatusStreams: String?
    @Option(name: .customLong("status-page"), help: "Serve the live status page at / and its stats stream: true or false (default true).") var statusPage: String?
    // MARK: AUTH (issue 14)
    @Option(name: .customLong("subscribe-auth"), help: "Subscriber authorization: none or jwt (default none).") var subscribeAuth: String?
    @Option(name: .customLong("publish-auth"), help: "Publisher authorization: token (--publish-token, if set) or jwt (also a JWT with a publish claim; default token).") var publishAuth: String?
    @Option(name: .customLong("jwt-hs256-secret-file"), help: "File holding the HS256 secret (at least 32 bytes).") var jwtHS256SecretFile: String?
    @Option(name: .customLong("jwt-public-key-file"), help: "PEM public key: RSA (RS256) or P-256 (ES256).") var jwtPublicKeyFile: String?
    @Option(name: .customLong("jwks-file"), help: "JWKS JSON file (RSA, EC P-256, oct keys; kid selects one).") var jwksFile: String?
    @Option(name: .customLong("jwt-algorithms"), help: "Allowed algorithms, e.g. RS256,ES256 (default: those of the configured keys).") var jwtAlgorithms: String?
    @Option(name: .customLong("jwt-audience"), help: "Required aud claim (default: not checked).") var jwtAudience: String?
    @Option(name: .customLong("jwt-issuer"), help: "Required iss claim (default: not checked).") var jwtIssuer: String?
    @Option(name: .customLong("jwt-cookie"), help: "Cookie a token may come in (default: none).") var jwtCookie: String?
    @Option(name: .customLong("jwt-leeway"), help: "Clock skew allowed on exp, nbf, iat (default 30s).") var jwtLeeway: String?
    // MARK: IO (issue 11)
    @Option(help: "Kernel interface: auto, io_uring or epoll (default auto: io_uring, epoll where it is blocked).") var io: String?

    static func env(_ name: String) -> String? {
        guard let v = getenv("RINGGATE_" + name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    func resolve() throws -> GatewayConfig {
        var c = GatewayConfig()
        func pick(_ flag: String?, _ env: String) -> String? { flag ?? ServeOptions.env(env) }
        func fail(_ flag: String, _ value: String, _ why: String) -> ValidationError {
            ValidationError("--\(flag) \(value): \(why)")
        }
        func hostPort(_ v: String, _ flag: String) throws -> (String, Int) {
            guard let colon = v.lastIndex(of: ":"), let port = Int(v[v.index(after: colon)...]), (0...65535).contains(port) else {
                throw fail(flag, v, "expected HOST:PORT, e.g. 0.0.0.0:8080")
            }
            var host = String(v[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            if host.isEmpty || host == "*" { host = "0.0.0.0" }
            if host == "localhost" { host = "127.0.0.1" }
            return (host, port)
        }
        func bytes(_ v: String?, _ flag: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v else { return nil }
            guard let n = ByteSize.parse(v), range.contains(n) else {
                throw fail(flag, v, "expected a size from \(range.lowerBound) to \(range.upperBound) bytes, with an optional KiB/MiB/GiB suffix")
            }
            return n
        }
        func int(_ v: String?, _ flag: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v else { return nil }
            guard let n = Int(v), range.contains(n) else {
                throw fail(flag, v, "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        func duration(_ v: String?, _ flag: String) throws -> UInt64? {
            guard let v else { return nil }
            guard let ns = DurationParser.parseNanoseconds(v), ns > 0 else {
                throw fail(flag, v, "expected a duration like 500ms, 15s, 5m, 24h")
            }
            return ns
        }

        if let v = pick(listen, "LISTEN") { (c.listenHost, c.listenPort) = try hostPort(v, "listen") }
        if let v = pick(publishListen, "PUBLISH_LISTEN") { (c.publishHost, c.publishPort) = try hostPort(v, "publish-listen") }
        c.workers = try int(pick(workers, "WORKERS"), "workers", 1...124) ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        c.workers = min(c.workers, 124)
        if let v = pick(dataDir, "DATA_DIR") { c.dataDir = v }
        c.ephemeral = ephemeral || ["1", "true", "yes"].contains(ServeOptions.env("EPHEMERAL")?.lowercased() ?? "")
        if let n = try bytes(pick(logCapacity, "LOG_CAPACITY"), "log-capacity", 4096...(1 << 40)) {
            guard n & (n - 1) == 0 else { throw fail("log-capacity", "\(n)", "must be a power of two (e.g. 64MiB, 256MiB, 1GiB)") }
            c.logCapacityBytes = n
        }
        if let n = try bytes(pick(maxEventBytes, "MAX_EVENT_BYTES"), "max-event-bytes", 1...(16 << 20)) { c.maxEventBytes = n }
        if let n = try int(pick(maxLimit, "MAX_LIMIT"), "max-limit", 1...100_000) { c.maxLimit = n }
        if let n = try duration(pick(heartbeat, "HEARTBEAT"), "heartbeat") { c.heartbeatNanoseconds = n }
        if let n = try duration(pick(sendTimeout, "SEND_TIMEOUT"), "send-timeout") { c.sendTimeoutNanoseconds = n }
        if let n = try duration(pick(headerTimeout, "HEADER_TIMEOUT"), "header-timeout") { c.headerTimeoutNanoseconds = n }
        if let n = try duration(pick(maxLifetime, "MAX_LIFETIME"), "max-lifetime") { c.maxLifetimeNanoseconds = n }
        if let n = try int(pick(maxConnections, "MAX_CONNECTIONS"), "max-connections", 1...10_000_000) { c.maxConnections = n }
        if let v = pick(lagPolicy, "LAG_POLICY") {
            guard let p = LagPolicy(rawValue: v) else { throw fail("lag-policy", v, "expected resync or disconnect") }
            c.lagPolicy = p
        }
        c.publishToken = pick(publishToken, "PUBLISH_TOKEN")
        c.upstream = pick(upstream, "UPSTREAM")
        if let n = try int(pick(maxSlots, "MAX_SLOTS"), "max-slots", 1...(1 << 24)) {
            guard n & (n - 1) == 0 else { throw fail("max-slots", "\(n)", "must be a power of two") }
            c.maxSlots = n
        }
        if let n = try bytes(pick(maxBatchBytes, "MAX_BATCH_BYTES"), "max-batch-bytes", 1...(1 << 30)) { c.maxBatchBytes = n }
        if let n = try int(pick(maxSubscribersPerSlot, "MAX_SUBSCRIBERS_PER_SLOT"), "max-subscribers-per-slot", 0...10_000_000) {
            c.maxSubscribersPerSlot = n
        }
        if let n = try int(pick(maxSlotsPerStream, "MAX_SLOTS_PER_STREAM"), "max-slots-per-stream", 1...1024) {
            c.maxSlotsPerStream = n
        }
        if let v = pick(tcpKeepalive, "TCP_KEEPALIVE") {
            if v == "0" { c.tcpKeepaliveNanoseconds = 0 } else { c.tcpKeepaliveNanoseconds = try duration(v, "tcp-keepalive") ?? 0 }
        }
        if let v = pick(tcpUserTimeout, "TCP_USER_TIMEOUT") {
            if v == "0" { c.tcpUserTimeoutNanoseconds = 0 } else { c.tcpUserTimeoutNanoseconds = try duration(v, "tcp-user-timeout") ?? 0 }
        }
        // MARK: SUPERVISOR + BROWSERS
        if let v = pick(watchdogTimeout, "WATCHDOG_TIMEOUT") {
            if v == "0" {
                c.watchdogTimeoutNanoseconds = 0
            } else {
                guard let n = DurationParser.parseNanoseconds(v), n >= 500_000_000, n <= 3_600_000_000_000 else {
                    throw fail("watchdog-timeout", v, "expected 0 (off) or a duration from 500ms to 1h, like 10s")
                }
                c.watchdogTimeoutNanoseconds = n
            }
        }
        func origins(_ v: String?, _ flag: String) throws -> OriginList? {
            guard let v else { return nil }
            do { return try OriginList(parsing: v) } catch { throw fail(flag, v, error.description) }
        }
        if let o = try origins(pick(corsOrigins, "CORS_ORIGINS"), "cors-origins") { c.corsOrigins = o }
        if let o = try origins(pick(wsOrigins, "WS_ORIGINS"), "ws-origins") { c.webSocketOrigins = o }
        // MARK: LOG
        if let v = pick(fsync, "FSYNC") {
            guard let mode = FsyncMode(rawValue: v) else { throw fail("fsync", v, "expected none, interval or always") }
            c.fsync = mode
        }
        if let n = try duration(pick(fsyncInterval, "FSYNC_INTERVAL"), "fsync-interval") {
            guard n >= 1_000_000, n <= 3_600_000_000_000 else {
                throw fail("fsync-interval", pick(fsyncInterval, "FSYNC_INTERVAL") ?? "", "expected a duration from 1ms to 1h")
            }
            c.fsyncIntervalNanoseconds = n
        }
        if c.ephemeral && c.fsync != .none {
            throw ValidationError("--fsync \(c.fsync.rawValue) needs a file-backed log: an --ephemeral log lives in memory and has no disk to flush to")
        }
        // MARK: HTTP limits (issue 10, items 7-11)
        func powerOfTwo(_ n: Int?, _ flag: String) throws -> Int? {
            guard let n else { return nil }
            guard n & (n - 1) == 0 else { throw fail(flag, "\(n)", "must be a power of two") }
            return n
        }
        if let n = try bytes(pick(maxPendingBodyBytes, "MAX_PENDING_BODY_BYTES"), "max-pending-body-bytes", 1...(1 << 40)) {
            c.maxPendingBodyBytes = n
        }
        if let n = try duration(pick(bodyTimeout, "BODY_TIMEOUT"), "body-timeout") { c.bodyTimeoutNanoseconds = n }
        if let n = try int(pick(maxPipelinedRequests, "MAX_PIPELINED_REQUESTS"), "max-pipelined-requests", 1...100_000) {
            c.maxPipelinedRequests = n
        }
        if let n = try bytes(pick(maxResponseQueueBytes, "MAX_RESPONSE_QUEUE_BYTES"), "max-response-queue-bytes", 1...(1 << 30)) {
            c.maxResponseQueueBytes = n
        }
        if let n = try int(pick(adminReserveConnections, "ADMIN_RESERVE_CONNECTIONS"), "admin-reserve-connections", 0...10_000) {
            c.adminReserveConnections = n
        }
        if let n = try int(pick(sendBuffers, "SEND_BUFFERS"), "send-buffers", 1...1_000_000) { c.sendBuffers = n }
        if let n = try int(pick(sharedFrames, "SHARED_FRAMES"), "shared-frames", 0...65_536) { c.sharedFrames = n }
        if let n = try powerOfTwo(int(pick(recvBuffers, "RECV_BUFFERS"), "recv-buffers", 1...32768), "recv-buffers") { c.recvBuffers = n }
        if let n = try bytes(pick(recvBufferBytes, "RECV_BUFFER_BYTES"), "recv-buffer-bytes", 512...(1 << 20)) { c.recvBufferBytes = n }
        if let n = try int(pick(ingestMaxConnections, "INGEST_MAX_CONNECTIONS"), "ingest-max-connections", 1...1_000_000) {
            c.ingestMaxConnections = n
        }
        if let n = try bytes(pick(ingestRecvBufferBytes, "INGEST_RECV_BUFFER_BYTES"), "ingest-recv-buffer-bytes", 512...(1 << 20)) {
            c.ingestRecvBufferBytes = n
        }
        if let n = try int(pick(ingestSendBuffers, "INGEST_SEND_BUFFERS"), "ingest-send-buffers", 1...1_000_000) { c.ingestSendBuffers = n }
        if let n = try int(pick(maxBatchEvents, "MAX_BATCH_EVENTS"), "max-batch-events", 1...100_000_000) { c.maxBatchEvents = n }
        if let n = try powerOfTwo(int(pick(ringEntries, "RING_ENTRIES"), "ring-entries", 16...32768), "ring-entries") { c.ringEntries = n }
        // MARK: IO (issue 11)
        if let v = pick(io, "IO") {
            guard let choice = IOBackendChoice(argument: v) else { throw fail("io", v, "expected auto, io_uring or epoll") }
            c.io = choice
        }
        // MARK: CLUSTER (issue 12)
        if let n = try int(pick(upstreamRetain, "UPSTREAM_RETAIN"), "upstream-retain", 1000...1_000_000_000) { c.upstreamRetain = n }
        if let n = try duration(pick(upstreamTimeout, "UPSTREAM_TIMEOUT"), "upstream-timeout") {
            guard n >= 10_000_000, n <= 600_000_000_000 else {
                throw fail("upstream-timeout", pick(upstreamTimeout, "UPSTREAM_TIMEOUT") ?? "", "expected a duration from 10ms to 10m")
            }
            c.upstreamTimeoutNanoseconds = n
        }
        if let n = try int(pick(upstreamWaitReplicas, "UPSTREAM_WAIT_REPLICAS"), "upstream-wait-replicas", 0...100) { c.upstreamWaitReplicas = n }
        if let n = try int(pick(upstreamMaxQueuedEvents, "UPSTREAM_MAX_QUEUED_EVENTS"), "upstream-max-queued-events", 1...100_000_000) {
            c.upstreamMaxQueuedEvents = n
        }
        // MARK: DRAIN (issue 13)
        func drainDuration(_ v: String?, _ flag: String) throws -> UInt64? {
            guard let v else { return nil }
            if v == "0" { return 0 }
            guard let n = DurationParser.parseNanoseconds(v), n <= 600_000_000_000 else {
                throw fail(flag, v, "expected 0 or a duration up to 10m, like 5s")
            }
            return n
        }
        if let n = try drainDuration(pick(drainDelay, "DRAIN_DELAY"), "drain-delay") { c.drainDelayNanoseconds = n }
        if let n = try drainDuration(pick(drainSpread, "DRAIN_SPREAD"), "drain-spread") { c.drainSpreadNanoseconds = n }
        // MARK: STATUS PAGE (issue 14)
        if let v = pick(statusPage, "STATUS_PAGE") {
            switch v.lowercased() {
            case "true", "1", "yes", "on": c.statusPage = true
            case "false", "0", "no", "off": c.statusPage = false
            default: throw fail("status-page", v, "expected true or false")
            }
        }
        if let n = try int(pick(maxStatusStreams, "MAX_STATUS_STREAMS"), "max-status-streams", 1...100_000) {
            c.maxStatusStreamsPerWorker = n
        }
        // MARK: AUTH (issue 14)
        if let v = pick(subscribeAuth, "SUBSCRIBE_AUTH") {
            guard let mode = SubscribeAuthMode(rawValue: v) else { throw fail("subscribe-auth", v, "expected none or jwt") }
            c.subscribeAuth = mode
        }
        c.jwtHS256SecretFile = pick(jwtHS256SecretFile, "JWT_HS256_SECRET_FILE")
        c.jwtPublicKeyFile = pick(jwtPublicKeyFile, "JWT_PUBLIC_KEY_FILE")
        c.jwksFile = pick(jwksFile, "JWKS_FILE")
        c.jwtAlgorithms = pick(jwtAlgorithms, "JWT_ALGORITHMS")
        c.jwtAudience = pick(jwtAudience, "JWT_AUDIENCE")
        c.jwtIssuer = pick(jwtIssuer, "JWT_ISSUER")
        c.jwtCookie = pick(jwtCookie, "JWT_COOKIE")
        if let v = pick(jwtLeeway, "JWT_LEEWAY") {
            if v == "0" {
                c.jwtLeewayNanoseconds = 0
            } else {
                guard let n = DurationParser.parseNanoseconds(v), n <= 3_600_000_000_000 else {
                    throw fail("jwt-leeway", v, "expected 0 or a duration up to 1h, like 30s")
                }
                c.jwtLeewayNanoseconds = n
            }
        }
        if let name = c.jwtCookie, name.isEmpty || name.contains(where: { ";=, \t\"".contains($0) }) {
            throw fail("jwt-cookie", name, "not a cookie name")
        }
        if let v = pick(publishAuth, "PUBLISH_AUTH") {
            guard let mode = PublishAuthMode(rawValue: v) else { throw fail("publish-auth", v, "expected token or jwt") }
            c.publishAuth = mode
        }
        if c.usesJWT {
            // Read the keys now, so a bad file is a usage error (exit 64) before anything starts.
            do { _ = try c.jwtVerifier() } catch { throw ValidationError(error.description) }
        } else if c.jwtHS256SecretFile != nil || c.jwtPublicKeyFile != nil || c.jwksFile != nil {
            throw ValidationError("JWT keys are configured but neither --subscribe-auth nor --publish-auth is jwt: add --subscribe-auth jwt or --publish-auth jwt, or drop the --jwt-*/--jwks-file flags")
        }
        // A budget below one body would answer every such upload 503 Retry-After forever,
        // which looks like a temporary overload; say so at start-up instead.
        let largestBodyBytes = max(c.maxEventBytes, c.maxBatchBytes)
        if c.maxPendingBodyBytes < largestBodyBytes {
            let bodyFlag = c.maxBatchBytes >= c.maxEventBytes ? "--max-batch-bytes" : "--max-event-bytes"
            throw ValidationError("--max-pending-body-bytes \(c.maxPendingBodyBytes) is below \(bodyFlag) \(largestBodyBytes): an upload of the largest allowed body could never be buffered; raise it to at least \(largestBodyBytes)")
        }
        if c.maxEventBytes + 512 > c.logCapacityBytes / 4 {
            throw ValidationError("--max-event-bytes \(c.maxEventBytes) does not fit --log-capacity \(c.logCapacityBytes): an event may take at most a quarter of the ring")
        }
        if let text = c.upstream {
            // Checked here, so a bad URL is a usage error before anything starts.
            do {
                _ = try UpstreamURL.parse(text, passwordFromEnvironment: ServeOptions.env("UPSTREAM_PASSWORD"))
            } catch {
                throw ValidationError("--upstream \(text.contains("@") ? "(redacted)" : text): \(error)")
            }
        }
        return c
    }

    /// The flags that reproduce `config` in a child (the token travels in the environment,
    /// not in argv, where `ps` would show it).
    static func childArguments(_ c: GatewayConfig) -> [String] {
        var a = [
            "--listen", "\(c.listenHost):\(c.listenPort)",
            "--publish-listen", "\(c.publishHost):\(c.publishPort)",
            "--workers", "\(c.workers)",
            "--data-dir", c.dataDir,
            "--log-capacity", "\(c.logCapacityBytes)",
            "--max-event-bytes", "\(c.maxEventBytes)",
            "--max-limit", "\(c.maxLimit)",
            "--heartbeat", "\(c.heartbeatNanoseconds / 1_000_000)ms",
            "--send-timeout", "\(c.sendTimeoutNanoseconds / 1_000_000)ms",
            "--header-timeout", "\(c.headerTimeoutNanoseconds / 1_000_000)ms",
            "--max-lifetime", "\(c.maxLifetimeNanoseconds / 1_000_000)ms",
            "--max-connections", "\(c.maxConnections)",
            "--lag-policy", c.lagPolicy.rawValue,
            "--max-slots", "\(c.maxSlots)",
            "--max-batch-bytes", "\(c.maxBatchBytes)",
            "--max-subscribers-per-slot", "\(c.maxSubscribersPerSlot)",
            "--max-slots-per-stream", "\(c.maxSlotsPerStream)",
            "--tcp-keepalive", c.tcpKeepaliveNanoseconds == 0 ? "0" : "\(c.tcpKeepaliveNanoseconds / 1_000_000)ms",
            "--tcp-user-timeout", c.tcpUserTimeoutNanoseconds == 0 ? "0" : "\(c.tcpUserTimeoutNanoseconds / 1_000_000)ms",
            // MARK: SUPERVISOR + BROWSERS
            "--watchdog-timeout", c.watchdogTimeoutNanoseconds == 0 ? "0" : "\(c.watchdogTimeoutNanoseconds / 1_000_000)ms",
            "--cors-origins", c.corsOrigins.flagValue,
            "--ws-origins", c.webSocketOrigins.flagValue,
            // MARK: HTTP limits (issue 10, items 7-11)
            "--max-pending-body-bytes", "\(c.maxPendingBodyBytes)",
            "--body-timeout", "\(c.bodyTimeoutNanoseconds / 1_000_000)ms",
            "--max-pipelined-requests", "\(c.maxPipelinedRequests)",
            "--max-response-queue-bytes", "\(c.maxResponseQueueBytes)",
            "--admin-reserve-connections", "\(c.adminReserveConnections)",
            "--send-buffers", "\(c.sendBuffers)",
            "--shared-frames", "\(c.sharedFrames)",
            "--recv-buffers", "\(c.recvBuffers)",
            "--recv-buffer-bytes", "\(c.recvBufferBytes)",
            "--ingest-max-connections", "\(c.ingestMaxConnections)",
            "--ingest-recv-buffer-bytes", "\(c.ingestRecvBufferBytes)",
            "--ingest-send-buffers", "\(c.ingestSendBuffers)",
            "--max-batch-events", "\(c.maxBatchEvents)",
            "--ring-entries", "\(c.ringEntries)",
            "--io", c.io.rawValue,
        ]
        // MARK: DRAIN (issue 13)
        a += ["--drain-delay", "\(c.drainDelayNanoseconds / 1_000_000)ms", "--drain-spread", "\(c.drainSpreadNanoseconds / 1_000_000)ms"]
        // MARK: STATUS PAGE (issue 14)
        a += ["--status-page", c.statusPage ? "true" : "false", "--max-status-streams", "\(c.maxStatusStreamsPerWorker)"]
        // MARK: AUTH (issue 14): file paths only; each child reads the keys itself.
        if c.usesJWT {
            a += ["--subscribe-auth", c.subscribeAuth.rawValue, "--publish-auth", c.publishAuth.rawValue,
                  "--jwt-leeway", "\(c.jwtLeewayNanoseconds / 1_000_000)ms"]
            let optional: [(String, String?)] = [
                ("--jwt-hs256-secret-file", c.jwtHS256SecretFile), ("--jwt-public-key-file", c.jwtPublicKeyFile),
                ("--jwks-file", c.jwksFile), ("--jwt-algorithms", c.jwtAlgorithms), ("--jwt-audience", c.jwtAudience),
                ("--jwt-issuer", c.jwtIssuer), ("--jwt-cookie", c.jwtCookie),
            ]
            for (flag, value) in optional { if let value { a += [flag, value] } }
        }
        // MARK: LOG
        a += ["--fsync", c.fsync.rawValue, "--fsync-interval", "\(c.fsyncIntervalNanoseconds / 1_000_000)ms"]
        if c.ephemeral { a.append("--ephemeral") }
        // MARK: CLUSTER (issue 12)
        if let upstream = c.upstream {
            a += ["--upstream", upstream, "--upstream-retain", "\(c.upstreamRetain)",
                  "--upstream-timeout", "\(c.upstreamTimeoutNanoseconds / 1_000_000)ms",
                  "--upstream-wait-replicas", "\(c.upstreamWaitReplicas)",
                  "--upstream-max-queued-events", "\(c.upstreamMaxQueuedEvents)"]
        }
        return a
    }
}

extension UpstreamURL {
    /// The URL for a child's argv: everything but the password (which goes in the environment).
    var renderedWithoutPassword: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let userPart = user.map { "\(percentEncoded($0))@" } ?? ""
        return "redis://\(userPart)\(hostPart):\(port)/\(db)?key=\(key)"
    }

    private func percentEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
