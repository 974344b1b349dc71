/// A strict RFC 8259 scanner over one JSON text in a byte buffer.
///
/// It decodes strings (all escapes, `\uXXXX` surrogate pairs to UTF-8, lone surrogates
/// rejected) and skips other values while checking their grammar, nesting at most
/// `NDJSONBatchParser.maxDepth` deep. The input is assumed to be valid UTF-8 already.
struct JSONScanner {
    struct Failure: Error, Equatable {
        var message: String
        init(_ message: String) { self.message = message }
    }

    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    /// The byte at the position, or 0 at the end (0 never starts a valid token).
    func peek() -> UInt8 { position < bytes.count ? bytes[position] : 0 }

    static func isWhitespace(_ b: UInt8) -> Bool {
        b == ASCII.space || b == ASCII.tab || b == ASCII.lf || b == ASCII.cr
    }

    mutating func skipWhitespace() {
        while position < bytes.count, JSONScanner.isWhitespace(bytes[position]) { position += 1 }
    }

    /// Decodes the string at the position (which is at its opening quote).
    mutating func parseString() throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        try scanString(into: &out, store: true)
        return out
    }

    /// A scanned string: its bytes where they are when it has no escape, else unescaped.
    enum ScannedString {
        case inPlace(UnsafeRawBufferPointer)
        case decoded([UInt8])

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            switch self {
            case .inPlace(let bytes): body(bytes)
            case .decoded(let array): array.withUnsafeBytes(body)
            }
        }
    }

    /// Scans a string without copying it when it has no escape (the usual key, slot, data).
    mutating func scanStringInPlace() throws(Failure) -> ScannedString {
        precondition(peek() == ASCII.quote)
        let start = position + 1
        let p = JSONScanner.plainRunEnd(bytes, from: start)
        if p < bytes.count && bytes[p] == ASCII.quote {
            position = p + 1
            return .inPlace(UnsafeRawBufferPointer(rebasing: bytes[start..<p]))
        }
        return .decoded(try parseString())
    }

    /// Where the run of plain string bytes from `start` ends: the first quote, backslash or
    /// control character, or the end.
    @inline(__always)
    static func plainRunEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        ASCII.firstIndex(bytes, from: start,
                         word: { SWAR.hasByte($0, ASCII.quote) || SWAR.hasByte($0, ASCII.backslash) || SWAR.hasLess($0, 0x20) },
                         byte: { $0 == ASCII.quote || $0 == ASCII.backslash || $0 < 0x20 })
    }

    /// Checks the string at the position without building its value (skipped keys and values).
    mutating func skipString() throws(Failure) {
        var none: [UInt8] = []
        try scanString(into: &none, store: false)
    }

    private mutating func scanString(into out: inout [UInt8], store: Bool) throws(Failure) {
        precondition(peek() == ASCII.quote)
        position += 1
        while true {
            // Fast path: copy a run of plain bytes (no quote, backslash or control) at once.
            let runStart = position
            position = JSONScanner.plainRunEnd(bytes, from: position)
            if store && position > runStart {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
            }
            guard position < bytes.count else { throw Failure("unterminated string") }
            let b = bytes[position]
            position += 1
            switch b {
            case ASCII.quote:
                return
            case ASCII.backslash:
                guard position < bytes.count else { throw Failure("unterminated string") }
                let e = bytes[position]
                position += 1
                switch e {
                case ASCII.quote, ASCII.backslash, ASCII.slash: if store { out.append(e) }
                case 0x62: if store { out.append(0x08) }  // b
                case 0x66: if store { out.append(0x0C) }  // f
                case 0x6E: if store { out.append(0x0A) }  // n
                case 0x72: if store { out.append(0x0D) }  // r
                case 0x74: if store { out.append(0x09) }  // t
                case 0x75:  // u
                    var scalar = try parseHex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard position + 1 < bytes.count, bytes[position] == ASCII.backslash,
                              bytes[position + 1] == 0x75 else { throw Failure("lone surrogate in \\u escape") }
                        position += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw Failure("lone surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw Failure("lone surrogate in \\u escape")
                    }
                    if store { appendUTF8(scalar, to: &out) }
                default:
                    throw Failure("invalid escape in string")
                }
            case 0x00..<0x20:
                throw Failure("control character in string")
            default:
                if store { out.append(b) }
            }
        }
    }

    private mutating func parseHex4() throws(Failure) -> UInt32 {
        guard position + 4 <= bytes.count else { throw Failure("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let h = ASCII.hexValue(bytes[position]) else { throw Failure("invalid \\u escape") }
            v = v << 4 | UInt32(h)
            position += 1
        }
        return v
    }

    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
            out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Skips one value at the position, checking its grammar; `depth` is the nesting of the
    /// container holding it.
    mutating func skipValue(depth: Int) throws(Failure) {
        switch peek() {
        case ASCII.quote:
            try skipString()
        case 0x7B, 0x5B:  // { [
            try skipContainer(depth: depth + 1)
        case 0x74: try expectLiteral("true")
        case 0x66: try expectLiteral("false")
        case 0x6E: try expectLiteral("null")
        case ASCII.minus, ASCII.zero...ASCII.nine:
            try skipNumber()
        case 0:
            throw Failure(atEnd ? "missing value" : "unexpected character")
        default:
            throw Failure("unexpected character")
        }
    }

    private mutating func skipContainer(depth: Int) throws(Failure) {
        guard depth <= NDJSONBatchParser.maxDepth else {
            throw Failure("nesting deeper than \(NDJSONBatchParser.maxDepth)")
        }
        let isObject = peek() == 0x7B
        let close: UInt8 = isObject ? 0x7D : 0x5D
        position += 1
        skipWhitespace()
        if peek() == close { position += 1; return }
        while true {
            skipWhitespace()
            if isObject {
                guard peek() == ASCII.quote else { throw Failure("expected a key string") }
                try skipString()
                skipWhitespace()
                guard peek() == ASCII.colon else { throw Failure("expected ':' after a key") }
                position += 1
                skipWhitespace()
            }
            try skipValue(depth: depth)
            skipWhitespace()
            let b = peek()
            position += 1
            if b == ASCII.comma { continue }
            if b == close { return }
            throw Failure(isObject ? "expected ',' or '}' in object" : "expected ',' or ']' in array")
        }
    }

    private mutating func expectLiteral(_ word: StaticString) throws(Failure) {
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard position + w.count <= bytes.count,
              UnsafeRawBufferPointer(rebasing: bytes[position..<position + w.count]).elementsEqual(w) else {
            throw Failure("invalid literal")
        }
        position += w.count
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    private mutating func skipNumber() throws(Failure) {
        if peek() == ASCII.minus { position += 1 }
        if peek() == ASCII.zero {
            position += 1
        } else if ASCII.isDigit(peek()) {
            while ASCII.isDigit(peek()) { position += 1 }
        } else {
            throw Failure("invalid number")
        }
        if peek() == ASCII.dot {
            position += 1
            guard ASCII.isDigit(peek()) else { throw Failure("invalid number") }
            while ASCII.isDigit(peek()) { position += 1 }
        }
        if peek() == 0x65 || peek() == 0x45 {
            position += 1
            if peek() == ASCII.plus || peek() == ASCII.minus { position += 1 }
            guard ASCII.isDigit(peek()) else { throw Failure("invalid number") }
            while ASCII.isDigit(peek()) { position += 1 }
        }
    }
}
