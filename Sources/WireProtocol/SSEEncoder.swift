/// Encodes Server-Sent Events frames into caller-provided buffers.
///
/// An event is written as
/// ```
/// id: 5f3a9c01-8\n
/// event: message\n
/// data: first line\n
/// data: second line\n
/// \n
/// ```
/// Data is split into `data:` lines at `\n`, `\r\n` and a lone `\r`, since SSE treats all
/// three as line ends: a raw CR must never reach the client inside a line. The client joins
/// the lines with `\n`, so `\r\n` and `\r` in the data arrive as `\n`; everything else arrives
/// exactly. A non-empty line is written `data: text`; an empty line (empty data, a trailing
/// line break, two breaks in a row) is always written `data:` with no trailing space. Both
/// forms decode the same; the fixed choice makes lengths exact and output reproducible.
/// An empty `id` or `type` omits that line.
public enum SSEEncoder {
    /// `: hb\n\n`, the heartbeat comment.
    public static let heartbeat: [UInt8] = Array(": hb\n\n".utf8)

    /// The exact length of the frame `encodeEvent` writes for these sizes and data.
    public static func encodedLength(id idBytes: Int, type typeBytes: Int, data: UnsafeRawBufferPointer) -> Int {
        var n = 1  // the blank line that ends the event
        if idBytes > 0 { n += 5 + idBytes }      // "id: " + id + "\n"
        if typeBytes > 0 { n += 8 + typeBytes }  // "event: " + type + "\n"
        forEachLine(data) { start, end in
            n += end > start ? 7 + (end - start) : 6  // "data: " + line + "\n" or "data:\n"
        }
        return n
    }

    /// An upper bound of `encodedLength` for any data of `dataBytes` bytes.
    ///
    /// The worst case is data made only of line breaks: each byte then costs a `data:\n` line.
    public static func maxEncodedLength(idBytes: Int, typeBytes: Int, dataBytes: Int) -> Int {
        (5 + idBytes) + (8 + typeBytes) + 6 * (dataBytes + 1) + 1
    }

    /// Writes one event at `offset`; returns the bytes written (`encodedLength`).
    ///
    /// The caller guarantees room, e.g. by reserving `maxEncodedLength`.
    @discardableResult
    public static func encodeEvent(id: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
                                   data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
                                   at offset: Int) -> Int {
        // The O(1) worst-case bound usually proves the fit; only a tight buffer pays for an
        // exact count, which is a second pass over the data.
        precondition(offset >= 0, "negative offset")
        if offset + maxEncodedLength(idBytes: id.count, typeBytes: type.count, dataBytes: data.count) > out.count {
            precondition(offset + encodedLength(id: id.count, type: type.count, data: data) <= out.count,
                         "SSE event does not fit")
        }
        var o = offset
        if id.count > 0 {
            o += copy("id: ", into: out, at: o)
            o += copy(id, into: out, at: o)
            out[o] = ASCII.lf; o += 1
        }
        if type.count > 0 {
            o += copy("event: ", into: out, at: o)
            o += copy(type, into: out, at: o)
            out[o] = ASCII.lf; o += 1
        }
        forEachLine(data) { start, end in
            if end > start {
                o += copy("data: ", into: out, at: o)
                o += copy(UnsafeRawBufferPointer(rebasing: data[start..<end]), into: out, at: o)
            } else {
                o += copy("data:", into: out, at: o)
            }
            out[o] = ASCII.lf; o += 1
        }
        out[o] = ASCII.lf; o += 1
        return o - offset
    }

    /// Appends one event to `out`.
    public static func appendEvent(id: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
                                   data: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let start = out.count
        let n = encodedLength(id: id.count, type: type.count, data: data)
        out.append(contentsOf: repeatElement(0, count: n))
        out.withUnsafeMutableBytes { _ = encodeEvent(id: id, type: type, data: data, into: $0, at: start) }
    }

    /// Builds one event from an optional id, a type and data bytes.
    public static func event(id: EventID?, type: String, data: [UInt8]) -> [UInt8] {
        var idBytes: [UInt8] = []
        id?.append(to: &idBytes)
        var out: [UInt8] = []
        var type = type
        idBytes.withUnsafeBytes { i in
            type.withUTF8 { t in
                data.withUnsafeBytes { d in appendEvent(id: i, type: UnsafeRawBufferPointer(t), data: d, to: &out) }
            }
        }
        return out
    }

    // MARK: Comments and retry

    /// Writes `: hb\n\n` at `offset`; returns the bytes written.
    @discardableResult
    public static func writeHeartbeat(into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        precondition(offset >= 0 && offset + heartbeat.count <= out.count, "heartbeat does not fit")
        return heartbeat.withUnsafeBytes { copy($0, into: out, at: offset) }
    }

    /// Builds a comment frame `: text\n\n`; `text` must not contain a line break.
    public static func comment(_ text: String) -> [UInt8] {
        precondition(!text.utf8.contains(where: { $0 == ASCII.cr || $0 == ASCII.lf }), "line break in comment")
        return Array((": " + text + "\n\n").utf8)
    }

    /// The length of `retry: MS\n\n`.
    public static func retryLength(milliseconds: UInt64) -> Int {
        9 + ASCII.decimalDigitCount(milliseconds)
    }

    /// Writes `retry: MS\n\n` at `offset`; returns the bytes written.
    @discardableResult
    public static func writeRetry(milliseconds: UInt64, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        precondition(offset >= 0 && offset + retryLength(milliseconds: milliseconds) <= out.count,
                     "retry does not fit")
        var o = offset + copy("retry: ", into: out, at: offset)
        o += ASCII.writeDecimal(milliseconds, into: out, at: o)
        out[o] = ASCII.lf
        out[o + 1] = ASCII.lf
        return o + 2 - offset
    }

