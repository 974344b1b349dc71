import StreamPolicy
import WireProtocol

/// One worker's subscribers, grouped by slot. A subscriber is a cursor, never a queue: it is
/// either *live* (in its slot's fan-out list, cursor equal to the fan-out position) or catching
/// up from its cursor through windowed reads of the log. Its stream decisions live in
/// `cursor` (StreamPolicy); this entry adds what the I/O needs.
struct Subscriber {
    enum Transport: UInt8 { case sse, webSocket }

    var active = false
    var transport = Transport.sse
    var localSlot: Int32 = -1
    var admissionEntry: Int32 = -1       // its slot's entry in the shared admission table
    var liveIndex: Int32 = -1            // index in its slot's `live`, -1 when catching up
    var cursor = SubscriberCursor()      // cursor, live/catch-up, lag, heartbeat and lifetime
    // WebSocket only: the client's frames are decoded (and data messages dropped) without
    // buffering them.
    var decoder: WebSocketFrameDecoder? = nil
    var inputBytesSincePing = 0          // bytes the client sent since the last ping went out
    // MARK: CLUSTER
    /// Log gaps (seqs this host will never hold) up to this seq were reported to it (or are
    /// behind a reset that started it over); its cursor's seq covers the rest.
    var gapsReportedThrough: UInt64 = 0
    // MARK: AUTH (issue 14)
    /// Monotonic time its token expires (exp + leeway); 0 = no token (auth off).
    var tokenExpiresAtNanoseconds: UInt64 = 0
    /// Its entry in the worker's timer wheel (an entry with another token is stale).
    var timerToken: UInt32 = 0
    // MARK: SEVERAL SLOTS
    /// A stream of several slots (`/v1/stream?slot=a&slot=b`): one entry per slot, and its
    /// frames name the slot. Then `localSlot` and `admissionEntry` are unused and `liveIndex`
    /// only says live (0) or not (-1). Empty on a stream of one slot.
    var memberships: [SlotMembership] = []

    /// Its frames name their slot (a stream of several slots, even of one named that way).
    var namesSlots: Bool { !memberships.isEmpty }

    /// Counted in `connections_catching_up`.
    var catchingUp: Bool { active && cursor.mode == .catchingUp }
}

/// One slot of a stream of several slots. The cursor's seq is global (seqs are over the whole
/// log); what is per slot is the fan-out position and what exact `dropped` counts need.
struct SlotMembership {
    var localSlot: Int32
    var admissionEntry: Int32 = -1
    /// Index in the slot's `live`, -1 when catching up.
    var liveIndex: Int32 = -1
    /// The slot ordinal of the last event of this slot delivered, 0 when unknown.
    var ordinal: UInt64 = 0
    /// A reset was sent for this slot's current loss (until its next event is delivered).
    var gapAccepted = false
}

struct LocalSlot {
    var name: [UInt8]
    var live: [Int32] = []
    var subscribers = 0
}

/// Local slots by name, plus a cache from the log's (slot index, generation) to a local slot,
/// so fan-out resolves each record with one dictionary lookup.
struct SlotTable {
    var slots: [LocalSlot?] = []
    var freeIDs: [Int32] = []
    var byName: [[UInt8]: Int32] = [:]
    var byLogKey: [UInt64: Int32] = [:]
    let cacheLimit: Int
    /// Live subscribers over all slots (the sum of every `live.count`).
    private(set) var liveTotal = 0

    init(cacheLimit: Int) { self.cacheLimit = cacheLimit }

    mutating func acquire(name: [UInt8]) -> Int32 {
        if let id = byName[name] {
            slots[Int(id)]!.subscribers += 1
            return id
        }
        let id: Int32
        if let reused = freeIDs.popLast() {
            id = reused
            slots[Int(id)] = LocalSlot(name: name, subscribers: 1)
        } else {
            id = Int32(slots.count)
            slots.append(LocalSlot(name: name, subscribers: 1))
        }
        byName[name] = id
        byLogKey.removeAll(keepingCapacity: true)   // negative entries may now be wrong
        return id
    }

    mutating func release(_ id: Int32) {
        slots[Int(id)]!.subscribers -= 1
        if slots[Int(id)]!.subscribers == 0 {
            byName[slots[Int(id)]!.name] = nil
            slots[Int(id)] = nil
            freeIDs.append(id)
            byLogKey.removeAll(keepingCapacity: true)
        }
    }

    /// The local slot for a record, or -1 when nobody here subscribes to it.
    @inline(__always)
    mutating func resolve(logKey: UInt64, name: UnsafeRawBufferPointer) -> Int32 {
        if let id = byLogKey[logKey] { return id }
        let id = byName.isEmpty ? -1 : (byName[Array(name)] ?? -1)
        if byLogKey.count >= cacheLimit { byLogKey.removeAll(keepingCapacity: true) }
        byLogKey[logKey] = id
        return id
    }

    mutating func addLive(_ slot: Int32, connection: Int32) -> Int32 {
        slots[Int(slot)]!.live.append(connection)
        liveTotal += 1
        return Int32(slots[Int(slot)]!.live.count - 1)
    }

    /// Removes the entry at `index` by swapping in the last one; returns the connection that
    /// moved into `index` (its liveIndex must be updated), or nil.
    mutating func removeLive(_ slot: Int32, at index: Int32) -> Int32? {
        var live = slots[Int(slot)]!.live
        slots[Int(slot)]!.live = []
        let last = live.removeLast()
        liveTotal -= 1
        var moved: Int32? = nil
        if Int(index) < live.count {
            live[Int(index)] = last
            moved = last
        }
        slots[Int(slot)]!.live = live
        return moved
    }

    /// Empties every slot's live list (they all go to catch-up); returns what was in them.
    mutating func takeAllLive() -> [Int32] {
        var all: [Int32] = []
        all.reserveCapacity(liveTotal)
        for id in slots.indices where slots[id] != nil {
            all += slots[id]!.live
            slots[id]!.live.removeAll()
        }
        liveTotal = 0
        return all
    }
}
