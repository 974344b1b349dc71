/// Validation of event types: 1–64 bytes of `[A-Za-z0-9._:-]`.
public enum EventType {
    /// The longest event type in bytes.
    public static let maxBytes = 64

    /// The type of an event published without one.
    public static let defaultType = "message"

    /// Whether `bytes` is a valid event type.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        NameCharset.isValid(bytes, maxBytes: maxBytes)
    }

    /// The types of a stream's own control events (`event: reset`, `event: close`): an
    /// EventSource could not tell a published event of that type from them, so publishing one
    /// is refused (400 `reserved_type`).
    public static let reserved = ["reset", "close"]

    /// Whether `bytes` is one of `reserved`.
    private static let longestReservedBytes = reserved.map(\.utf8.count).max() ?? 0

    /// On every publish: a length test first, so most types cost one compare.
    public static func isReserved(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count <= longestReservedBytes && reserved.contains { $0.utf8.elementsEqual(bytes) }
    }

    /// Whether `s` is a valid event type.
    public static func isValid(_ s: String) -> Bool {
        NameCharset.isValid(s, maxBytes: maxBytes)
    }

    /// Whether `bytes` is a valid event type.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }
}
