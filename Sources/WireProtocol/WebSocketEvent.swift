/// What `WebSocketFrameDecoder` produces: a complete message, a control frame, or an error.
public enum WebSocketEvent: Equatable, Sendable {
    /// A complete text message, its UTF-8 validated (empty when the decoder discards payloads).
    case text([UInt8])
    /// A complete binary message (empty when the decoder discards payloads).
    case binary([UInt8])
    /// A ping; answer with a pong carrying the same payload.
    case ping([UInt8])
    /// An unsolicited or answering pong.
    case pong([UInt8])
    /// The peer's close frame: `code` is `nil` for an empty close payload. The decoder accepts
    /// no more frames after it; reply with a close frame (echoing `code`, or 1000) and close.
    case close(code: UInt16?, reason: String)
    /// The peer broke the protocol: send a close frame with `closeCode` and close. The decoder
    /// is dead.
    case protocolError(closeCode: UInt16, reason: String)
}
