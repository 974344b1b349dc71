// Layout of the ring log: one region of shared memory, written by one process, read by many.
//
//   region = header | slot directory | seq index | data region (capacity bytes, power of two)
//
// Every integer is native (little-endian) and naturally aligned. Records are aligned to 8 bytes.
//
// Record header (`recordHeaderLength` = 88 bytes), followed by `slotName | type | data`:
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +---------------------------------------------------------------+
//   |                 length (u32, unaligned total)                 |  0
//   +-------------------------------+---------------+---------------+
//   |  kind (u16: 1 event, 2 pad)   | nameLength u8 | typeLength u8 |  4
//   +-------------------------------+---------------+---------------+
//   |                    position (u64, its own)                    |  8
//   +---------------------------------------------------------------+
//   |                           seq (u64)                           | 16
//   +---------------------------------------------------------------+
//   |                        slotIndex (u32)                        | 24
//   +---------------------------------------------------------------+
//   |                      slotGeneration (u32)                     | 28
//   +---------------------------------------------------------------+
//   |                  slotOrdinal (u64, from 1)                    | 32
//   +---------------------------------------------------------------+
//   |     prevPosition (u64, same slot; UInt64.max when none)       | 40
//   +---------------------------------------------------------------+
//   |            prevSeq (u64, seq of prev; 0 when none)            | 48
//   +---------------------------------------------------------------+
//   |  jumpPosition (u64, skew-binary link; UInt64.max when none)   | 56
//   +---------------------------------------------------------------+
//   |                      jumpOrdinal (u64)                        | 64
//   +---------------------------------------------------------------+
//   |                    timeMilliseconds (u64)                     | 72
//   +---------------------------------------------------------------+
//   |                       dataLength (u32)                        | 80
//   +---------------------------------------------------------------+
//   |      crc (u32, CRC32C of bytes 0..<84 and 88..<length)        | 84
//   +---------------------------------------------------------------+
//   |            slotName | type | data ... (padded to 8)           | 88
//   +---------------------------------------------------------------+
//
// An event's `crc` covers its whole record except the crc field itself; the recovery scan at
// start-up cuts the log at the first record whose crc does not match (power loss can leave a
// file that mixes old and new pages). Padding records carry no crc.
//
// A padding record is a header with kind 2 whose length covers the rest of the lap. When fewer
// than `recordHeaderLength` bytes remain before the end of the data region, no record can start
// there, so those bytes are padding by definition and a reader skips them without reading.

import CRinggateSys

/// Errors from formatting or attaching a log region.
public enum LogError: Error, Equatable, CustomStringConvertible {
    case badGeometry(String)
    case badMagic
    case unsupportedVersion(UInt32)
    case regionTooSmall(needed: Int, have: Int)

    public var description: String {
        switch self {
        case .badGeometry(let why): return "ring log: bad geometry: \(why)"
        case .badMagic: return "ring log: not a ring log (bad magic)"
        case .unsupportedVersion(let v):
            return "ring log: unsupported format version \(v) (this build reads \(LogDescriptor.formatVersion))"
        case .regionTooSmall(let needed, let have):
            return "ring log: region too small: needs \(needed) bytes, has \(have)"
        }
    }
}

/// Sizes of a log; every other number in the layout follows from these two.
public struct LogGeometry: Sendable, Equatable {
    public let capacityBytes: Int
    public let maxSlots: Int
    public let directoryEntries: Int
    public let indexEntries: Int

    /// `capacityBytes`: power of two, >= 4096. `maxSlots`: power of two, >= 1.
    public init(capacityBytes: Int, maxSlots: Int) throws(LogError) {
        guard capacityBytes >= 4096, capacityBytes.nonzeroBitCount == 1 else {
            throw .badGeometry("capacity \(capacityBytes) must be a power of two >= 4096")
        }
        guard capacityBytes <= 1 << 40 else {
            throw .badGeometry("capacity \(capacityBytes) is larger than 1 TiB")
        }
        guard maxSlots >= 1, maxSlots.nonzeroBitCount == 1, maxSlots <= 1 << 24 else {
            throw .badGeometry("maxSlots \(maxSlots) must be a power of two in 1...2^24")
        }
        self.capacityBytes = capacityBytes
        self.maxSlots = maxSlots
        self.directoryEntries = 2 * maxSlots
        self.indexEntries = capacityBytes / LogDescriptor.indexBytesPerEntry
    }

    /// Largest record (header + name + type + data, aligned) the log accepts.
    public var maxRecordBytes: Int { capacityBytes / 4 }

    var directoryOffset: Int { LogDescriptor.headerLength }
    var directoryBytes: Int { LogDescriptor.alignUp(directoryEntries * LogDescriptor.Directory.entryLength, 4096) }
    var indexOffset: Int { directoryOffset + directoryBytes }
    var indexBytes: Int { LogDescriptor.alignUp(indexEntries * 8, 4096) }
    var dataOffset: Int { indexOffset + indexBytes }

    /// Bytes of shared memory the whole log occupies.
    public var totalBytes: Int { dataOffset + capacityBytes }
}

