/// Byte constants and character classes shared by the parsers and writers.
///
/// Kept as plain `UInt8` comparisons so the hot loops compile to range checks, not lookups
/// through `Character`.
@usableFromInline
enum ASCII {
    @usableFromInline static let tab: UInt8 = 0x09
    @usableFromInline static let lf: UInt8 = 0x0A
    @usableFromInline static let cr: UInt8 = 0x0D
    @usableFromInline static let space: UInt8 = 0x20
    @usableFromInline static let quote: UInt8 = 0x22
    @usableFromInline static let percent: UInt8 = 0x25
    @usableFromInline static let plus: UInt8 = 0x2B
    @usableFromInline static let comma: UInt8 = 0x2C
    @usableFromInline static let minus: UInt8 = 0x2D
    @usableFromInline static let dot: UInt8 = 0x2E
    @usableFromInline static let slash: UInt8 = 0x2F
    @usableFromInline static let zero: UInt8 = 0x30
    @usableFromInline static let nine: UInt8 = 0x39
    @usableFromInline static let colon: UInt8 = 0x3A
    @usableFromInline static let semicolon: UInt8 = 0x3B
    @usableFromInline static let equals: UInt8 = 0x3D
    @usableFromInline static let question: UInt8 = 0x3F
    @usableFromInline static let backslash: UInt8 = 0x5C
    @usableFromInline static let ampersand: UInt8 = 0x26
    @usableFromInline static let hash: UInt8 = 0x23

    @inlinable
    static func isDigit(_ b: UInt8) -> Bool { b &- zero < 10 }

