/// An incremental decoder of client-to-server WebSocket frames (RFC 6455 §5), as a server sees
/// them: every frame must be masked, no extension is negotiated.
///
/// Feed it the bytes as they arrive. Each call returns at most one event with the bytes it
/// consumed; call again with the rest while `consumed` is short of the input:
///
/// ```swift
/// var offset = 0
/// while offset < received.count {
///     let (consumed, event) = decoder.decode(UnsafeRawBufferPointer(rebasing: received[offset...]))
///     offset += consumed
///     guard let event else { break }   // all consumed (needs more), or closed
///     handle(event)                     // stop reading after .close / .protocolError
/// }
/// ```
///
/// A split anywhere (inside a header, the mask, a payload, a UTF-8 sequence) decodes the same.
/// State is bounded: up to 14 header bytes are counted, not kept, control payloads are at most
/// 125 bytes and a data message at most `maxMessageBytes` (none with `keepsDataPayloads`
/// false). Text is validated as it arrives, so an invalid UTF-8 prefix fails at once.
///
/// After `.close` the decoder is closed: it consumes nothing more and returns no event. After
/// `.protocolError` it is dead and returns the same error with nothing consumed.
public struct WebSocketFrameDecoder: Sendable {
    /// The default `maxMessageBytes`, 64 KiB.
    public static let defaultMaxMessageBytes = 64 * 1024

    /// The largest data message (all of its fragments) accepted; larger is close code 1009.
    public let maxMessageBytes: Int
    /// Whether `.text` and `.binary` carry their payloads. With `false` messages are still
    /// unmasked, size-checked and (text) UTF-8 validated but not buffered, and arrive empty:
    /// for endpoints that ignore what clients send.
    public let keepsDataPayloads: Bool

    private enum State: Sendable {
        case header
        case payload
        case closed
        case dead(closeCode: UInt16, reason: String)
    }

    private var state: State = .header

    // The frame being read. The header is parsed byte by byte as it arrives, so nothing of it
    // needs keeping beyond these fields.
    private var headerCount = 0
    private var headerLength = 2
    private var fin = false
    private var opcode: WebSocketOpcode = .continuation
    private var payloadLength: UInt64 = 0
    private var payloadRemaining: UInt64 = 0
    /// Masking key byte i in bits 8i..<8i+8, so XOR with a little-endian load unmasks.
    private var maskKey: UInt32 = 0

    // The data message being assembled across fragments.
    private var messageOpcode: WebSocketOpcode?  // .text or .binary while a message is open
    private var messageBytes = 0
    private var message: [UInt8] = []
    private var utf8 = WebSocketUTF8Validator()

    // The control frame being read (≤ 125 bytes).
    private var control: [UInt8] = []

    /// Creates a decoder at the start of a connection's frame stream.
    public init(maxMessageBytes: Int = WebSocketFrameDecoder.defaultMaxMessageBytes, keepsDataPayloads: Bool = true) {
        precondition(maxMessageBytes >= 0, "negative maxMessageBytes")
        self.maxMessageBytes = maxMessageBytes
        self.keepsDataPayloads = keepsDataPayloads
    }

    /// Whether the peer's close frame was decoded.
    public var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// Whether the decoder is dead after a protocol error.
    public var isDead: Bool {
        if case .dead = state { return true }
        return false
    }

    /// Whether part of a frame or of a fragmented message has arrived but not all of it.
    public var hasPartialMessage: Bool {
        switch state {
        case .header: return headerCount > 0 || messageOpcode != nil
        case .payload: return true
        case .closed, .dead: return false
        }
    }

    /// Decodes from `bytes` up to the end of the next event.
    ///
    /// Returns the bytes consumed and the event, or `nil` when every byte was consumed without
    /// completing one (more are needed), or when the decoder is closed (nothing consumed).
    public mutating func decode(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, event: WebSocketEvent?) {
        let n = bytes.count
        var i = 0
        while true {
            switch state {
            case .dead(let closeCode, let reason):
                return (0, .protocolError(closeCode: closeCode, reason: reason))
            case .closed:
                return (i, nil)
            case .header:
                guard i < n else { return (i, nil) }
                let b = bytes[i]
                i += 1
                if let error = headerByte(b) { return (i, error) }
                if headerCount == headerLength {
                    state = .payload
                    payloadRemaining = payloadLength
                    if payloadLength == 0, let event = endFrame() { return (i, event) }
                }
            case .payload:
                guard i < n else { return (i, nil) }
                let take = Int(min(payloadRemaining, UInt64(n - i)))
                let piece = UnsafeRawBufferPointer(rebasing: bytes[i..<i + take])
                i += take
                if let error = payload(piece) { return (i, error) }
                payloadRemaining -= UInt64(take)
                if payloadRemaining == 0, let event = endFrame() { return (i, event) }
            }
        }
    }

