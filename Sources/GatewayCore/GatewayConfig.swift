import IO
import StreamPolicy
import WireProtocol

/// The settings every role shares, resolved once by the CLI from flags and `RINGGATE_*`
/// variables and handed to each child process as the same flags.
public struct GatewayConfig: Sendable, Equatable {
    /// The kernel interface of every loop (`--io`); the supervisor resolves `auto` once.
    public var io = IOBackendChoice.auto
    public var listenHost = "0.0.0.0"
    public var listenPort = 8080
    public var publishHost = "127.0.0.1"
    public var publishPort = 8081
    public var workers = 1
    public var dataDir = "./ringgate-data"
    public var ephemeral = false
    public var logCapacityBytes = 256 << 20
    public var maxEventBytes = 64 << 10
    public var maxLimit = 1000
    public var heartbeatNanoseconds: UInt64 = 15_000_000_000
    public var sendTimeoutNanoseconds: UInt64 = 10_000_000_000
    public var headerTimeoutNanoseconds: UInt64 = 10_000_000_000
    public var maxLifetimeNanoseconds: UInt64 = 24 * 3600 * 1_000_000_000
    public var maxConnections = 100_000
    public var lagPolicy = LagPolicy.resync
    public var publishToken: String? = nil
    /// `--upstream redis://…?key=NAME`: cluster mode; nil = single host.
    public var upstream: String? = nil
    // MARK: CLUSTER (issue 12)
    /// `MAXLEN ~` of the cluster's stream (`--upstream-retain`).
    public var upstreamRetain = 1_000_000
    /// A publish Redis has not answered this long gets 503 (`--upstream-timeout`); also the
    /// connect and command timeout of both Redis connections.
    public var upstreamTimeoutNanoseconds: UInt64 = 2_000_000_000
    /// `WAIT N` after each publish before it is acknowledged (`--upstream-wait-replicas`); 0 = off.
    public var upstreamWaitReplicas = 0
    /// Events submitted to Redis and not yet answered, at most (`--upstream-max-queued-events`).
    public var upstreamMaxQueuedEvents = 100_000
    /// Entries per `XREAD` of the tail (`COUNT`).
    public var upstreamTailBatch = 1000
    /// A host behind the cluster whose head has not moved this long is `stalled` (/readyz 503).
    public var upstreamStallNanoseconds: UInt64 = 5_000_000_000
    public var isCluster: Bool { upstream != nil }
    public var maxSlots = 65536
    public var maxBatchBytes = 16 << 20
    /// 0 = no limit. Split across workers like `maxConnections`.
    public var maxSubscribersPerSlot = 0
    /// Slots one stream (`/v1/stream?slot=…`, `/v1/ws?slot=…`) or history pull may name.
    public var maxSlotsPerStream = 16
    /// TCP keepalive idle time on accepted sockets; 0 turns keepalive off.
    public var tcpKeepaliveNanoseconds: UInt64 = 60_000_000_000
    /// TCP_USER_TIMEOUT on accepted sockets; 0 leaves the kernel's default. Off by default:
    /// Linux does not restart this timer while a receiver reopens a shut window a little at a
    /// time, so it aborts slow clients that are alive. The send-progress check (kernel
    /// counters, `sendTimeoutNanoseconds`) is what reaps stalled and vanished peers.
    public var tcpUserTimeoutNanoseconds: UInt64 = 0
    // MARK: SUPERVISOR + BROWSERS
    /// A child whose loop has not turned for this long is killed and restarted; 0 = off.
    public var watchdogTimeoutNanoseconds: UInt64 = 10_000_000_000
    /// Origins whose pages may read subscriber responses (CORS); default any.
    public var corsOrigins = OriginList.any
    /// Origins allowed to open a WebSocket; default any.
    public var webSocketOrigins = OriginList.any

