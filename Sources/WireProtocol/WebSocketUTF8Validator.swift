/// Incremental strict UTF-8 validation (the rules of `UTF8Validator`) over a byte stream that
/// arrives in pieces, e.g. a text message split across frames and reads.
///
/// An invalid byte fails as soon as it arrives, so a bad prefix closes the connection before
/// the rest of the message is read (Autobahn 6.4.*). The state between pieces is three bytes.
public struct WebSocketUTF8Validator: Equatable, Sendable {
    /// Continuation bytes still expected for the current code point.
    private var pending: UInt8 = 0
    /// The allowed range of the next continuation byte (narrower after E0, ED, F0, F4).
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF

    /// Creates a validator at the start of a text.
    public init() {}

    /// Whether the bytes so far end on a code point boundary.
    public var isComplete: Bool { pending == 0 }

    /// Checks the next piece; `false` when it makes the text invalid (the validator is then
    /// meaningless until `reset`).
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n > 0, let base = bytes.baseAddress else { return true }
        var i = 0
        while i < n {
            if pending == 0 {
                // ASCII fast path: 8 bytes whose high bits are all clear.
                while i + 8 <= n {
                    let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    i += 8
                }
                if i >= n { break }
                let b = bytes[i]
                i += 1
                switch b {
                case 0x00...0x7F: break
                case 0xC2...0xDF: pending = 1; low = 0x80; high = 0xBF
                case 0xE0: pending = 2; low = 0xA0; high = 0xBF          // no overlongs
                case 0xED: pending = 2; low = 0x80; high = 0x9F          // no surrogates
                case 0xE1...0xEF: pending = 2; low = 0x80; high = 0xBF
                case 0xF0: pending = 3; low = 0x90; high = 0xBF          // no overlongs
                case 0xF4: pending = 3; low = 0x80; high = 0x8F          // max U+10FFFF
                case 0xF1...0xF3: pending = 3; low = 0x80; high = 0xBF
                default: return false  // 80..C1 (stray continuation, overlong lead) and F5..FF
                }
            } else {
                let b = bytes[i]
                i += 1
                guard b >= low, b <= high else { return false }
                pending -= 1
                low = 0x80
                high = 0xBF
            }
        }
        return true
    }

    /// Returns to the start of a new text.
    public mutating func reset() {
        self = WebSocketUTF8Validator()
    }
}