    /// Decodes from `bytes`; see the pointer form.
    public mutating func decode(_ bytes: [UInt8]) -> (consumed: Int, event: WebSocketEvent?) {
        bytes.withUnsafeBytes { decode($0) }
    }

    // MARK: Header

    /// Takes one header byte; returns a protocol error event when the frame is refused.
    private mutating func headerByte(_ b: UInt8) -> WebSocketEvent? {
        let index = headerCount
        headerCount += 1
        switch index {
        case 0:
            fin = b & 0x80 != 0
            guard b & 0x70 == 0 else { return fail(WebSocketCloseCode.protocolError, "reserved bits set without an extension") }
            guard let op = WebSocketOpcode(rawValue: b & 0x0F) else {
                return fail(WebSocketCloseCode.protocolError, "reserved opcode \(b & 0x0F)")
            }
            opcode = op
            if op.isControl {
                guard fin else { return fail(WebSocketCloseCode.protocolError, "fragmented control frame") }
            } else if op == .continuation {
                guard messageOpcode != nil else {
                    return fail(WebSocketCloseCode.protocolError, "continuation frame without a message to continue")
                }
            } else {
                guard messageOpcode == nil else {
                    return fail(WebSocketCloseCode.protocolError, "new data frame inside a fragmented message")
                }
                messageOpcode = op
                utf8.reset()
            }
        case 1:
            guard b & 0x80 != 0 else { return fail(WebSocketCloseCode.protocolError, "unmasked client frame") }
            let length7 = b & 0x7F
            if opcode.isControl && length7 > 125 {
                return fail(WebSocketCloseCode.protocolError, "control frame payload over 125 bytes")
            }
            switch length7 {
            case 126: headerLength = 2 + 2 + 4
            case 127: headerLength = 2 + 8 + 4
            default:
                headerLength = 2 + 4
                payloadLength = UInt64(length7)
                return checkLength()
            }
            payloadLength = 0
        default:
            let maskStart = headerLength - 4
            if index < maskStart {
                payloadLength = payloadLength << 8 | UInt64(b)
                if index == maskStart - 1 {
                    if headerLength == 14 && payloadLength >> 63 != 0 {
                        return fail(WebSocketCloseCode.protocolError, "64-bit payload length with the top bit set")
                    }
                    return checkLength()
                }
            } else {
                maskKey |= UInt32(b) << (8 * UInt32(index - maskStart))
            }
        }
        return nil
    }

    /// Refuses a data frame that would take the message over `maxMessageBytes`, once its
    /// length is known: before its payload arrives.
    private mutating func checkLength() -> WebSocketEvent? {
        guard !opcode.isControl else { return nil }
        let room = UInt64(maxMessageBytes - messageBytes)
        guard payloadLength <= room else {
            return fail(WebSocketCloseCode.messageTooBig, "message over \(maxMessageBytes) bytes")
        }
        // Reserve the announced frame at once, growing at least geometrically so that a
        // message of many small fragments is not copied once per fragment.
        let needed = messageBytes + Int(payloadLength)
        if keepsDataPayloads && needed > message.capacity {
            message.reserveCapacity(min(maxMessageBytes, max(needed, 2 * message.capacity)))
        }
        return nil
    }

    // MARK: Payload

