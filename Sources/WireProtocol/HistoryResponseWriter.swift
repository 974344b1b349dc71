/// Builds the body of a history response.
///
/// ```json
/// {"slot":"news","events":[{"id":"5f3a9c01-7","type":"message","data":"hi","time":1795310494123}],
///  "next":"5f3a9c01-7","oldest":"5f3a9c01-1","head":"5f3a9c01-9","reset":false}
/// ```
/// Call `appendEvent` once per event in order, then `finish`.
public struct HistoryResponseWriter: Sendable {
    private var json: JSONWriter
    private var eventCount = 0

    /// Starts a response for `slot`; `capacity` is a size hint in bytes.
    public init(slot: UnsafeRawBufferPointer, capacity: Int = 256) {
        json = JSONWriter(capacity: capacity)
        json.appendRaw("{\"slot\":")
        json.appendString(slot)
        json.appendRaw(",\"events\":[")
    }

    /// Starts a response for `slot`.
    public init(slot: String, capacity: Int = 256) {
        var s = slot
        self = s.withUTF8 { HistoryResponseWriter(slot: UnsafeRawBufferPointer($0), capacity: capacity) }
    }

    /// The number of events appended so far.
    public var count: Int { eventCount }

    /// Appends one event object.
    public mutating func appendEvent(id: EventID, type: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer,
                                     timeMilliseconds: Int64) {
        if eventCount > 0 { json.appendRaw(",") }
        json.appendRaw("{\"id\":")
        json.appendID(id)
        json.appendRaw(",\"type\":")
        json.appendString(type)
        json.appendRaw(",\"data\":")
        json.appendString(data)
        json.appendRaw(",\"time\":")
        json.appendInt(timeMilliseconds)
        json.appendRaw("}")
        eventCount += 1
    }

    /// Closes the event list and the object, returning the body.
    public mutating func finish(next: EventID?, oldest: EventID?, head: EventID?, reset: Bool) -> [UInt8] {
        json.appendRaw("],\"next\":")
        json.appendID(next)
        json.appendRaw(",\"oldest\":")
        json.appendID(oldest)
        json.appendRaw(",\"head\":")
        json.appendID(head)
        json.appendRaw(",\"reset\":")
        json.appendBool(reset)
        json.appendRaw("}")
        return json.bytes
    }
}
