/// Checks a whole batch against the log before any line of it is staged, so that a batch
/// either fits entirely or is refused with nothing written: every record's size, the number of
/// new slots against the directory, and that the batch does not overwrite its own first line.
public struct LogBatchCheck {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Line `line` (from 1) is larger than a record may be (capacity / 4).
        case recordTooLarge(line: Int, maxRecordBytes: Int)
        /// The batch names `newSlots` slots the directory does not hold; only `free` fit.
        case slotDirectoryFull(newSlots: Int, free: Int)
        /// The batch needs `neededBytes` of the ring, more than `capacityBytes`.
        case batchTooLarge(neededBytes: UInt64, capacityBytes: UInt64)

        public var description: String {
            switch self {
            case .recordTooLarge(let line, let max):
                "line \(line): the event does not fit the log (a record may take at most \(max) bytes, a quarter of --log-capacity)"
            case .slotDirectoryFull(let new, let free):
                "the batch names \(new) new slots but only \(free) fit the slot directory (--max-slots)"
            case .batchTooLarge(let needed, let capacity):
                "the batch needs \(needed) bytes of the log but the ring holds \(capacity) (--log-capacity): it would overwrite its own first lines"
            }
        }
    }

    typealias R = LogDescriptor.Record

    let region: LogRegion
    let directory: SlotDirectory
    let liveSlots: Int
    let oldestPosition: UInt64
    var position: UInt64
    var firstPosition: UInt64? = nil
    var newNames: Set<[UInt8]> = []
    var lines = 0
    var failure: Failure? = nil

    public init(writer: LogWriter) {
        region = writer.region
        directory = writer.directory
        liveSlots = writer.liveSlots
        oldestPosition = writer.oldestPosition
        position = writer.tailPosition
    }

    /// Adds the next line; returns the first failure found so far (later lines are not checked).
    @discardableResult
    public mutating func add(slot: UnsafeRawBufferPointer, typeBytes: Int, dataBytes: Int) -> Failure? {
        guard failure == nil else { return failure }
        lines += 1
        let length = LogWriter.recordLength(slotBytes: slot.count, typeBytes: typeBytes, dataBytes: dataBytes)
        let aligned = UInt64(LogDescriptor.alignUp(length, R.alignment))
        guard dataBytes >= 0, aligned <= UInt64(region.geometry.maxRecordBytes) else {
            failure = .recordTooLarge(line: lines, maxRecordBytes: region.geometry.maxRecordBytes)
            return failure
        }
        let offset = position & region.mask
        let start = offset + aligned > region.capacity ? position + (region.capacity - offset) : position
        if firstPosition == nil { firstPosition = start }
        position = start + aligned
        if !directory.holdsLive(slot, oldestPosition: oldestPosition) && newNames.count <= region.geometry.maxSlots {
            newNames.insert(Array(slot))
        }
        return nil
    }

    /// The verdict on the whole batch: nil when every line can be staged.
    public func finish() -> Failure? {
        if let failure { return failure }
        if let firstPosition, position - firstPosition > region.capacity {
            return .batchTooLarge(neededBytes: position - firstPosition, capacityBytes: region.capacity)
        }
        let free = region.geometry.maxSlots - liveSlots
        if newNames.count > free {
            let recyclable = free + directory.deadCount(oldestPosition: oldestPosition)
            if newNames.count > recyclable { return .slotDirectoryFull(newSlots: newNames.count, free: recyclable) }
        }
        return nil
    }
}
