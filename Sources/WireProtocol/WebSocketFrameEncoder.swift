/// Writes server-to-client WebSocket frames (unmasked, RFC 6455 §5.2) into caller buffers.
///
/// Every `write…` has an exact `…Length` so the caller can check room first; writes assert
/// the room with a precondition. Frames are written whole (FIN set) unless `fin` says otherwise.
public enum WebSocketFrameEncoder {
    /// The largest control frame payload (ping, pong, close).
    public static let maxControlPayloadBytes = 125

    /// The header length of a server frame with `payloadLength` bytes: 2, 4 or 10.
    @inlinable
    public static func headerLength(payloadLength: Int) -> Int {
        precondition(payloadLength >= 0, "negative payload length")
        if payloadLength <= 125 { return 2 }
        if payloadLength <= 0xFFFF { return 4 }
        return 10
    }

    /// The length of a whole frame with `payloadLength` bytes of payload.
    @inlinable
    public static func frameLength(payloadLength: Int) -> Int {
        headerLength(payloadLength: payloadLength) + payloadLength
    }

    /// Writes a frame header at `offset`; returns the bytes written (`headerLength`).
    @discardableResult
    public static func writeHeader(opcode: WebSocketOpcode, fin: Bool = true, payloadLength: Int,
                                   into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let n = headerLength(payloadLength: payloadLength)
        precondition(offset >= 0 && offset + n <= out.count, "WebSocket header does not fit")
        precondition(!opcode.isControl || (fin && payloadLength <= maxControlPayloadBytes),
                     "control frames are unfragmented with at most 125 bytes")
        out[offset] = (fin ? 0x80 : 0) | opcode.rawValue
        switch n {
        case 2:
            out[offset + 1] = UInt8(payloadLength)
        case 4:
            out[offset + 1] = 126
            out[offset + 2] = UInt8(truncatingIfNeeded: payloadLength >> 8)
            out[offset + 3] = UInt8(truncatingIfNeeded: payloadLength)
        default:
            out[offset + 1] = 127
            let length = UInt64(payloadLength)
            for i in 0..<8 {
                out[offset + 2 + i] = UInt8(truncatingIfNeeded: length >> (56 - 8 * UInt64(i)))
            }
        }
        return n
    }

    /// Writes a whole frame at `offset`; returns the bytes written (`frameLength`).
    ///
    /// Text payloads must be valid UTF-8; the encoder does not check (event data is validated
    /// on publish).
    @discardableResult
    public static func writeFrame(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, fin: Bool = true,
                                  into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        precondition(offset >= 0 && offset + frameLength(payloadLength: payload.count) <= out.count,
                     "WebSocket frame does not fit")
        let h = writeHeader(opcode: opcode, fin: fin, payloadLength: payload.count, into: out, at: offset)
        return h + SSEEncoder.copy(payload, into: out, at: offset + h)
    }

    /// Builds a whole frame.
    public static func frame(opcode: WebSocketOpcode, payload: [UInt8], fin: Bool = true) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: frameLength(payloadLength: payload.count))
        out.withUnsafeMutableBytes { o in
            payload.withUnsafeBytes { _ = writeFrame(opcode: opcode, payload: $0, fin: fin, into: o, at: 0) }
        }
        return out
    }

    // MARK: Close

    /// The length of a close frame: 2 bytes, or 4 + the reason with a code.
    @inlinable
    public static func closeFrameLength(code: UInt16?, reasonLength: Int) -> Int {
        precondition(code != nil || reasonLength == 0, "a close reason needs a code")
        precondition(reasonLength <= WebSocketCloseCode.maxReasonBytes, "close reason over 123 bytes")
        return code == nil ? 2 : 2 + 2 + reasonLength
    }

    /// Writes a close frame at `offset`: empty without `code`, else the code and `reason`
    /// (UTF-8, at most 123 bytes). Returns the bytes written.
    @discardableResult
    public static func writeClose(code: UInt16?, reason: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                                  into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let n = closeFrameLength(code: code, reasonLength: reason.count)
        precondition(offset >= 0 && offset + n <= out.count, "close frame does not fit")
        let h = writeHeader(opcode: .close, payloadLength: n - 2, into: out, at: offset)
        guard let code else { return h }
        out[offset + h] = UInt8(truncatingIfNeeded: code >> 8)
        out[offset + h + 1] = UInt8(truncatingIfNeeded: code)
        return h + 2 + SSEEncoder.copy(reason, into: out, at: offset + h + 2)
    }

    /// Builds a close frame; a `reason` over 123 bytes is cut at a UTF-8 boundary.
    public static func closeFrame(code: UInt16?, reason: String = "") -> [UInt8] {
        var r = Array(reason.utf8)
        if r.count > WebSocketCloseCode.maxReasonBytes {
            var end = WebSocketCloseCode.maxReasonBytes
            while end > 0 && r[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a code point
            r.removeSubrange(end...)
        }
        var out = [UInt8](repeating: 0, count: closeFrameLength(code: code, reasonLength: r.count))
        out.withUnsafeMutableBytes { o in r.withUnsafeBytes { _ = writeClose(code: code, reason: $0, into: o, at: 0) } }
        return out
    }
}
