import WireProtocol

/// Decodes the input whole and split at points taken from its first bytes; the two event
/// sequences must be equal, and no input may crash the decoder.
///
/// Byte 0 picks the message limit (so 1009 paths are reached with short inputs) and whether
/// data payloads are kept; bytes 1–2 pick the split points; the rest is the frame stream.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 3 else { return 0 }
    let maxMessageBytes = [0, 1, 125, 126, 1000, 65536][Int(data[0] & 0x7) % 6]
    let keeps = data[0] & 0x80 == 0
    let stream = UnsafeRawBufferPointer(start: data + 3, count: size - 3)
    let a = Int(data[1]) * stream.count / 256
    let b = a + Int(data[2]) * (stream.count - a) / 256
    let whole = decode([stream], maxMessageBytes: maxMessageBytes, keeps: keeps)
    let split = decode([UnsafeRawBufferPointer(rebasing: stream[0..<a]),
                        UnsafeRawBufferPointer(rebasing: stream[a..<b]),
                        UnsafeRawBufferPointer(rebasing: stream[b...])],
                       maxMessageBytes: maxMessageBytes, keeps: keeps)
    if whole != split {
        fatalError("split at \(a), \(b) changed the events: \(whole) vs \(split)")
    }
    return 0
}

func decode(_ chunks: [UnsafeRawBufferPointer], maxMessageBytes: Int, keeps: Bool) -> [WebSocketEvent] {
    var decoder = WebSocketFrameDecoder(maxMessageBytes: maxMessageBytes, keepsDataPayloads: keeps)
    var events: [WebSocketEvent] = []
    for chunk in chunks {
        var offset = 0
        while offset < chunk.count {
            let (consumed, event) = decoder.decode(UnsafeRawBufferPointer(rebasing: chunk[offset...]))
            precondition(consumed >= 0 && consumed <= chunk.count - offset, "consumed out of range")
            offset += consumed
            guard let event else {
                if decoder.isClosed { return events }
                precondition(offset == chunk.count, "no event but bytes left")
                break
            }
            switch event {
            case .text(let m): precondition(keeps || m.isEmpty); precondition(m.count <= maxMessageBytes)
                precondition(UTF8Validator.isValid(m), "invalid UTF-8 text delivered")
            case .binary(let m): precondition(keeps || m.isEmpty); precondition(m.count <= maxMessageBytes)
            case .ping(let p), .pong(let p): precondition(p.count <= 125)
            case .close(let code, _): precondition(code.map(WebSocketCloseCode.isValidOnWire) ?? true)
            case .protocolError: break
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
