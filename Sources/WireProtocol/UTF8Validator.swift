/// Strict UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
///
/// Event data must be valid UTF-8 because it is delivered as SSE text and JSON strings; the
/// check runs on every publish, so ASCII is skipped 8 bytes at a time.
public enum UTF8Validator {
    /// Whether `bytes` is entirely valid UTF-8.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return true }
        var i = 0
        while i < n {
            // ASCII fast path: 8 bytes whose high bits are all clear.
            while i + 8 <= n {
                let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 { break }
                i += 8
            }
            if i >= n { break }
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            switch b0 {
            case 0xC2...0xDF:
                guard i + 1 < n, isContinuation(bytes[i + 1]) else { return false }
                i += 2
            case 0xE0...0xEF:
                guard i + 2 < n else { return false }
                let b1 = bytes[i + 1]
                // E0 needs A0..BF (no overlongs); ED needs 80..9F (no surrogates).
                let lo: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80
                let hi: UInt8 = b0 == 0xED ? 0x9F : 0xBF
                guard b1 >= lo, b1 <= hi, isContinuation(bytes[i + 2]) else { return false }
                i += 3
            case 0xF0...0xF4:
                guard i + 3 < n else { return false }
                let b1 = bytes[i + 1]
                // F0 needs 90..BF (no overlongs); F4 needs 80..8F (max U+10FFFF).
                let lo: UInt8 = b0 == 0xF0 ? 0x90 : 0x80
                let hi: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF
                guard b1 >= lo, b1 <= hi, isContinuation(bytes[i + 2]), isContinuation(bytes[i + 3]) else {
                    return false
                }
                i += 4
            default:
                return false  // 80..C1 (stray continuation, overlong lead) and F5..FF
            }
        }
        return true
    }

    /// Whether `bytes` is entirely valid UTF-8.
    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }

    @inline(__always)
    static func isContinuation(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }
}