    /// The value of a hex digit (either case), or `nil`.
    @inlinable
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b &- 0x30
        case 0x41...0x46: return b &- 0x41 &+ 10
        case 0x61...0x66: return b &- 0x61 &+ 10
        default: return nil
        }
    }

    /// `tchar` of RFC 9110 §5.6.2: the characters of methods, header names and codings.
    @inlinable
    static func isTokenChar(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:
            return true
        default: return false
        }
    }

    /// Whether every byte of `bytes` is a token character (a bitmap test per byte, no bounds
    /// checks: the request parser's hot loop).
    @inline(__always)
    static func allTokenChars(_ bytes: UnsafeRawBufferPointer) -> Bool {
        // Bit b of word b >> 6: the token characters of isTokenChar.
        let low: UInt64 = 0x03FF_6CFA_0000_0000    // ! # $ % & ' * + - . 0-9
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE   // A-Z ^ _ ` a-z | ~
        guard let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return true }
        var acc: UInt64 = 1
        for i in 0..<bytes.count {
            let b = p[i]
            let word = b < 64 ? low : (b < 128 ? high : 0)
            acc &= word >> UInt64(b & 63)
        }
        return acc & 1 == 1
    }

    /// The index of the first byte from `start` that `byte` picks, or `bytes.count`, looking at
    /// eight bytes at a time: `word` must say true whenever one of a word's bytes would be
    /// picked (it may say true for a word that holds none: its bytes are then looked at one by
    /// one).
    @inline(__always)
    static func firstIndex(_ bytes: UnsafeRawBufferPointer, from start: Int,
                           word: (UInt64) -> Bool, byte: (UInt8) -> Bool) -> Int {
        guard let p = bytes.baseAddress else { return start }
        let n = bytes.count
        var i = start
        while i + 8 <= n {
            if word(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                for k in i..<(i + 8) where byte(p.load(fromByteOffset: k, as: UInt8.self)) { return k }
            }
            i += 8
        }
        while i < n {
            if byte(p.load(fromByteOffset: i, as: UInt8.self)) { return i }
            i += 1
        }
        return n
    }

    /// Whether every byte is allowed in a header value: HTAB, or visible / obs-text / SP (no
    /// other control characters, no DEL).
    @inline(__always)
    static func allFieldValueChars(_ bytes: UnsafeRawBufferPointer) -> Bool {
        firstIndex(bytes, from: 0, word: { SWAR.hasLess($0, 0x20) || SWAR.hasByte($0, 0x7F) },
                   byte: { !isFieldValueChar($0) }) == bytes.count
    }

    @inline(__always)
    static func isFieldValueChar(_ b: UInt8) -> Bool { (b >= 0x20 || b == tab) && b != 0x7F }

    /// Whether every byte is visible ASCII (0x21-0x7E): a request target.
    @inline(__always)
    static func allVisible(_ bytes: UnsafeRawBufferPointer) -> Bool {
        firstIndex(bytes, from: 0, word: { SWAR.hasLess($0, 0x21) || SWAR.hasMore($0, 0x7E) },
                   byte: { ($0 &- 0x21) > 0x5D }) == bytes.count
    }

    /// The index of the first `?`, `#` or `%` in `bytes` from `start`, or `bytes.count`: where
    /// a target's path ends, or needs decoding.
    @inline(__always)
    static func firstPathSpecial(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstIndex(bytes, from: start,
                   word: { SWAR.hasByte($0, question) || SWAR.hasByte($0, hash) || SWAR.hasByte($0, percent) },
                   byte: { $0 == question || $0 == hash || $0 == percent })
    }

    /// Lowercases an ASCII letter; other bytes pass through.
    @inlinable
    static func lower(_ b: UInt8) -> UInt8 { (b &- 0x41) < 26 ? b | 0x20 : b }

    /// Case-insensitive ASCII comparison of two byte sequences.
    static func equalsIgnoringCase<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        // Contiguous storage (raw buffers, native strings' UTF-8) compares without iterators.
        if let fast = a.withContiguousStorageIfAvailable({ pa in
            b.withContiguousStorageIfAvailable { pb in equalsIgnoringCase(pa, pb) }
        }), let result = fast {
            return result
        }
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where lower(x) != lower(y) { return false }
        return true
    }

    /// Whether `a` equals the lowercase literal `lowercase`, ignoring the case of `a`'s letters
    /// (no generic collection path: the parser's header names).
    @inline(__always)
    static func equalsLowercase(_ a: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        let n = lowercase.utf8CodeUnitCount
        guard a.count == n else { return false }
        let l = lowercase.utf8Start
        for i in 0..<n where lower(a.load(fromByteOffset: i, as: UInt8.self)) != l[i] { return false }
        return true
    }

    @inline(__always)
    static func equalsIgnoringCase(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where a[i] != b[i] && lower(a[i]) != lower(b[i]) { return false }
        return true
    }

    /// The number of decimal digits of `value` (1 for zero).
    @inlinable
    static func decimalDigitCount(_ value: UInt64) -> Int {
        // Compares against powers of ten (no division): most values here have under 8 digits.
        var n = 1
        var power: UInt64 = 10
        while n < 20 && value >= power {
            n += 1
            power = power &* 10
        }
        return n
    }

    /// Writes the decimal digits of `value` at `offset`; returns the bytes written.
    ///
    /// The caller guarantees room for `decimalDigitCount(value)` bytes.
    @inlinable
    static func writeDecimal(_ value: UInt64, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let n = decimalDigitCount(value)
        precondition(offset >= 0 && offset + n <= buffer.count, "decimal does not fit")
        // Two digits per division, from a table of the pairs "00" to "99".
        let pairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
        let table = pairs.utf8Start
        let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var v = value
        var i = offset + n
        while v >= 100 {
            let pair = Int(v % 100) * 2
            v /= 100
            i -= 2
            out[i] = table[pair]
            out[i + 1] = table[pair + 1]
        }
        if v >= 10 {
            let pair = Int(v) * 2
            out[i - 2] = table[pair]
            out[i - 1] = table[pair + 1]
        } else {
            out[i - 1] = UInt8(truncatingIfNeeded: v) &+ zero
        }
        return n
    }

    /// Appends the decimal digits of `value` without a temporary `String`.
    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        let n = decimalDigitCount(value)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: n))
        out.withUnsafeMutableBytes { raw in _ = writeDecimal(value, into: raw, at: start) }
    }

    /// Appends a signed decimal.
    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(minus) }
        appendDecimal(value.magnitude, to: &out)
    }

    /// Appends the UTF-8 bytes of `s`.
    static func append(_ s: String, to out: inout [UInt8]) {
        // Literals and native strings are contiguous: one copy, no per-byte iteration.
        if s.utf8.withContiguousStorageIfAvailable({ out.append(contentsOf: $0) }) == nil {
            out.append(contentsOf: s.utf8)
        }
    }
}

/// Byte tests on eight bytes at once (a 64-bit word), from "Bit Twiddling Hacks" (Sean Eron
/// Anderson): each says exactly whether some byte of the word passes, not which one.
@usableFromInline
enum SWAR {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Whether some byte of `w` is below `n` (n ≤ 128).
    @inline(__always)
    static func hasLess(_ w: UInt64, _ n: UInt8) -> Bool {
        (w &- ones &* UInt64(n)) & ~w & highs != 0
    }

    /// Whether some byte of `w` is above `n` (n ≤ 127).
    @inline(__always)
    static func hasMore(_ w: UInt64, _ n: UInt8) -> Bool {
        ((w &+ ones &* UInt64(127 - n)) | w) & highs != 0
    }

    /// Whether some byte of `w` equals `b`.
    @inline(__always)
    static func hasByte(_ w: UInt64, _ b: UInt8) -> Bool {
        let x = w ^ (ones &* UInt64(b))
        return (x &- ones) & ~x & highs != 0
    }
}
