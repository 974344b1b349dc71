/// The frame opcodes of RFC 6455 §5.2; every other value is reserved and a protocol error.
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Whether this is a control opcode (close, ping, pong): FIN set, payload ≤ 125 bytes.
    @inlinable
    public var isControl: Bool { rawValue & 0x8 != 0 }
}
