/// A Redis stream entry id `MS-SEQ`: the tail's cursor and the epoch's `start`.
public struct StreamID: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    /// `0-0`: before every entry (XREAD from it reads the whole stream).
    public static let zero = StreamID(milliseconds: 0, sequence: 0)

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `MS-SEQ` (both decimal u64). A bare `MS` is not accepted: Redis always answers
    /// with both parts, so anything else is not an id it produced.
    public init?(parsing text: some StringProtocol) {
        let utf8 = text.utf8
        guard let dash = utf8.firstIndex(of: UInt8(ascii: "-")) else { return nil }
        guard let ms = Self.decimal(utf8[..<dash]), let seq = Self.decimal(utf8[utf8.index(after: dash)...]) else {
            return nil
        }
        self.init(milliseconds: ms, sequence: seq)
    }

    public init?(bytes: [UInt8]) {
        guard let dash = bytes.firstIndex(of: UInt8(ascii: "-")) else { return nil }
        guard let ms = Self.decimal(bytes[..<dash]), let seq = Self.decimal(bytes[(dash + 1)...]) else { return nil }
        self.init(milliseconds: ms, sequence: seq)
    }

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (a: StreamID, b: StreamID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }

    static func decimal<C: Collection>(_ digits: C) -> UInt64? where C.Element == UInt8 {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for d in digits {
            guard d >= 48, d <= 57 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d - 48))
            if o1 || o2 { return nil }
            value = s
        }
        return value
    }
}
