/// Percent-decoding of URL paths and query components (RFC 3986 §2.1).
public enum PercentDecoding {
    /// Decodes `%XX` sequences; `nil` when a `%` is not followed by two hex digits.
    ///
    /// Paths are decoded strictly because a malformed path is a client bug worth a 400.
    /// With `plusAsSpace`, `+` becomes a space (form encoding, used in query strings).
    public static func decode<C: Collection<UInt8>>(_ bytes: C, plusAsSpace: Bool = false) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var it = bytes.makeIterator()
        while let b = it.next() {
            if b == ASCII.percent {
                guard let h = it.next(), let hv = ASCII.hexValue(h),
                      let l = it.next(), let lv = ASCII.hexValue(l) else { return nil }
                out.append(hv << 4 | lv)
            } else if plusAsSpace && b == ASCII.plus {
                out.append(ASCII.space)
            } else {
                out.append(b)
            }
        }
        return out
    }

    /// Decodes `%XX` sequences, keeping a malformed `%` literally (as browsers do for queries).
    public static func decodeLenient<C: Collection<UInt8>>(_ bytes: C, plusAsSpace: Bool = false) -> [UInt8] {
        let a = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(a.count)
        var i = 0
        while i < a.count {
            let b = a[i]
            if b == ASCII.percent, i + 2 < a.count,
               let hv = ASCII.hexValue(a[i + 1]), let lv = ASCII.hexValue(a[i + 2]) {
                out.append(hv << 4 | lv)
                i += 3
                continue
            }
            out.append(plusAsSpace && b == ASCII.plus ? ASCII.space : b)
            i += 1
        }
        return out
    }

    /// Strictly decodes `s` to a `String`; `nil` for malformed `%` or non-UTF-8 results.
    public static func decode(_ s: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        guard let bytes = decode(s.utf8, plusAsSpace: plusAsSpace) else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }
}
