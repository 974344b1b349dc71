/// The framing rules of a record header, in one place: readers (`copyRecord`), the writer's
/// oldest-record walk and the recovery scan all judge a header by them, so that no two of them
/// disagree on what a record is. The crc (events only) is checked by whoever has the bytes.
enum LogRecordFraming {
    typealias R = LogDescriptor.Record

    enum Verdict: Equatable {
        case padding(alignedLength: UInt64)
        case event(alignedLength: UInt64)
        case invalid
    }

    /// The header at `header` (a copy, or the record in place) claimed to start at `position`,
    /// `remaining` bytes before the end of its lap (at least `headerLength`).
    @inline(__always)
    static func check(_ header: UnsafeMutableRawPointer, position: UInt64, remaining: UInt64,
                      maxRecordBytes: Int, directoryEntries: Int) -> Verdict {
        let length = UInt64(header.loadU32(R.lengthOffset))
        let aligned = (length + 7) & ~7
        // A padding record is at least a length, a kind and its own position.
        guard length >= 16, aligned <= remaining, header.loadU64(R.positionOffset) == position else { return .invalid }
        let kind = header.loadU16(R.kindOffset)
        if kind == R.kindPadding { return .padding(alignedLength: aligned) }
        let nameLength = UInt64(header.loadU8(R.nameLengthOffset))
        let typeLength = UInt64(header.loadU8(R.typeLengthOffset))
        let dataLength = UInt64(header.loadU32(R.dataLengthOffset))
        guard kind == R.kindEvent, length >= UInt64(R.headerLength), length <= UInt64(maxRecordBytes),
              nameLength >= 1, UInt64(R.headerLength) + nameLength + typeLength + dataLength == length,
              Int(header.loadU32(R.slotIndexOffset)) < directoryEntries
        else { return .invalid }
        return .event(alignedLength: aligned)
    }
}

extension LogRegion {
    /// `LogRecordFraming.check` with this log's limits.
    @inline(__always)
    func framing(of header: UnsafeMutableRawPointer, at position: UInt64, remaining: UInt64) -> LogRecordFraming.Verdict {
        LogRecordFraming.check(header, position: position, remaining: remaining,
                               maxRecordBytes: geometry.maxRecordBytes, directoryEntries: geometry.directoryEntries)
    }
}
