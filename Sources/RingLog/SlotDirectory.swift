import CRinggateSys
import Glibc

/// The slot directory: a fixed open-addressing table (linear probing) of `directoryEntries`
/// entries, name -> (index, generation, newest record, count). At most `maxSlots` entries are
/// live at once. Written only by the writer; each entry is published under its own seqlock so
/// readers never lock.
///
/// An entry is *dead* when its newest record is no longer retained. Dead entries of other names
/// met while probing are tombstoned; when the live count reaches `maxSlots`, one sweep tombstones
/// every dead entry. A dead entry whose name is appended to again is simply continued (same
/// generation, ordinals go on), so a reader's `after` stays comparable.
struct SlotDirectory {
    let region: LogRegion
    typealias D = LogDescriptor.Directory

    init(region: LogRegion) { self.region = region }

    var entryCount: Int { region.geometry.directoryEntries }

    /// A consistent copy of one entry.
    struct Snapshot {
        var generation: UInt32
        var state: UInt32
        var newestPosition: UInt64
        var newestSeq: UInt64
        var count: UInt64
    }

    // MARK: Reader side

    /// `read(entry)` under entry `index`'s seqlock: retried while a write is in progress or
    /// happened meanwhile; nil when it stayed torn for `readRetriesMax` tries or `read` gave nil.
    @inline(__always)
    private func readConsistent<T>(_ index: Int, _ read: (UnsafeMutableRawPointer) -> T?) -> T? {
        let entry = region.directoryEntry(index)
        for _ in 0..<D.readRetriesMax {
            let before = rg_load_acquire_u32(entry + D.seqlockOffset)
            if before & 1 != 0 { continue }
            let value = read(entry)
            rg_fence_acquire()
            if before == rg_load_acquire_u32(entry + D.seqlockOffset) { return value }
        }
        return nil
    }

    private static func snapshot(_ entry: UnsafeMutableRawPointer) -> Snapshot {
        Snapshot(generation: entry.loadU32(D.generationOffset),
                 state: entry.loadU32(D.stateOffset),
                 newestPosition: entry.loadU64(D.newestPositionOffset),
                 newestSeq: entry.loadU64(D.newestSeqOffset),
                 count: entry.loadU64(D.countOffset))
    }

    /// Reads entry `index` under its seqlock; nil when it stayed torn for `readRetriesMax` tries
    /// or holds an impossible name length. `nameMatches` is set when `name` is given and equal.
    func snapshotAcquire(_ index: Int, name: UnsafeRawBufferPointer?, nameMatches: inout Bool) -> Snapshot? {
        let read: (Snapshot, Bool)? = readConsistent(index) { entry in
            var matches = false
            if let name {
                let nameLength = Int(entry.loadU32(D.nameLengthOffset))
                if nameLength == name.count, nameLength <= LogDescriptor.Record.maxNameBytes {
                    matches = memcmp(entry + D.nameOffset, name.baseAddress!, nameLength) == 0
                }
            }
            return (Self.snapshot(entry), matches)
        }
        guard let read else { return nil }
        nameMatches = read.1
        return read.0
    }

    /// Entry `index`'s name with its snapshot, both read under one seqlock pass; nil when the
    /// entry stayed torn, is not live, or holds an impossible name length.
    func nameAcquire(_ index: Int) -> (name: [UInt8], snapshot: Snapshot)? {
        let read: (name: [UInt8], snapshot: Snapshot)?? = readConsistent(index) { entry in
            let length = Int(entry.loadU32(D.nameLengthOffset))
            // An impossible length is read as "nothing" (retrying would not change it).
            guard length >= 1, length <= LogDescriptor.Record.maxNameBytes else { return .some(nil) }
            return .some(([UInt8](UnsafeRawBufferPointer(start: entry + D.nameOffset, count: length)), Self.snapshot(entry)))
        }
        guard let found = read ?? nil, found.snapshot.state == D.stateLive else { return nil }
        return found
    }

    /// Probes for `name`. nil when absent (or when an entry on the way stayed torn).
    func findAcquire(_ name: UnsafeRawBufferPointer) -> (index: Int, snapshot: Snapshot)? {
        guard name.count >= 1, name.count <= LogDescriptor.Record.maxNameBytes else { return nil }
        let mask = entryCount - 1
        var index = Int(truncatingIfNeeded: LogDescriptor.nameHash(name)) & mask
        for _ in 0..<entryCount {
            var matches = false
            guard let snapshot = snapshotAcquire(index, name: name, nameMatches: &matches) else { return nil }
            switch snapshot.state {
            case D.stateEmpty: return nil
            case D.stateLive where matches: return (index, snapshot)
            default: break
            }
            index = (index + 1) & mask
        }
        return nil
    }

    // MARK: Writer side (single writer: plain loads of its own data are exact)

    /// Where an append to a slot goes.
    struct Resolution {
        var index: Int
        var generation: UInt32
        var isNew: Bool
        var newestPosition: UInt64  // noPosition when new
        var newestSeq: UInt64
        var count: UInt64
    }

    private func nameEquals(_ entry: UnsafeMutableRawPointer, _ name: UnsafeRawBufferPointer) -> Bool {
        Int(entry.loadU32(D.nameLengthOffset)) == name.count
            && memcmp(entry + D.nameOffset, name.baseAddress!, name.count) == 0
    }

    private func isDead(_ entry: UnsafeMutableRawPointer, oldestPosition: UInt64) -> Bool {
        entry.loadU32(D.stateOffset) == D.stateLive && entry.loadU64(D.newestPositionOffset) < oldestPosition
    }

