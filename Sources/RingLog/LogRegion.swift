import CRinggateSys
import Glibc

/// A formatted log over raw memory (heap in tests, a MAP_SHARED mapping in production).
///
/// The region does not own its memory: the caller keeps `base` mapped for as long as any
/// writer or reader made from this region is in use.
public struct LogRegion: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let geometry: LogGeometry

    public static let maxProcesses = LogDescriptor.maxProcesses
    public static let countersPerProcess = LogDescriptor.countersPerProcess

    init(base: UnsafeMutableRawPointer, geometry: LogGeometry) {
        self.base = base
        self.geometry = geometry
    }

    /// Writes a fresh header over `length` bytes of ZEROED memory at `base` (a new ftruncate'd
    /// file or memfd, calloc'd heap). `epoch` must be non-zero.
    ///
    /// Only the header's first page is written: every other field, the slot directory, the seq
    /// index and the data start as zero, and zero is their empty state. So a new log's pages
    /// become resident only as events are written, not at start-up.
    public static func format(
        base: UnsafeMutableRawPointer, length: Int, geometry: LogGeometry, epoch: UInt32
    ) throws(LogError) -> LogRegion {
        guard length >= geometry.totalBytes else {
            throw .regionTooSmall(needed: geometry.totalBytes, have: length)
        }
        guard epoch != 0 else { throw .badGeometry("epoch must be non-zero") }
        base.storeU32(LogDescriptor.versionOffset, LogDescriptor.formatVersion)
        base.storeU32(LogDescriptor.epochOffset, epoch)
        base.storeU64(LogDescriptor.capacityOffset, UInt64(geometry.capacityBytes))
        base.storeU32(LogDescriptor.maxSlotsOffset, UInt32(geometry.maxSlots))
        base.storeU32(LogDescriptor.directoryEntriesOffset, UInt32(geometry.directoryEntries))
        base.storeU64(LogDescriptor.indexEntriesOffset, UInt64(geometry.indexEntries))
        base.storeU64(LogDescriptor.nextSeqOffset, 1)
        // Magic last: a region with the magic is a complete header.
        rg_store_release_u64(base + LogDescriptor.magicOffset, LogDescriptor.magic)
        return LogRegion(base: base, geometry: geometry)
    }

    /// Attaches to a formatted region, checking magic, version and that the geometry fits `length`.
    public static func attach(base: UnsafeMutableRawPointer, length: Int) throws(LogError) -> LogRegion {
        guard length >= LogDescriptor.headerLength else {
            throw .regionTooSmall(needed: LogDescriptor.headerLength, have: length)
        }
        guard rg_load_acquire_u64(base + LogDescriptor.magicOffset) == LogDescriptor.magic else { throw .badMagic }
        let version = base.loadU32(LogDescriptor.versionOffset)
        guard version == LogDescriptor.formatVersion else { throw .unsupportedVersion(version) }
        let capacity = base.loadU64(LogDescriptor.capacityOffset)
        let maxSlots = base.loadU32(LogDescriptor.maxSlotsOffset)
        guard capacity <= 1 << 40 else { throw .badGeometry("capacity \(capacity) in header") }
        let geometry = try LogGeometry(capacityBytes: Int(capacity), maxSlots: Int(maxSlots))
        guard base.loadU32(LogDescriptor.directoryEntriesOffset) == UInt32(geometry.directoryEntries),
              base.loadU64(LogDescriptor.indexEntriesOffset) == UInt64(geometry.indexEntries)
        else { throw .badGeometry("directory or index size in header does not match capacity/maxSlots") }
        guard length >= geometry.totalBytes else {
            throw .regionTooSmall(needed: geometry.totalBytes, have: length)
        }
        return LogRegion(base: base, geometry: geometry)
    }

    /// The geometry of a formatted region, or nil when `base` holds no valid header.
    public static func peekGeometry(base: UnsafeMutableRawPointer, length: Int) -> LogGeometry? {
        guard length >= LogDescriptor.headerLength else { return nil }
        return try? attach(base: base, length: max(length, 0)).geometry
    }

    /// Random non-zero number chosen when the log was formatted; part of every client id.
    public var epoch: UInt32 { base.loadU32(LogDescriptor.epochOffset) }

    /// The u64 counter `counter` of process block `process`, for rg_* atomics.
    public func counterPointer(process: Int, counter: Int) -> UnsafeMutableRawPointer {
        precondition(process >= 0 && process < Self.maxProcesses, "process \(process) out of range")
        precondition(counter >= 0 && counter < Self.countersPerProcess, "counter \(counter) out of range")
        return base + LogDescriptor.countersOffset + (process * Self.countersPerProcess + counter) * 8
    }

    /// The header's published `tail` (u64, release-stored by the writer), for a flusher that
    /// only needs to know whether the log moved.
    public var tailFieldPointer: UnsafeRawPointer { UnsafeRawPointer(base + LogDescriptor.tailOffset) }

    // MARK: Internal layout accessors

    @inline(__always) var capacity: UInt64 { UInt64(geometry.capacityBytes) }
    @inline(__always) var mask: UInt64 { UInt64(geometry.capacityBytes - 1) }
    @inline(__always) var data: UnsafeMutableRawPointer { base + geometry.dataOffset }
    @inline(__always) func field(_ offset: Int) -> UnsafeMutableRawPointer { base + offset }
    @inline(__always) func recordPointer(_ position: UInt64) -> UnsafeMutableRawPointer {
        data + Int(position & mask)
    }
    @inline(__always) func indexPointer(_ seq: UInt64) -> UnsafeMutableRawPointer {
        base + geometry.indexOffset + Int(seq & UInt64(geometry.indexEntries - 1)) * 8
    }
    @inline(__always) func directoryEntry(_ index: Int) -> UnsafeMutableRawPointer {
        base + geometry.directoryOffset + index * LogDescriptor.Directory.entryLength
    }

    func loadAcquire(_ offset: Int) -> UInt64 { rg_load_acquire_u64(base + offset) }
    func storeRelease(_ offset: Int, _ value: UInt64) { rg_store_release_u64(base + offset, value) }
}
