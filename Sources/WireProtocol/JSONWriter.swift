/// Builds JSON text into a growing byte array.
///
/// Strings are escaped per RFC 8259: `"` and `\` escaped, control characters as the short
/// forms (`\n` `\r` `\t` `\b` `\f`) or `\u00XX`, everything else (including non-ASCII UTF-8)
/// passed through unchanged. The writer does not validate UTF-8: event data is validated
/// when it is published, and re-checking it on every read would cost more than it saves.
public struct JSONWriter: Sendable {
    /// The JSON text written so far.
    public var bytes: [UInt8]

    /// Creates an empty writer; `capacity` reserves bytes up front to avoid regrowth.
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Empties the writer, keeping its capacity for the next document.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Appends `bytes` as a quoted, escaped JSON string.
    public mutating func appendString(_ raw: UnsafeRawBufferPointer) {
        // One pass: runs that need no escaping are copied whole, escapes written between them.
        bytes.append(ASCII.quote)
        var runStart = 0
        var i = 0
        let n = raw.count
        while i < n {
            let b = raw[i]
            if b >= 0x20 && b != ASCII.quote && b != ASCII.backslash {
                i += 1
                continue
            }
            if i > runStart { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[runStart..<i])) }
            appendEscape(b)
            i += 1
            runStart = i
        }
        if n > runStart { bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[runStart..<n])) }
        bytes.append(ASCII.quote)
    }

    private mutating func appendEscape(_ b: UInt8) {
        let hex: StaticString = "0123456789abcdef"
        switch b {
        case ASCII.quote, ASCII.backslash: bytes.append(ASCII.backslash); bytes.append(b)
        case 0x0A: bytes.append(ASCII.backslash); bytes.append(0x6E)  // n
        case 0x0D: bytes.append(ASCII.backslash); bytes.append(0x72)  // r
        case 0x09: bytes.append(ASCII.backslash); bytes.append(0x74)  // t
        case 0x08: bytes.append(ASCII.backslash); bytes.append(0x62)  // b
        case 0x0C: bytes.append(ASCII.backslash); bytes.append(0x66)  // f
        default:
            bytes.append(ASCII.backslash); bytes.append(0x75)  // u
            bytes.append(ASCII.zero); bytes.append(ASCII.zero)
            bytes.append(hex.utf8Start[Int(b >> 4)])
            bytes.append(hex.utf8Start[Int(b & 0xF)])
        }
    }

    /// Appends `bytes` as a quoted, escaped JSON string.
    public mutating func appendString(_ raw: [UInt8]) {
        raw.withUnsafeBytes { appendString($0) }
    }

    /// Appends `s` as a quoted, escaped JSON string.
    public mutating func appendString(_ s: String) {
        var s = s
        s.withUTF8 { appendString(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a decimal integer.
    public mutating func appendInt(_ value: Int) {
        ASCII.appendDecimal(Int64(value), to: &bytes)
    }

    /// Appends a decimal integer.
    public mutating func appendInt(_ value: Int64) {
        ASCII.appendDecimal(value, to: &bytes)
    }

    /// Appends a decimal integer.
    public mutating func appendInt(_ value: UInt64) {
        ASCII.appendDecimal(value, to: &bytes)
    }

    /// Appends `true` or `false`.
    public mutating func appendBool(_ value: Bool) {
        appendRaw(value ? "true" : "false")
    }

    /// Appends `null`.
    public mutating func appendNull() {
        appendRaw("null")
    }

    /// Appends an event id as a JSON string, or `null`.
    public mutating func appendID(_ id: EventID?) {
        guard let id else { return appendNull() }
        bytes.append(ASCII.quote)
        id.append(to: &bytes)
        bytes.append(ASCII.quote)
    }

    /// Appends bytes that are already JSON (or punctuation such as `{"slot":`) unchanged.
    public mutating func appendRaw(_ raw: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: raw)
    }

    /// Appends bytes that are already JSON unchanged.
    public mutating func appendRaw(_ raw: [UInt8]) {
        bytes.append(contentsOf: raw)
    }

    /// Appends text that is already JSON unchanged.
    public mutating func appendRaw(_ s: String) {
        bytes.append(contentsOf: s.utf8)
    }

    /// The exact length of `raw` written as a JSON string, including both quotes.
    public static func escapedLength(_ raw: UnsafeRawBufferPointer) -> Int {
        var n = 2 + raw.count
        for b in raw {
            switch b {
            case ASCII.quote, ASCII.backslash, 0x08, 0x09, 0x0A, 0x0C, 0x0D: n += 1
            case 0x00..<0x20: n += 5
            default: break
            }
        }
        return n
    }

    /// The exact length of `raw` written as a JSON string, including both quotes.
    public static func escapedLength(_ raw: [UInt8]) -> Int {
        raw.withUnsafeBytes { escapedLength($0) }
    }

    /// Writes `raw` as a quoted JSON string at `offset`; returns the bytes written.
    ///
    /// The caller guarantees room for `escapedLength(raw)` bytes.
    @discardableResult
    public static func writeString(_ raw: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer,
                                   at offset: Int) -> Int {
        // Each byte escapes to at most 6 (`\u00XX`): that bound usually proves the fit in O(1).
        precondition(offset >= 0, "negative offset")
        if offset + 2 + 6 * raw.count > out.count {
            precondition(offset + escapedLength(raw) <= out.count, "JSON string does not fit")
        }
        let hex: StaticString = "0123456789abcdef"
        var o = offset
        out[o] = ASCII.quote
        o += 1
        for b in raw {
            switch b {
            case ASCII.quote, ASCII.backslash:
                out[o] = ASCII.backslash; out[o + 1] = b; o += 2
            case 0x0A: out[o] = ASCII.backslash; out[o + 1] = 0x6E; o += 2  // n
            case 0x0D: out[o] = ASCII.backslash; out[o + 1] = 0x72; o += 2  // r
            case 0x09: out[o] = ASCII.backslash; out[o + 1] = 0x74; o += 2  // t
            case 0x08: out[o] = ASCII.backslash; out[o + 1] = 0x62; o += 2  // b
            case 0x0C: out[o] = ASCII.backslash; out[o + 1] = 0x66; o += 2  // f
            case 0x00..<0x20:
                out[o] = ASCII.backslash; out[o + 1] = 0x75  // u
                out[o + 2] = ASCII.zero; out[o + 3] = ASCII.zero
                out[o + 4] = hex.utf8Start[Int(b >> 4)]
                out[o + 5] = hex.utf8Start[Int(b & 0xF)]
                o += 6
            default:
                out[o] = b; o += 1
            }
        }
        out[o] = ASCII.quote
        return o + 1 - offset
    }
}
