/// A client-visible event id, `EPOCH-SEQ` (e.g. `5f3a9c01-42`).
///
/// `EPOCH` is the log's epoch as exactly 8 lowercase hex digits and `SEQ` the event's sequence
/// number in decimal without leading zeros. Parsing accepts only that canonical form, so two
/// ids are equal exactly when their texts are equal.
public struct EventID: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The epoch of the log that assigned the id.
    public var epoch: UInt32
    /// The dense sequence number, from 1.
    public var seq: UInt64

    /// The longest formatted id: 8 hex digits, `-`, 20 decimal digits.
    public static let maxLength = 29

    /// Creates an id; `seq` should be at least 1 to be parseable again.
    public init(epoch: UInt32, seq: UInt64) {
        self.epoch = epoch
        self.seq = seq
    }

    /// Parses the canonical text form; `nil` for anything else (or `seq` 0).
    public init?(parsing text: some StringProtocol) {
        var s = String(text)
        guard let id = s.withUTF8({ EventID(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = id
    }

    /// Parses the canonical form from raw bytes, without allocating.
    public init?(bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n >= 10, n <= EventID.maxLength, bytes[8] == ASCII.minus else { return nil }
        var epoch: UInt32 = 0
        for i in 0..<8 {
            let b = bytes[i]
            let v: UInt8
            switch b {
            case 0x30...0x39: v = b &- 0x30
            case 0x61...0x66: v = b &- 0x61 &+ 10
            default: return nil
            }
            epoch = epoch << 4 | UInt32(v)
        }
        // No leading zeros: the canonical form is what `description` prints.
        guard bytes[9] != ASCII.zero else { return nil }
        var seq: UInt64 = 0
        for i in 9..<n {
            let b = bytes[i]
            guard ASCII.isDigit(b) else { return nil }
            let (m, o1) = seq.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b &- ASCII.zero))
            guard !o1, !o2 else { return nil }
            seq = a
        }
        self.init(epoch: epoch, seq: seq)
    }

    /// The formatted length of this id in bytes.
    public var length: Int { 9 + ASCII.decimalDigitCount(seq) }

    /// Writes the id at `offset` without allocating; returns the bytes written.
    ///
    /// The caller guarantees room for `length` (at most `maxLength`) bytes.
    @discardableResult
    public func write(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        precondition(offset >= 0 && offset + length <= buffer.count, "EventID does not fit")
        let hex: StaticString = "0123456789abcdef"
        var e = epoch
        for i in stride(from: 7, through: 0, by: -1) {
            buffer[offset + i] = hex.utf8Start[Int(e & 0xF)]
            e >>= 4
        }
        buffer[offset + 8] = ASCII.minus
        return 9 + ASCII.writeDecimal(seq, into: buffer, at: offset + 9)
    }

    /// Appends the formatted id.
    public func append(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: EventID.maxLength, alignment: 1) { buffer in
            let n = write(into: buffer, at: 0)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
    }

    /// The formatted id, e.g. `5f3a9c01-42`.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(EventID.maxLength)
        append(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
