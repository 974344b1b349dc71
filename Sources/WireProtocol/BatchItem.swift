/// One event of an NDJSON batch publish.
public struct BatchItem: Equatable, Sendable {
    /// The slot name as sent (unescaped); validity is checked by the caller.
    public var slot: [UInt8]
    /// The event type as sent, or `nil` for the default.
    public var type: [UInt8]?
    /// The event data: a JSON string's unescaped UTF-8, or any other value's exact JSON text.
    public var data: [UInt8]

    /// Creates an item from already-unescaped fields.
    public init(slot: [UInt8], type: [UInt8]?, data: [UInt8]) {
        self.slot = slot
        self.type = type
        self.data = data
    }
}
