/// Writes Ringgate's subscriber messages as WebSocket text frames of JSON.
///
/// Three shapes, one JSON object per frame:
/// ```
/// {"id":"5f3a9c01-8","type":"message","data":"hi","time":1795310494123}     an event
/// {"id":"5f3a9c01-9","slot":"news","type":"message","data":"hi","time":…}   on a stream of several slots
/// {"event":"reset","reason":"lapped","oldest":ID|null,"head":ID|null,"dropped":N}
/// {"event":"close","reason":"shutdown"}                                      before closing
/// ```
/// An event object has the fields of a history entry; control messages are told apart by
/// their `event` key, which an event object never has. The event frame's exact length is
/// computable without writing it (`eventFrameLength`), so the caller can check buffer room.
public enum WebSocketMessageEncoder {
    /// The exact JSON length of an event object.
    /// `slot`: the event's slot, named on a stream of several slots (nil on a stream of one).
    public static func eventJSONLength(id: EventID, slot: UnsafeRawBufferPointer? = nil, type: UnsafeRawBufferPointer,
                                       data: UnsafeRawBufferPointer, timeMilliseconds: Int64) -> Int {
        // {"id":"  ","type":  ,"data":  ,"time":  }   (+ ,"slot":  after the id)
        let fixed = 7 + 9 + 8 + 8 + 1
        return fixed + id.length + JSONWriter.escapedLength(type) + JSONWriter.escapedLength(data)
            + decimalLength(timeMilliseconds) + (slot.map { 8 + JSONWriter.escapedLength($0) } ?? 0)
    }

    /// The exact length of the text frame carrying an event object.
    public static func eventFrameLength(id: EventID, slot: UnsafeRawBufferPointer? = nil, type: UnsafeRawBufferPointer,
                                        data: UnsafeRawBufferPointer, timeMilliseconds: Int64) -> Int {
        WebSocketFrameEncoder.frameLength(
            payloadLength: eventJSONLength(id: id, slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds))
    }

    /// An upper bound of `eventFrameLength` in O(1): every data byte escapes to at most 6.
    public static func maxEventFrameLength(slotBytes: Int = 0, typeBytes: Int, dataBytes: Int) -> Int {
        let json = 33 + EventID.maxLength + (2 + 6 * typeBytes) + (2 + 6 * dataBytes) + 20
            + (slotBytes > 0 ? 8 + 2 + 6 * slotBytes : 0)
        return WebSocketFrameEncoder.frameLength(payloadLength: json)
    }

    /// Writes an event as a text frame at `offset`; returns the bytes written (`eventFrameLength`).
    @discardableResult
    public static func writeEvent(id: EventID, slot: UnsafeRawBufferPointer? = nil, type: UnsafeRawBufferPointer,
                                  data: UnsafeRawBufferPointer, timeMilliseconds: Int64,
                                  into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let json = eventJSONLength(id: id, slot: slot, type: type, data: data, timeMilliseconds: timeMilliseconds)
        precondition(offset >= 0 && offset + WebSocketFrameEncoder.frameLength(payloadLength: json) <= out.count,
                     "WebSocket event frame does not fit")
        var o = offset + WebSocketFrameEncoder.writeHeader(opcode: .text, payloadLength: json, into: out, at: offset)
        let start = o
        o += SSEEncoder.copy("{\"id\":\"", into: out, at: o)
        o += id.write(into: out, at: o)
        if let slot {
            o += SSEEncoder.copy("\",\"slot\":", into: out, at: o)
            o += JSONWriter.writeString(slot, into: out, at: o)
            o += SSEEncoder.copy(",\"type\":", into: out, at: o)
        } else {
            o += SSEEncoder.copy("\",\"type\":", into: out, at: o)
        }
        o += JSONWriter.writeString(type, into: out, at: o)
        o += SSEEncoder.copy(",\"data\":", into: out, at: o)
        o += JSONWriter.writeString(data, into: out, at: o)
        o += SSEEncoder.copy(",\"time\":", into: out, at: o)
        if timeMilliseconds < 0 { out[o] = ASCII.minus; o += 1 }
        o += ASCII.writeDecimal(timeMilliseconds.magnitude, into: out, at: o)
        out[o] = 0x7D; o += 1  // }
        assert(o - start == json, "event JSON length mismatch")
        return o - offset
    }

    /// Builds an event text frame.
    public static func eventFrame(id: EventID, type: String, data: [UInt8], timeMilliseconds: Int64) -> [UInt8] {
        var type = type
        return type.withUTF8 { t in
            data.withUnsafeBytes { d in
                let t = UnsafeRawBufferPointer(t)
                var out = [UInt8](repeating: 0, count: eventFrameLength(id: id, type: t, data: d,
                                                                       timeMilliseconds: timeMilliseconds))
                out.withUnsafeMutableBytes { _ = writeEvent(id: id, type: t, data: d, timeMilliseconds: timeMilliseconds,
                                                            into: $0, at: 0) }
                return out
            }
        }
    }

    /// The JSON of a reset: `{"event":"reset","reason":…,"oldest":ID|null,"head":ID|null,"dropped":N|null}`,
    /// SSE's reset data with the `event` member in front.
    public static func resetJSON(reason: String, slot: ResetSlot = .omitted, oldest: EventID?, head: EventID?,
                                 dropped: UInt64?) -> [UInt8] {
        withEventMember("reset", SSEEncoder.resetJSON(reason: reason, slot: slot, oldest: oldest, head: head, dropped: dropped))
    }

    /// Builds the reset text frame: the cursor was overwritten (`lapped`) or is from another
    /// log (`epoch`); the stream goes on from the oldest retained event.
    public static func resetFrame(reason: String, slot: ResetSlot = .omitted, oldest: EventID?, head: EventID?,
                                  dropped: UInt64?) -> [UInt8] {
        WebSocketFrameEncoder.frame(opcode: .text,
                                    payload: resetJSON(reason: reason, slot: slot, oldest: oldest, head: head, dropped: dropped))
    }

    /// The JSON of a close notice: `{"event":"close","reason":…}` (and `"retry_ms":N` when
    /// the server asks for a reconnect delay).
    public static func closeJSON(reason: String, retryMilliseconds: UInt64? = nil) -> [UInt8] {
        withEventMember("close", SSEEncoder.closeJSON(reason: reason, retryMilliseconds: retryMilliseconds))
    }

    /// `{"event":NAME,` followed by the members of `object` (a JSON object's bytes).
    static func withEventMember(_ name: String, _ object: [UInt8]) -> [UInt8] {
        precondition(object.first == UInt8(ascii: "{") && object.count > 2)
        return Array("{\"event\":\"\(name)\",".utf8) + object.dropFirst()
    }

    /// Builds the close notice text frame, sent before the close frame of a server-side close
    /// (`shutdown`, `max_lifetime`, …), as SSE's `event: close`.
    public static func closeNoticeFrame(reason: String, retryMilliseconds: UInt64? = nil) -> [UInt8] {
        WebSocketFrameEncoder.frame(opcode: .text, payload: closeJSON(reason: reason, retryMilliseconds: retryMilliseconds))
    }

    private static func decimalLength(_ value: Int64) -> Int {
        (value < 0 ? 1 : 0) + ASCII.decimalDigitCount(value.magnitude)
    }
}
