/// One event of an NDJSON batch publish.
public struct BatchItem: Equatable, Sendable {
    /// The slot name as sent (unescaped); validity is checked by the caller. Lines of a batch
    /// that name the slot the line before named share its array.
    public var slot: [UInt8]
    /// The event type as sent, or `nil` for the default.
    public var type: [UInt8]?
    /// The event data: a JSON string's unescaped UTF-8, or any other value's exact JSON text.
    /// A slice of one array that holds the data of the whole batch (one allocation per batch,
    /// not one per line).
    public var data: ArraySlice<UInt8>

    /// Creates an item from already-unescaped fields.
    public init(slot: [UInt8], type: [UInt8]?, data: [UInt8]) {
        self.slot = slot
        self.type = type
        self.data = data[...]
    }

    init(slot: [UInt8], type: [UInt8]?, data: ArraySlice<UInt8>) {
        self.slot = slot
        self.type = type
        self.data = data
    }
}
