import StreamPolicy

/// The settings every role shares, resolved once by the CLI from flags and `RINGGATE_*`
/// variables and handed to each child process as the same flags.
public struct GatewayConfig: Sendable, Equatable {
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
    public var upstream: String? = nil
    public var maxSlots = 65536
    public var maxBatchBytes = 16 << 20
    /// 0 = no limit. Split across workers like `maxConnections`.
    public var maxSubscribersPerSlot = 0
    /// TCP keepalive idle time on accepted sockets; 0 turns keepalive off.
    public var tcpKeepaliveNanoseconds: UInt64 = 60_000_000_000

    public init() {}

    /// Connections one worker admits: `--max-connections` split across workers.
    public var maxConnectionsPerWorker: Int { max(1, (maxConnections + workers - 1) / workers) }

    public var maxSubscribersPerSlotPerWorker: Int {
        maxSubscribersPerSlot == 0 ? 0 : max(1, (maxSubscribersPerSlot + workers - 1) / workers)
    }

    /// TCP_USER_TIMEOUT on accepted sockets: a backstop a little after the send timeout, so
    /// the server's own check (which tells a stopped reader from a vanished peer) acts first.
    public var tcpUserTimeoutMilliseconds: UInt32 {
        UInt32(min((sendTimeoutNanoseconds + 5_000_000_000) / 1_000_000, UInt64(UInt32.max)))
    }

    public var logPath: String { dataDir.hasSuffix("/") ? dataDir + "ring.log" : dataDir + "/ring.log" }
}