    // MARK: LOG
    /// When the ingest flushes the log file to disk (README, Durability). File-backed logs only.
    public var fsync = FsyncMode.none
    /// `--fsync interval`: how often the background flusher runs while the log moved.
    public var fsyncIntervalNanoseconds: UInt64 = 1_000_000_000
    // MARK: HTTP limits (issue 10, items 7-11)
    /// Body bytes the ingest buffers across all uploads in progress; over → 503.
    public var maxPendingBodyBytes = 64 << 20
    /// A request body that makes no progress this long gets 408.
    public var bodyTimeoutNanoseconds: UInt64 = 10_000_000_000
    /// Requests per connection answered but not yet sent before its input is paused.
    public var maxPipelinedRequests = 32
    /// Response bytes per connection queued before its input is paused.
    public var maxResponseQueueBytes = 4 << 20
    /// Connections per worker past --max-connections for /healthz, /readyz and /metrics only.
    public var adminReserveConnections = 16
    /// Pooled send buffers per worker (capped by its connection table).
    public var sendBuffers = 4096
    /// Fan-out frames per worker kept once for all the streams with nothing pending (each up
    /// to the engine's `sharedFrameBytes`, 4 KiB); 0 = every stream copies its frame into its
    /// send buffer.
    public var sharedFrames = 256
    /// Provided receive buffers per process (a power of two) and the workers' buffer size.
    public var recvBuffers = 256
    public var recvBufferBytes = 4096
    /// The ingest's connection table, receive buffer size and send buffers.
    public var ingestMaxConnections = 4096
    public var ingestRecvBufferBytes = 64 << 10
    public var ingestSendBuffers = 64
    /// Lines of one NDJSON batch (`POST /v1/events`).
    public var maxBatchEvents = 1_000_000
    /// io_uring submission-queue entries per process (a power of two).
    public var ringEntries = 4096

    // MARK: DRAIN (issue 13)
    /// After SIGTERM, /readyz answers 503 at once and the host goes on serving this long, so
    /// the load balancer stops sending it new clients before its streams close (0 = no delay).
    public var drainDelayNanoseconds: UInt64 = 5_000_000_000
    /// The streams' closing `retry:` is drawn from 0...this, so their reconnects spread out
    /// instead of landing on the other hosts at once.
    public var drainSpreadNanoseconds: UInt64 = 5_000_000_000

    // MARK: STATUS PAGE (issue 14)
    /// `GET /` serves the live status page and `GET /v1/status/stream` its stats stream.
    public var statusPage = true
    /// Stats streams one worker serves at once (the page's viewers); over it: 503, counted.
    public var maxStatusStreamsPerWorker = 64
    // MARK: AUTH (issue 14)
    /// `--subscribe-auth`: whether stream, WebSocket and history requests need a JWT.
    public var subscribeAuth = SubscribeAuthMode.none
    /// `--publish-auth`: token (only `--publish-token`, when set) or jwt (also a JWT whose
    /// `publish` claim names the slots), verified with the same key files.
    public var publishAuth = PublishAuthMode.token
    /// Key files (paths only: each process reads them; the bytes never travel in argv).
    public var jwtHS256SecretFile: String? = nil
    public var jwtPublicKeyFile: String? = nil
    public var jwksFile: String? = nil
    /// `--jwt-algorithms` as given (`HS256,ES256`); nil = the algorithms of the configured keys.
    public var jwtAlgorithms: String? = nil
    public var jwtAudience: String? = nil
    public var jwtIssuer: String? = nil
    /// `--jwt-cookie NAME`: the cookie a token may also come in.
    public var jwtCookie: String? = nil
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    public var jwtLeewayNanoseconds: UInt64 = 30_000_000_000

    public init() {}

    /// Connections one worker admits: `--max-connections` split across workers.
    public var maxConnectionsPerWorker: Int { max(1, (maxConnections + workers - 1) / workers) }

    /// Entries of the shared per-slot admission table: distinct slot names with streams.
    public var admissionTableEntries: Int { min(1 << 20, max(1024, 2 * maxSlots)) }

    public var logPath: String { dataDir.hasSuffix("/") ? dataDir + "ring.log" : dataDir + "/ring.log" }
}

// MARK: AUTH (issue 14)
/// `--subscribe-auth`: none (anyone may subscribe) or jwt (a signed token naming the slot).
public enum SubscribeAuthMode: String, Sendable, Equatable, CaseIterable {
    case none, jwt
}

/// `--publish-auth`: token (the static `--publish-token`, or open when it is not set) or jwt
/// (a signed token whose `publish` claim names the slots; `--publish-token` still works beside it).
public enum PublishAuthMode: String, Sendable, Equatable, CaseIterable {
    case token, jwt
}

// MARK: LOG
/// `--fsync`: none (the kernel writes back on its own), interval (a background flush every
/// `fsyncIntervalNanoseconds`), always (a publish is answered only after its bytes are on disk).
public enum FsyncMode: String, Sendable, Equatable, CaseIterable {
    case none, interval, always
}
