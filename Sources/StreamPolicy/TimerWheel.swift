/// Streams by when their timer next needs a look (heartbeat, ping answer, lifetime, token
/// expiry), so a scan touches the streams that are due, not every stream: 100,000 idle
/// streams with a 15 s heartbeat cost 6,700 looks a second instead of 400,000.
///
/// A hashed wheel of `slotCount` slots of `slotNanoseconds`. An entry sits in the slot of its
/// due time; one due later than a turn of the wheel waits in its slot, looked at once a turn.
/// Entries are never removed: each carries the token its stream had when it was scheduled,
/// and the caller drops an entry whose stream has since closed or been rescheduled (a stream
/// holds one live entry; a closed one leaves at most one stale entry, gone within a turn).
/// Pure logic: the worker owns the clock and the streams.
public struct TimerWheel: Sendable {
    public struct Entry: Sendable, Equatable {
        public var connection: Int32
        public var token: UInt32
        public var dueNanoseconds: UInt64
    }

    public let slotNanoseconds: UInt64
    var slots: [[Entry]]
    /// The first absolute slot (time ÷ `slotNanoseconds`) the next `takeDue` looks at: the
    /// current one of the last look (it may have held entries due later within it).
    var nextSlot: UInt64
    public private(set) var count = 0

    public init(slotNanoseconds: UInt64, slotCount: Int, nowNanoseconds now: UInt64) {
        precondition(slotNanoseconds > 0 && slotCount > 1)
        self.slotNanoseconds = slotNanoseconds
        slots = Array(repeating: [], count: slotCount)
        nextSlot = now / slotNanoseconds
    }

    /// Schedules `connection` at `due`; a time already past is due at the next `takeDue`.
    public mutating func schedule(_ connection: Int32, token: UInt32, dueNanoseconds due: UInt64) {
        let slot = max(due / slotNanoseconds, nextSlot)
        slots[Int(slot % UInt64(slots.count))].append(Entry(connection: connection, token: token, dueNanoseconds: due))
        count += 1
    }

    /// Appends every entry due by `now` to `due`, in slot order (at most one turn of slots per
    /// call, so a loop that stalled for longer still looks at every slot once). An entry due
    /// later, in the current slot or a later turn, stays where it is: an entry is handed out at
    /// the first look at or after its due time. The caller handles them after this returns, so it
    /// may schedule again while it does.
    public mutating func takeDue(nowNanoseconds now: UInt64, into due: inout [Entry]) {
        let through = now / slotNanoseconds
        let turn = UInt64(slots.count)
        var slot = max(nextSlot, through >= turn ? through - turn + 1 : 0)
        nextSlot = through
        while slot <= through {
            let k = Int(slot % turn)
            var kept = 0
            for i in slots[k].indices {
                let e = slots[k][i]
                if e.dueNanoseconds <= now {
                    due.append(e)
                } else {
                    slots[k][kept] = e
                    kept += 1
                }
            }
            count -= slots[k].count - kept
            slots[k].removeSubrange(kept...)
            slot += 1
        }
    }
}