    /// Builds `retry: MS\n\n`, the reconnection delay a browser uses after a disconnect.
    public static func retry(milliseconds: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: retryLength(milliseconds: milliseconds))
        out.withUnsafeMutableBytes { _ = writeRetry(milliseconds: milliseconds, into: $0, at: 0) }
        return out
    }

    // MARK: Control events with JSON data

    /// Builds an event without an id whose data is one line of JSON (`reset`, `close`).
    ///
    /// No id: a control event must not move the client's `Last-Event-ID`.
    public static func jsonEvent(type: String, json: [UInt8]) -> [UInt8] {
        event(id: nil, type: type, data: json)
    }

    /// The JSON of a reset: `{"reason":…,"oldest":ID|null,"head":ID|null,"dropped":N|null}`. On a
    /// stream of several slots a `"slot"` member follows the reason (`slot`).
    public static func resetJSON(reason: String, slot: ResetSlot = .omitted, oldest: EventID?, head: EventID?,
                                 dropped: UInt64?) -> [UInt8] {
        var w = JSONWriter(capacity: 112)
        w.appendRaw("{\"reason\":")
        w.appendString(reason)
        switch slot {
        case .omitted:
            break
        case .named(let name):
            w.appendRaw(",\"slot\":")
            name.withUnsafeBytes { w.appendString($0) }
        case .wholeStream:
            w.appendRaw(",\"slot\":null")
        }
        w.appendRaw(",\"oldest\":")
        w.appendID(oldest)
        w.appendRaw(",\"head\":")
        w.appendID(head)
        w.appendRaw(",\"dropped\":")
        if let dropped { w.appendInt(dropped) } else { w.appendNull() }
        w.appendRaw("}")
        return w.bytes
    }

    /// Builds `event: reset` with `resetJSON` as its data.
    public static func resetEvent(reason: String, slot: ResetSlot = .omitted, oldest: EventID?, head: EventID?,
                                  dropped: UInt64?) -> [UInt8] {
        jsonEvent(type: "reset", json: resetJSON(reason: reason, slot: slot, oldest: oldest, head: head, dropped: dropped))
    }

    // MARK: Streams of several slots

    /// The `event:` name of an event on a stream of several slots: the slot's name when the
    /// event has the default type, `slot/type` otherwise (`/` is in neither name's charset), so
    /// an EventSource listens per slot (`addEventListener("news", …)`) without parsing data.
    public static func slotEventNameLength(slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer) -> Int {
        isDefaultType(type) ? slot.count : slot.count + 1 + type.count
    }

    /// Writes `slotEventNameLength` bytes at `offset`; returns how many.
    @discardableResult
    public static func writeSlotEventName(slot: UnsafeRawBufferPointer, type: UnsafeRawBufferPointer,
                                          into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        precondition(offset >= 0 && offset + slotEventNameLength(slot: slot, type: type) <= out.count,
                     "slot event name does not fit")
        var o = offset + copy(slot, into: out, at: offset)
        if !isDefaultType(type) {
            out[o] = ASCII.slash; o += 1
            o += copy(type, into: out, at: o)
        }
        return o - offset
    }

    static func isDefaultType(_ type: UnsafeRawBufferPointer) -> Bool {
        type.elementsEqual(EventType.defaultType.utf8)
    }

    /// The JSON of a close: `{"reason":…}`, with `"retry_ms":N` when the server asks for a
    /// reconnect delay (a drain's jittered one).
    public static func closeJSON(reason: String, retryMilliseconds: UInt64? = nil) -> [UInt8] {
        var w = JSONWriter(capacity: 48)
        w.appendRaw("{\"reason\":")
        w.appendString(reason)
        if let retryMilliseconds {
            w.appendRaw(",\"retry_ms\":")
            w.appendInt(retryMilliseconds)
        }
        w.appendRaw("}")
        return w.bytes
    }

    /// Builds `event: close` with `{"reason":…}` as its data, sent before a server-side close.
    /// With `retryMilliseconds`, a `retry:` field goes first, so an EventSource waits that long
    /// before it reconnects, and the data says it too, for clients that are not browsers.
    public static func closeEvent(reason: String, retryMilliseconds: UInt64? = nil) -> [UInt8] {
        let event = jsonEvent(type: "close", json: closeJSON(reason: reason, retryMilliseconds: retryMilliseconds))
        guard let retryMilliseconds else { return event }
        return Array("retry: \(retryMilliseconds)\n".utf8) + event
    }

    // MARK: Helpers

    /// Calls `body(start, end)` for each line of `data`, split at `\n`, `\r\n` and `\r`.
    ///
    /// Always at least one line: empty data is one empty line, and a trailing break is
    /// followed by an empty line.
    @inline(__always)
    static func forEachLine(_ data: UnsafeRawBufferPointer, _ body: (Int, Int) -> Void) {
        let n = data.count
        var start = 0
        var i = 0
        while i < n {
            let b = data[i]
            if b == ASCII.lf {
                body(start, i)
                i += 1
                start = i
            } else if b == ASCII.cr {
                body(start, i)
                i += (i + 1 < n && data[i + 1] == ASCII.lf) ? 2 : 1
                start = i
            } else {
                i += 1
            }
        }
        body(start, n)
    }

    @inline(__always)
    static func copy(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        if src.count > 0 {
            UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + src.count]).copyMemory(from: src)
        }
        return src.count
    }

    @inline(__always)
    static func copy(_ s: StaticString, into out: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        copy(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), into: out, at: offset)
    }
}
