/// Parsing of durations for the command line, e.g. `15s`, `500ms`, `24h`.
public enum DurationParser {
    /// Parses a non-negative duration into nanoseconds: a decimal number with a suffix
    /// `ms`, `s`, `m` or `h` (case-insensitive); a plain number is seconds.
    ///
    /// `nil` for anything else, including overflow of `UInt64`.
    public static func parseNanoseconds(_ text: some StringProtocol) -> UInt64? {
        let s = Array(text.utf8)
        var i = 0
        var value: UInt64 = 0
        while i < s.count, ASCII.isDigit(s[i]) {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(s[i] &- ASCII.zero))
            guard !o1, !o2 else { return nil }
            value = a
            i += 1
        }
        guard i > 0 else { return nil }
        let suffix = String(decoding: s[i...].map(ASCII.lower), as: UTF8.self)
        let nanosecondsPerUnit: UInt64
        switch suffix {
        case "ms": nanosecondsPerUnit = 1_000_000
        case "", "s": nanosecondsPerUnit = 1_000_000_000
        case "m": nanosecondsPerUnit = 60 * 1_000_000_000
        case "h": nanosecondsPerUnit = 3600 * 1_000_000_000
        default: return nil
        }
        let (r, o) = value.multipliedReportingOverflow(by: nanosecondsPerUnit)
        return o ? nil : r
    }
}