    /// Unmasks one piece of the current frame's payload into the control or message buffer.
    private mutating func payload(_ piece: UnsafeRawBufferPointer) -> WebSocketEvent? {
        let position = payloadLength - payloadRemaining
        if opcode.isControl {
            let start = control.count
            control.append(contentsOf: piece)
            control.withUnsafeMutableBytes {
                WebSocketFrameDecoder.unmask(piece, into: UnsafeMutableRawBufferPointer(rebasing: $0[start...]),
                                             key: maskKey, position: position)
            }
            return nil
        }
        let isText = messageOpcode == .text
        messageBytes += piece.count
        if keepsDataPayloads {
            let start = message.count
            message.append(contentsOf: piece)
            let valid = message.withUnsafeMutableBytes { raw -> Bool in
                let tail = UnsafeMutableRawBufferPointer(rebasing: raw[start...])
                WebSocketFrameDecoder.unmask(piece, into: tail, key: maskKey, position: position)
                return !isText || utf8.validate(UnsafeRawBufferPointer(tail))
            }
            if !valid { return fail(WebSocketCloseCode.invalidPayload, "text message is not valid UTF-8") }
        } else if isText {
            // Unmask through a small scratch buffer only to validate.
            let scratchBytes = 512
            var valid = true
            withUnsafeTemporaryAllocation(byteCount: scratchBytes, alignment: 8) { scratch in
                var offset = 0
                while offset < piece.count && valid {
                    let count = min(scratchBytes, piece.count - offset)
                    let out = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count])
                    WebSocketFrameDecoder.unmask(UnsafeRawBufferPointer(rebasing: piece[offset..<offset + count]),
                                                 into: out, key: maskKey, position: position + UInt64(offset))
                    valid = utf8.validate(UnsafeRawBufferPointer(out))
                    offset += count
                }
            }
            if !valid { return fail(WebSocketCloseCode.invalidPayload, "text message is not valid UTF-8") }
        }
        return nil
    }

    /// Writes `source` XOR the masking key into `out` (same count; may be the same memory).
    /// `position` is the offset of `source` in the frame's payload, which picks the key byte.
    static func unmask(_ source: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
                       key: UInt32, position: UInt64) {
        let n = source.count
        precondition(out.count >= n, "unmask output too small")
        guard n > 0, let src = source.baseAddress, let dst = out.baseAddress else { return }
        // Rotate so that key byte 0 lines up with source byte 0.
        let shift = UInt32(position & 3) * 8
        let k32 = shift == 0 ? key : key >> shift | key << (32 - shift)
        let k64 = UInt64(k32) | UInt64(k32) << 32
        var i = 0
        while i + 8 <= n {
            let word = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: i, as: UInt64.self)) ^ k64
            dst.storeBytes(of: word.littleEndian, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n {
            let k = UInt8(truncatingIfNeeded: k32 >> (UInt32(i & 3) * 8))
            dst.storeBytes(of: src.load(fromByteOffset: i, as: UInt8.self) ^ k, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    // MARK: Frame end

    /// Finishes the current frame; returns the event it completes, if any.
    private mutating func endFrame() -> WebSocketEvent? {
        let op = opcode
        let last = fin
        headerCount = 0
        headerLength = 2
        payloadLength = 0
        maskKey = 0
        state = .header
        switch op {
        case .ping: return .ping(takeControl())
        case .pong: return .pong(takeControl())
        case .close: return closeFrame(takeControl())
        case .text, .binary, .continuation:
            guard last else { return nil }
            let kind = messageOpcode
            if kind == .text && !utf8.isComplete {
                return fail(WebSocketCloseCode.invalidPayload, "text message ends inside a UTF-8 sequence")
            }
            var payload: [UInt8] = []
            swap(&payload, &message)
            messageOpcode = nil
            messageBytes = 0
            return kind == .text ? .text(payload) : .binary(payload)
        }
    }

    private mutating func takeControl() -> [UInt8] {
        var payload: [UInt8] = []
        swap(&payload, &control)
        return payload
    }

    private mutating func closeFrame(_ payload: [UInt8]) -> WebSocketEvent {
        if payload.isEmpty {
            state = .closed
            return .close(code: nil, reason: "")
        }
        guard payload.count >= 2 else { return fail(WebSocketCloseCode.protocolError, "close payload of 1 byte") }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        guard WebSocketCloseCode.isValidOnWire(code) else {
            return fail(WebSocketCloseCode.protocolError, "invalid close code \(code)")
        }
        let reason = payload[2...]
        guard reason.withUnsafeBytes({ UTF8Validator.isValid($0) }) else {
            return fail(WebSocketCloseCode.invalidPayload, "close reason is not valid UTF-8")
        }
        state = .closed
        return .close(code: code, reason: String(decoding: reason, as: UTF8.self))
    }

    private mutating func fail(_ closeCode: UInt16, _ reason: String) -> WebSocketEvent {
        state = .dead(closeCode: closeCode, reason: reason)
        message = []
        control = []
        return .protocolError(closeCode: closeCode, reason: reason)
    }
}
