/// Parsing of byte sizes for the command line, e.g. `256MiB`.
public enum ByteSize {
    /// Parses a non-negative size: a decimal number with an optional, case-insensitive suffix
    /// `B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (all powers of 1024); a plain number is bytes.
    ///
    /// `nil` for anything else, including overflow of `Int`.
    public static func parse(_ text: some StringProtocol) -> Int? {
        let s = Array(text.utf8)
        var i = 0
        var value = 0
        while i < s.count, ASCII.isDigit(s[i]) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(s[i] &- ASCII.zero))
            guard !o1, !o2 else { return nil }
            value = a
            i += 1
        }
        guard i > 0 else { return nil }
        let suffix = String(decoding: s[i...].map(ASCII.lower), as: UTF8.self)
        let multiplier: Int
        switch suffix {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = 1 << 10
        case "m", "mib": multiplier = 1 << 20
        case "g", "gib": multiplier = 1 << 30
        default: return nil
        }
        let (r, o) = value.multipliedReportingOverflow(by: multiplier)
        return o ? nil : r
    }
}
