/// Validation of slot names: 1–128 bytes of `[A-Za-z0-9._:-]`.
public enum SlotName {
    /// The longest slot name in bytes.
    public static let maxBytes = 128

    /// Whether `bytes` is a valid slot name.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        NameCharset.isValid(bytes, maxBytes: maxBytes)
    }

    /// Whether `s` is a valid slot name.
    public static func isValid(_ s: String) -> Bool {
        NameCharset.isValid(s, maxBytes: maxBytes)
    }

    /// Whether `bytes` is a valid slot name.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }
}
