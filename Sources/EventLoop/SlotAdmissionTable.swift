import CRinggateSys
import Glibc

/// Host-wide subscriber counts per slot, for `--max-subscribers-per-slot`, in a shared
/// mapping that every worker attaches.
///
/// ```
/// entries[i]:  state u32 (0 empty, 1 being claimed, 2 ready) | nameLength u32 | name[128]
/// counts[w][i]: u32 — worker w's open streams on slot i (written by worker w only)
/// ```
/// A slot's entry is claimed once (compare-and-swap on `state`) and kept; lookups compare the
/// whole name, so a hash collision costs a longer probe, never a wrong count. Each worker
/// writes only its own column, so the supervisor can zero a crashed worker's column, and an
/// admission check sums the columns (two workers admitting at the same instant can overshoot
/// by at most one each, like `--max-connections`). When every entry holds some slot name, a
/// stream on a new slot is refused: the table is a configured limit too.
public struct SlotAdmissionTable: @unchecked Sendable {
    static let entryBytes = 144
    static let nameOffset = 8
    public let base: UnsafeMutableRawPointer
    public let entries: Int
    public let workers: Int

    public static func bytes(entries: Int, workers: Int) -> Int {
        entries * entryBytes + workers * entries * 4
    }

    /// Maps `fd` (created by the supervisor with `create`), or creates a new memfd.
    public init(base: UnsafeMutableRawPointer, entries: Int, workers: Int) {
        precondition(entries > 0 && entries & (entries - 1) == 0)
        self.base = base
        self.entries = entries
        self.workers = workers
    }

    public static func create(entries: Int, workers: Int) -> (fd: Int32, table: SlotAdmissionTable)? {
        let fd = rg_memfd_create("ringgate-admission")
        guard fd >= 0 else { return nil }
        let length = bytes(entries: entries, workers: workers)
        guard ftruncate(fd, off_t(length)) == 0, let table = map(fd: fd, entries: entries, workers: workers) else {
            close(fd)
            return nil
        }
        return (fd, table)
    }

    public static func map(fd: Int32, entries: Int, workers: Int) -> SlotAdmissionTable? {
        let length = bytes(entries: entries, workers: workers)
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else { return nil }
        return SlotAdmissionTable(base: p, entries: entries, workers: workers)
    }

    @inline(__always) func entry(_ i: Int) -> UnsafeMutableRawPointer { base + i * Self.entryBytes }

    @inline(__always) func count(worker: Int, entry i: Int) -> UnsafeMutableRawPointer {
        base + entries * Self.entryBytes + (worker * entries + i) * 4
    }

    /// The entry for `name`, claiming a free one if needed; nil when the table is full.
    public func entryIndex(for name: [UInt8]) -> Int? {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let mask = entries - 1
        var i = Int(truncatingIfNeeded: h) & mask
        for _ in 0..<entries {
            let e = entry(i)
            var state = rg_load_acquire_u32(e)
            if state == 0 && rg_cas_u32(e, 0, 1) != 0 {
                rg_store_relaxed_u32(e + 4, UInt32(name.count))
                name.withUnsafeBytes { (e + Self.nameOffset).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
                rg_store_release_u32(e, 2)
                return i
            }
            var spins = 0
            while state == 1 && spins < 1_000_000 {   // another worker is writing the name
                spins += 1
                state = rg_load_acquire_u32(e)
            }
            if state == 2 && Int(rg_load_relaxed_u32(e + 4)) == name.count
                && memcmp(e + Self.nameOffset, name, name.count) == 0 {
                return i
            }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Streams open on the slot, summed over every worker.
    public func total(entry i: Int) -> Int {
        var sum = 0
        for w in 0..<workers { sum += Int(rg_load_relaxed_u32(count(worker: w, entry: i))) }
        return sum
    }

    public func add(worker: Int, entry i: Int, _ delta: Int32) {
        let p = count(worker: worker, entry: i)
        rg_store_relaxed_u32(p, UInt32(bitPattern: Int32(bitPattern: rg_load_relaxed_u32(p)) &+ delta))
    }

    /// Forgets a worker's counts (it died with its connections).
    public func clear(worker: Int) {
        memset(count(worker: worker, entry: 0), 0, entries * 4)
    }
}
