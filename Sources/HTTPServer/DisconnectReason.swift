import RingLog

/// Why the server ended a connection; each one has its own `disconnects_total{reason}` count.
public enum DisconnectReason: String, CaseIterable, Sendable {
    case slowConsumer = "slow_consumer"
    case sendTimeout = "send_timeout"
    case halfOpen = "half_open"
    case headerTimeout = "header_timeout"
    case bodyTimeout = "body_timeout"
    case maxLifetime = "max_lifetime"
    case peerClosed = "peer_closed"
    case shutdown = "shutdown"
    case overCapacity = "over_capacity"
    case protocolError = "protocol_error"
    /// The stream's token expired (`--subscribe-auth jwt`): the client reconnects with a new one.
    case tokenExpired = "token_expired"
    /// A plain HTTP exchange that ended normally (Connection: close, idle keep-alive): not counted.
    case completed = "completed"

    public var counter: LogCounter? {
        switch self {
        case .slowConsumer: .disconnectSlowConsumer
        case .sendTimeout: .disconnectSendTimeout
        case .halfOpen: .disconnectHalfOpen
        case .headerTimeout: .disconnectHeaderTimeout
        case .bodyTimeout: .disconnectBodyTimeout
        case .maxLifetime: .disconnectMaxLifetime
        case .peerClosed: .disconnectPeerClosed
        case .shutdown: .disconnectShutdown
        case .overCapacity: .disconnectOverCapacity
        case .protocolError: .disconnectProtocolError
        case .tokenExpired: .disconnectTokenExpired
        case .completed: nil
        }
    }
}
