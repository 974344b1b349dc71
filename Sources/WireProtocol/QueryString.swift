/// Parsing of `application/x-www-form-urlencoded` query strings.
public enum QueryString {
    /// Splits `name=value&…` into decoded pairs, in order.
    ///
    /// `+` is a space and malformed `%` sequences are kept literally (the WHATWG URL rules),
    /// so an odd query never fails a request by itself; the route validates the values it
    /// uses. Empty pairs (`a=1&&b=2`) are skipped; a pair without `=` has the value `""`.
    /// Decoded bytes that are not UTF-8 are repaired with U+FFFD.
    public static func parse(_ s: Substring) -> [(String, String)] {
        var result: [(String, String)] = []
        for part in s.utf8.split(separator: ASCII.ampersand, omittingEmptySubsequences: true) {
            let name: Substring.UTF8View.SubSequence
            let value: Substring.UTF8View.SubSequence
            if let eq = part.firstIndex(of: ASCII.equals) {
                name = part[part.startIndex..<eq]
                value = part[part.index(after: eq)...]
            } else {
                name = part
                value = part[part.endIndex...]
            }
            result.append((decodeComponent(name), decodeComponent(value)))
        }
        return result
    }

    /// Parses the query of a string.
    public static func parse(_ s: String) -> [(String, String)] { parse(s[...]) }

    static func decodeComponent(_ bytes: Substring.UTF8View.SubSequence) -> String {
        // Fast path: nothing to decode, no copy through an array.
        if !bytes.contains(where: { $0 == ASCII.percent || $0 == ASCII.plus }) {
            return String(Substring(bytes))
        }
        return String(decoding: PercentDecoding.decodeLenient(bytes, plusAsSpace: true), as: UTF8.self)
    }
}
