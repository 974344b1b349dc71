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

    /// Whether `s` is a valid event type.
    public static func isValid(_ s: String) -> Bool {
        NameCharset.isValid(s, maxBytes: maxBytes)
    }

    /// Whether `bytes` is a valid event type.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }
}
