import CRinggateSys
import Glibc
import RingLog

/// Host-wide subscriber counts per slot, for `--max-subscribers-per-slot`, in a shared
/// mapping that every worker attaches.
///
/// ```
/// entries[i]:  state u32 (0 empty, 2 ready, 1 | w << 8 being claimed by worker w)
///               | nameLength u32 | name[128]
/// counts[w][i]: u32 — worker w's open streams on slot i (written by worker w only)
/// ```
/// A slot's entry is claimed once (compare-and-swap on `state`) and kept; lookups compare the
/// whole name, so a hash collision costs a longer probe, never a wrong count. Each worker
/// writes only its own column, so the supervisor can zero a crashed worker's column, and an
/// admission check sums the columns (two workers admitting at the same instant can overshoot
/// by at most one each, like `--max-connections`). When every entry holds some slot name, a
/// stream on a new slot is refused: the table is a configured limit too.
///
/// The claimer's index is in the state word, so when a worker dies between the claim and
/// `ready`, the supervisor's `clear(worker:)` frees its half-made entries; and a lookup waits
/// only a bounded time for a claim in progress (a live claimer needs two stores).
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

    // MARK: SUPERVISOR + BROWSERS
    static let stateEmpty: UInt32 = 0
    static let stateReady: UInt32 = 2
    static func stateClaiming(worker: Int) -> UInt32 { 1 | UInt32(truncatingIfNeeded: worker) << 8 }
    static func isClaiming(_ state: UInt32) -> Bool { state & 0xff == 1 }
    /// Busy polls, then yields, while another worker finishes a claim: a claimer that is
    /// running needs nanoseconds, one that was preempted a time slice or two.
    static let claimSpinsMax = 1000
    static let claimYieldsMax = 100

    public enum Lookup: Equatable, Sendable {
        case entry(Int)
        /// Every entry holds another slot's name.
        case full
        /// An entry on the probe path stayed half-claimed past the bounded wait (its claimer
        /// died and the supervisor has not released it yet): try again shortly. Probing past
        /// it instead could claim a second entry for the same name (the half-made one may be
        /// that name's), which would split its count and let the limit be exceeded.
        case busy
    }

    /// The entry for `name`, claiming a free one for `worker` if needed.
    public func entryIndex(for name: [UInt8], worker: Int) -> Lookup {
        let mask = entries - 1
        var i = Self.homeIndex(name, mask: mask)
        for _ in 0..<entries {
            let e = entry(i)
            var state = rg_load_acquire_u32(e)
            if state == Self.stateEmpty {
                if rg_cas_u32(e, Self.stateEmpty, Self.stateClaiming(worker: worker)) != 0 {
                    finishClaim(e, name)
                    return .entry(i)
                }
                state = rg_load_acquire_u32(e)   // another worker claimed it first
            }
            var waits = 0
            while Self.isClaiming(state) {
                guard waits < Self.claimSpinsMax + Self.claimYieldsMax else { return .busy }
                if waits >= Self.claimSpinsMax { sched_yield() }
                waits += 1
                state = rg_load_acquire_u32(e)
            }
            if state == Self.stateEmpty { continue }   // released by the supervisor: probe it again
            if Int(rg_load_relaxed_u32(e + 4)) == name.count && memcmp(e + Self.nameOffset, name, name.count) == 0 {
                return .entry(i)
            }
            i = (i + 1) & mask
        }
        return .full
    }

    static func homeIndex(_ name: [UInt8], mask: Int) -> Int {
        Int(truncatingIfNeeded: FNV1a.hash64(name)) & mask
    }

    func finishClaim(_ e: UnsafeMutableRawPointer, _ name: [UInt8]) {
        rg_store_relaxed_u32(e + 4, UInt32(name.count))
        name.withUnsafeBytes { (e + Self.nameOffset).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
        rg_store_release_u32(e, Self.stateReady)
    }

    /// Test hook: claims `name`'s entry for `worker` and stops there, as a worker killed
    /// between the claim and `ready` leaves it.
    func claimWithoutFinishing(_ name: [UInt8], worker: Int) -> Int? {
        let mask = entries - 1
        var i = Self.homeIndex(name, mask: mask)
        for _ in 0..<entries {
            if rg_cas_u32(entry(i), Self.stateEmpty, Self.stateClaiming(worker: worker)) != 0 { return i }
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

    /// Forgets a dead worker's counts (it died with its connections) and frees the entries it
    /// was claiming; returns how many it freed. Only the supervisor calls this, after the reap.
    @discardableResult
    public func clear(worker: Int) -> Int {
        memset(count(worker: worker, entry: 0), 0, entries * 4)
        let claiming = Self.stateClaiming(worker: worker)
        var released = 0
        for i in 0..<entries where rg_load_acquire_u32(entry(i)) == claiming {
            // A compare-and-swap, not a store: only that worker's own half-made claim is freed.
            if rg_cas_u32(entry(i), claiming, Self.stateEmpty) != 0 { released += 1 }
        }
        return released
    }
}
