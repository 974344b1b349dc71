@testable import WireProtocol

/// A client-side (masked) frame encoder, the mirror of the server's, for feeding the decoder.
enum ClientFrame {
    /// Builds one masked frame. `rsv` sets RSV bits; `lengthForm` forces the 16- or 64-bit
    /// length encoding; `masked: false` leaves the mask bit clear.
    static func make(opcode: UInt8, payload: [UInt8], fin: Bool = true, mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D],
                     masked: Bool = true, rsv: UInt8 = 0, lengthForm: Int? = nil) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
        let n = payload.count
        let form = lengthForm ?? (n <= 125 ? 7 : n <= 0xFFFF ? 16 : 64)
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch form {
        case 7: out.append(maskBit | UInt8(n))
        case 16: out.append(maskBit | 126); out.append(UInt8(n >> 8)); out.append(UInt8(n & 0xFF))
        default:
            out.append(maskBit | 127)
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: UInt64(n) >> (56 - 8 * UInt64(i)))) }
        }
        if masked {
            out += mask
            for (i, b) in payload.enumerated() { out.append(b ^ mask[i & 3]) }
        } else {
            out += payload
        }
        return out
    }

    static func text(_ s: String, fin: Bool = true) -> [UInt8] { make(opcode: 1, payload: Array(s.utf8), fin: fin) }
    static func binary(_ b: [UInt8], fin: Bool = true) -> [UInt8] { make(opcode: 2, payload: b, fin: fin) }
    static func continuation(_ b: [UInt8], fin: Bool = true) -> [UInt8] { make(opcode: 0, payload: b, fin: fin) }
    static func ping(_ b: [UInt8] = []) -> [UInt8] { make(opcode: 9, payload: b) }
    static func pong(_ b: [UInt8] = []) -> [UInt8] { make(opcode: 10, payload: b) }
    static func close(_ code: UInt16?, _ reason: [UInt8] = []) -> [UInt8] {
        guard let code else { return make(opcode: 8, payload: []) }
        return make(opcode: 8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + reason)
    }
}

/// Feeds `chunks` in order as an event loop does (re-feeding what was not consumed) and
/// returns every event, stopping after a close or an error.
func decodeAll(_ chunks: [[UInt8]], maxMessageBytes: Int = WebSocketFrameDecoder.defaultMaxMessageBytes,
               keepsDataPayloads: Bool = true) -> [WebSocketEvent] {
    var decoder = WebSocketFrameDecoder(maxMessageBytes: maxMessageBytes, keepsDataPayloads: keepsDataPayloads)
    var events: [WebSocketEvent] = []
    for chunk in chunks {
        var offset = 0
        while offset < chunk.count {
            let (consumed, event) = chunk.withUnsafeBytes { decoder.decode(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            precondition(consumed >= 0 && offset + consumed <= chunk.count)
            offset += consumed
            guard let event else {
                if decoder.isClosed { return events }
                precondition(offset == chunk.count, "nil event with bytes left")
                break
            }
            events.append(event)
            switch event {
            case .close, .protocolError: return events
            default: break
            }
        }
    }
    return events
}

/// The close code of the first protocol error in `events`, if any.
func errorCode(_ events: [WebSocketEvent]) -> UInt16? {
    for case .protocolError(let code, _) in events { return code }
    return nil
}
