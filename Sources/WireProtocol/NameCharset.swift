/// The character set of slot names and event types: `[A-Za-z0-9._:-]`.
///
/// These names appear verbatim in SSE `event:` lines, JSON and URLs, so the set excludes
/// everything that would need escaping in any of them.
enum NameCharset {
    @inlinable
    static func contains(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2E, 0x5F, 0x3A, 0x2D: return true
        default: return false
        }
    }

    static func isValid(_ bytes: UnsafeRawBufferPointer, maxBytes: Int) -> Bool {
        guard bytes.count >= 1, bytes.count <= maxBytes else { return false }
        for b in bytes where !contains(b) { return false }
        return true
    }

    static func isValid(_ s: String, maxBytes: Int) -> Bool {
        var s = s
        return s.withUTF8 { isValid(UnsafeRawBufferPointer($0), maxBytes: maxBytes) }
    }
}