    /// Finds `name` or picks a free entry for it, tombstoning dead entries on the way (and
    /// sweeping once when `liveSlots` reached `maxSlots`). nil when the directory is full.
    /// `undo`, when given, saves each entry before it is first changed (tombstones included).
    func resolveForAppend(
        _ name: UnsafeRawBufferPointer, oldestPosition: UInt64, liveSlots: inout Int,
        undo: DirectoryUndo? = nil
    ) -> Resolution? {
        let mask = entryCount - 1
        var index = Int(truncatingIfNeeded: LogDescriptor.nameHash(name)) & mask
        var free: Int? = nil
        for _ in 0..<entryCount {
            let entry = region.directoryEntry(index)
            let state = entry.loadU32(D.stateOffset)
            if state == D.stateEmpty {
                if free == nil { free = index }
                break
            }
            if state == D.stateLive {
                if nameEquals(entry, name) {
                    return Resolution(
                        index: index, generation: entry.loadU32(D.generationOffset), isNew: false,
                        newestPosition: entry.loadU64(D.newestPositionOffset),
                        newestSeq: entry.loadU64(D.newestSeqOffset), count: entry.loadU64(D.countOffset))
                }
                if isDead(entry, oldestPosition: oldestPosition) {
                    undo?.remember(index, in: self)
                    tombstone(index)
                    liveSlots -= 1
                    if free == nil { free = index }
                }
            } else if free == nil {
                free = index
            }
            index = (index + 1) & mask
        }
        if liveSlots >= region.geometry.maxSlots {
            for i in 0..<entryCount where isDead(region.directoryEntry(i), oldestPosition: oldestPosition) {
                undo?.remember(i, in: self)
                tombstone(i)
                liveSlots -= 1
                if free == nil { free = i }
            }
        }
        guard liveSlots < region.geometry.maxSlots, let free else { return nil }
        let generation = region.directoryEntry(free).loadU32(D.generationOffset) &+ 1
        return Resolution(
            index: free, generation: generation, isNew: true,
            newestPosition: LogDescriptor.Record.noPosition, newestSeq: 0, count: 0)
    }

    /// Whether `name` has a live entry that is not dead (an append to it needs no new entry). A
    /// dead one is counted as new: `deadCount` also counts it as recyclable, and staging the
    /// name revives it, so counting it as held too would pass a batch that then fails.
    func holdsLive(_ name: UnsafeRawBufferPointer, oldestPosition: UInt64) -> Bool {
        let mask = entryCount - 1
        var index = Int(truncatingIfNeeded: LogDescriptor.nameHash(name)) & mask
        for _ in 0..<entryCount {
            let entry = region.directoryEntry(index)
            let state = entry.loadU32(D.stateOffset)
            if state == D.stateEmpty { return false }
            if state == D.stateLive && nameEquals(entry, name) { return !isDead(entry, oldestPosition: oldestPosition) }
            index = (index + 1) & mask
        }
        return false
    }

    /// Live entries whose records are all gone: what a sweep could recycle. O(entries).
    func deadCount(oldestPosition: UInt64) -> Int {
        var dead = 0
        for i in 0..<entryCount where isDead(region.directoryEntry(i), oldestPosition: oldestPosition) { dead += 1 }
        return dead
    }

    /// Seqlock write: odd, release fence, body, even (release).
    @inline(__always)
    private func write(_ index: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        let entry = region.directoryEntry(index)
        let odd = entry.loadU32(D.seqlockOffset) | 1
        rg_store_release_u32(entry + D.seqlockOffset, odd)
        rg_fence_release()
        body(entry)
        rg_store_release_u32(entry + D.seqlockOffset, odd &+ 1)
    }

    func tombstone(_ index: Int) {
        write(index) { entry in entry.storeU32(D.stateOffset, D.stateTombstone) }
    }

    /// Publishes a slot's new newest record (and, for a new slot, its name and generation).
    func publish(_ r: Resolution, name: UnsafeRawBufferPointer, newestPosition: UInt64, newestSeq: UInt64, count: UInt64) {
        write(r.index) { entry in
            if r.isNew {
                entry.storeU32(D.generationOffset, r.generation)
                entry.storeU32(D.nameLengthOffset, UInt32(name.count))
                memcpy(entry + D.nameOffset, name.baseAddress!, name.count)
                entry.storeU64(D.hashOffset, LogDescriptor.nameHash(name))
                entry.storeU32(D.stateOffset, D.stateLive)
            }
            entry.storeU64(D.newestPositionOffset, newestPosition)
            entry.storeU64(D.newestSeqOffset, newestSeq)
            entry.storeU64(D.countOffset, count)
        }
    }

    /// Appends a copy of entry `index` (everything but its seqlock) to `bytes`, for `restore`.
    func save(_ index: Int, appendingTo bytes: inout [UInt8]) {
        let entry = region.directoryEntry(index)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: entry + 4, count: D.entryLength - 4))
    }

    /// Puts back what `save` copied (at `saved`), under the seqlock.
    func restore(_ index: Int, from saved: UnsafeRawPointer) {
        write(index) { entry in _ = memcpy(entry + 4, saved, D.entryLength - 4) }
    }

    /// Points a live entry at an older record of its slot (recovery cut the newer ones).
    func rewind(_ index: Int, newestPosition: UInt64, newestSeq: UInt64, count: UInt64) {
        write(index) { entry in
            entry.storeU64(D.newestPositionOffset, newestPosition)
            entry.storeU64(D.newestSeqOffset, newestSeq)
            entry.storeU64(D.countOffset, count)
        }
    }

    /// Makes entry `index` even if a writer died inside its seqlock.
    func repairSeqlock(_ index: Int) {
        let entry = region.directoryEntry(index)
        let seqlock = entry.loadU32(D.seqlockOffset)
        if seqlock & 1 != 0 { rg_store_release_u32(entry + D.seqlockOffset, seqlock &+ 1) }
    }
}