/// Offsets and constants of the layout. Only the writer, reader and region touch raw bytes.
enum LogDescriptor {
    static let magic: UInt64 = 0x4554_4147_474E_4952  // "RINGGATE" as little-endian bytes
    static let formatVersion: UInt32 = 2
    static let cacheLineLength = 64
    /// Each index entry stands for this many bytes of data: records are at least this long.
    static let indexBytesPerEntry = 64

    // Header fields.
    static let magicOffset = 0
    static let versionOffset = 8
    static let epochOffset = 12
    static let capacityOffset = 16
    static let maxSlotsOffset = 24
    static let directoryEntriesOffset = 28
    static let indexEntriesOffset = 32
    // Hot fields, each on its own cache line.
    static let tailIntentOffset = 2 * 64
    static let tailOffset = 3 * 64
    static let latestOffset = 4 * 64
    static let nextSeqOffset = 5 * 64
    static let oldestPositionOffset = 6 * 64
    static let oldestSeqOffset = 7 * 64
    static let liveSlotsOffset = 8 * 64
    static let upstreamCursorOffset = 9 * 64
    // MARK: READER
    /// u64: the largest event data this log may hold (the largest `--max-event-bytes` it was
    /// opened with), so readers size their buffers for records written under an older limit.
    static let maxEventBytesOffset = 10 * 64
    // MARK: CLUSTER
    /// u64, release-stored after the entries it covers: how many gaps were ever recorded.
    static let gapCountOffset = 11 * 64
    /// The last `gapTableEntries` gaps, entry `n % gapTableEntries` = (first u64, last u64):
    /// seqs this log will never hold (cluster mode: trimmed or unstorable stream entries).
    static let gapTableOffset = 12 * 64
    static let gapTableEntries = 128
    static let gapEntryLength = 16
    // Counter area: maxProcesses blocks of countersPerProcess u64 each.
    static let countersOffset = 4096
    static let maxProcesses = 128
    static let countersPerProcess = 128
    static let headerLength = countersOffset + maxProcesses * countersPerProcess * 8  // 135168, page-aligned

    // Record header fields.
    enum Record {
        static let lengthOffset = 0
        static let kindOffset = 4
        static let nameLengthOffset = 6
        static let typeLengthOffset = 7
        static let positionOffset = 8
        static let seqOffset = 16
        static let slotIndexOffset = 24
        static let slotGenerationOffset = 28
        static let slotOrdinalOffset = 32
        static let prevPositionOffset = 40
        static let prevSeqOffset = 48
        static let jumpPositionOffset = 56
        static let jumpOrdinalOffset = 64
        static let timeMillisecondsOffset = 72
        static let dataLengthOffset = 80
        static let crcOffset = 84
        static let headerLength = 88
        static let alignment = 8
        static let kindEvent: UInt16 = 1
        static let kindPadding: UInt16 = 2
        static let noPosition = UInt64.max
        static let maxNameBytes = 128
        static let maxTypeBytes = 255
    }

    // Slot directory entry (192 bytes), written only by the writer under a per-entry seqlock.
    //
    //   0 seqlock u32 (odd while written) | 4 generation u32 | 8 state u32 | 12 nameLength u32
    //   16 name[128] | 144 newestPosition u64 | 152 newestSeq u64 | 160 count u64 | 168 hash u64
    enum Directory {
        static let seqlockOffset = 0
        static let generationOffset = 4
        static let stateOffset = 8
        static let nameLengthOffset = 12
        static let nameOffset = 16
        static let newestPositionOffset = 144
        static let newestSeqOffset = 152
        static let countOffset = 160
        static let hashOffset = 168
        static let entryLength = 192
        static let stateEmpty: UInt32 = 0
        static let stateLive: UInt32 = 1
        static let stateTombstone: UInt32 = 2
        /// A reader gives up on an entry after this many torn snapshots in a row.
        static let readRetriesMax = 64
    }

    @inline(__always)
    static func alignUp(_ value: Int, _ alignment: Int) -> Int {
        (value + alignment - 1) & ~(alignment - 1)
    }

    /// FNV-1a 64 of a slot name: the directory's probe start.
    static func nameHash(_ name: UnsafeRawBufferPointer) -> UInt64 {
        FNV1a.hash64(name)
    }
}

// Plain (non-atomic) field access on raw memory; shared fields use the rg_* atomics instead.
extension UnsafeMutableRawPointer {
    @inline(__always) func loadU64(_ offset: Int) -> UInt64 { loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
    @inline(__always) func loadU32(_ offset: Int) -> UInt32 { loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    @inline(__always) func loadU16(_ offset: Int) -> UInt16 { loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
    @inline(__always) func loadU8(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
    @inline(__always) func storeU64(_ offset: Int, _ v: UInt64) { storeBytes(of: v, toByteOffset: offset, as: UInt64.self) }
    @inline(__always) func storeU32(_ offset: Int, _ v: UInt32) { storeBytes(of: v, toByteOffset: offset, as: UInt32.self) }
    @inline(__always) func storeU16(_ offset: Int, _ v: UInt16) { storeBytes(of: v, toByteOffset: offset, as: UInt16.self) }
    @inline(__always) func storeU8(_ offset: Int, _ v: UInt8) { storeBytes(of: v, toByteOffset: offset, as: UInt8.self) }
}
