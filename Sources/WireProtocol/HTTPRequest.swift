/// One complete request: head and body.
///
/// The head is kept as the bytes it came in, in one array, with a table of where each header
/// field's name and value are: the parser makes no `String` per field, and a handler that
/// reads a header by name (`withHeader`, `withPath`) makes none either. The `String`
/// accessors (`header`, `path`, `target`, `query`) build theirs when called.
public struct HTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The HTTP version: (1, 0) or (1, 1).
    public var version: (major: Int, minor: Int)
    /// Whether the connection may carry another request after the response.
    public var keepAlive: Bool
    /// The body, decoded from chunked framing when it was chunked.
    public var body: [UInt8]
    /// Whether the request carried `Expect: 100-continue`.
    public var expectsContinue: Bool

    /// The head's bytes (target and fields at the offsets below), then the field table: four
    /// little-endian UInt32 per field (name start, name end, value start, value end).
    var storage: [UInt8]
    /// Where the field table starts in `storage`.
    var tableStart: Int
    var fieldCount: Int
    var targetRange: Range<Int>
    /// The decoded path's bytes in `storage`: the target's own when they need no decoding,
    /// else bytes appended after the head (`*`, `/` for an empty path, a percent-decoded path).
    var pathRange: Range<Int>
    /// The query after `?` (without the fragment) in `storage`; empty when there is none.
    var queryRange: Range<Int>

    /// Creates a request, e.g. in tests of the routes.
    public init(method: HTTPMethod, target: String, path: String, rawQuery: Substring = "",
                query: [(String, String)] = [], version: (major: Int, minor: Int) = (1, 1),
                keepAlive: Bool = true, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                expectsContinue: Bool = false) {
        self.method = method
        self.version = version
        self.keepAlive = keepAlive
        self.body = body
        self.expectsContinue = expectsContinue
        var bytes = Array(target.utf8)
        targetRange = 0..<bytes.count
        // Given pairs are encoded, so that parsing the query gives them back.
        let queryText: [UInt8] = rawQuery.isEmpty && !query.isEmpty
            ? Array(query.map { HTTPRequest.formEncode($0.0) + "=" + HTTPRequest.formEncode($0.1) }
                .joined(separator: "&").utf8)
            : Array(rawQuery.utf8)
        let q = bytes.count
        bytes += queryText
        queryRange = q..<bytes.count
        let p = bytes.count
        bytes += path.utf8
        pathRange = p..<bytes.count
        storage = bytes
        tableStart = bytes.count
        fieldCount = 0
        self.headers = headers
    }

    /// `application/x-www-form-urlencoded` of one name or value (the tests' query pairs).
    static func formEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b &- 0x30) < 10 || (b | 0x20) &- 0x61 < 26 || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: "~") || b == UInt8(ascii: ",") || b == UInt8(ascii: "*") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + String(b >> 4, radix: 16, uppercase: true) + String(b & 15, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// The parser's request: `storage` holds the head, its field table appended.
    init(method: HTTPMethod, version: (major: Int, minor: Int), keepAlive: Bool, expectsContinue: Bool,
         storage: [UInt8], tableStart: Int, fieldCount: Int, targetRange: Range<Int>, pathRange: Range<Int>,
         queryRange: Range<Int>) {
        self.method = method
        self.version = version
        self.keepAlive = keepAlive
        self.body = []
        self.expectsContinue = expectsContinue
        self.storage = storage
        self.tableStart = tableStart
        self.fieldCount = fieldCount
        self.targetRange = targetRange
        self.pathRange = pathRange
        self.queryRange = queryRange
    }

    /// The request target exactly as sent (e.g. `/v1/slots/a%20b/events?limit=5`).
    public var target: String { String(decoding: storage[targetRange], as: UTF8.self) }

    /// The percent-decoded path (`*` for `OPTIONS *`; the path part of an absolute-form target).
    public var path: String { String(decoding: storage[pathRange], as: UTF8.self) }

    /// The decoded path's bytes, without making a `String`.
    public func withPath<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[pathRange])) }
    }

    /// The raw query after `?`, without the `#fragment`; empty when there is none.
    public var rawQuery: Substring { Substring(String(decoding: storage[queryRange], as: UTF8.self)) }

    /// The decoded query pairs, in order (`+` is a space).
    public var query: [(String, String)] { queryRange.isEmpty ? [] : QueryString.parse(rawQuery) }

    /// The first decoded value of the query parameter `name` (compared exactly).
    public func queryValue(_ name: String) -> String? {
        if queryRange.isEmpty { return nil }
        for (k, v) in query where k == name { return v }
        return nil
    }

    /// The header fields in order, names and values as sent (values trimmed of whitespace).
    public var headers: [(name: String, value: String)] {
        get {
            storage.withUnsafeBytes { s in
                (0..<fieldCount).map { i in
                    let f = field(i, s)
                    return (String(decoding: s[f.name], as: UTF8.self), String(decoding: s[f.value], as: UTF8.self))
                }
            }
        }
        set {
            // Rebuilt: the fields' bytes after the target, query and path, then the table.
            var bytes = Array(storage[..<max(targetRange.upperBound, queryRange.upperBound, pathRange.upperBound)])
            var table: [UInt32] = []
            for (name, value) in newValue {
                let ns = bytes.count
                bytes += name.utf8
                let vs = bytes.count
                bytes += value.utf8
                table += [UInt32(ns), UInt32(vs), UInt32(vs), UInt32(bytes.count)]
            }
            tableStart = bytes.count
            for v in table { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
            storage = bytes
            fieldCount = newValue.count
        }
    }

    /// Field `i`'s name and value ranges in `storage`.
    @inline(__always)
    func field(_ i: Int, _ s: UnsafeRawBufferPointer) -> (name: Range<Int>, value: Range<Int>) {
        let at = tableStart + i * 16
        func word(_ k: Int) -> Int { Int(UInt32(littleEndian: s.loadUnaligned(fromByteOffset: at + k * 4, as: UInt32.self))) }
        return (word(0)..<word(1), word(2)..<word(3))
    }

    /// The first value of the header `name` (compared case-insensitively), as bytes; nil when
    /// the request has no such field. Nothing is allocated.
    public func withHeader<R>(_ name: StaticString, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { s in
            let n = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
            for i in 0..<fieldCount {
                let f = field(i, s)
                if ASCII.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: s[f.name]), n) {
                    return try body(UnsafeRawBufferPointer(rebasing: s[f.value]))
                }
            }
            return try body(nil)
        }
    }

    /// The first value of the header `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        storage.withUnsafeBytes { s in
            for i in 0..<fieldCount {
                let f = field(i, s)
                if ASCII.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: s[f.name]), name.utf8) {
                    return String(decoding: s[f.value], as: UTF8.self)
                }
            }
            return nil
        }
    }

    /// Every value of the header `name`, in order.
    public func headerValues(_ name: String) -> [String] {
        storage.withUnsafeBytes { s in
            (0..<fieldCount).compactMap { i in
                let f = field(i, s)
                return ASCII.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: s[f.name]), name.utf8)
                    ? String(decoding: s[f.value], as: UTF8.self) : nil
            }
        }
    }
}
