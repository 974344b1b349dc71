/// History windows of one slot: found in O(log n) links, collected in O(limit).
extension LogReader {
    public struct Window: Equatable {
        /// Record positions in ascending seq order; read each with `copyRecord` (it may be
        /// lapped by then: the caller reports that like any lap). The walk validates headers
        /// only, so a record whose lengths or payload are damaged is named here and copies as
        /// `.damaged`: the caller steps past it with the seq and ordinal named here.
        public var positions: [UInt64]
        /// Seq and slot ordinal of each record of `positions`, from the headers the walk read
        /// and validated: a damaged record is stepped past without searching the seq index.
        public var seqs: [UInt64]
        public var slotOrdinals: [UInt64]
        /// Events of this slot after `after` were overwritten; the window starts at the slot's
        /// oldest retained event.
        public var reset: Bool
        /// With `reset` and a known `afterOrdinal`: exactly how many events were lost.
        public var dropped: UInt64?
        /// Oldest and newest retained, committed seq of the slot (records below `tail`: a
        /// staged batch is not reported, its seqs may be rolled back and reused); 0 when none.
        public var slotOldestSeq: UInt64
        public var slotHeadSeq: UInt64

        public init(positions: [UInt64] = [], seqs: [UInt64] = [], slotOrdinals: [UInt64] = [],
                    reset: Bool = false, dropped: UInt64? = nil,
                    slotOldestSeq: UInt64 = 0, slotHeadSeq: UInt64 = 0) {
            self.positions = positions
            self.seqs = seqs
            self.slotOrdinals = slotOrdinals
            self.reset = reset
            self.dropped = dropped
            self.slotOldestSeq = slotOldestSeq
            self.slotHeadSeq = slotHeadSeq
        }
    }

    /// `after == nil`: the newest `limit` events of the slot with seq <= `maxSeq`.
    /// `after != nil`: the first `limit` events of the slot with `after < seq <= maxSeq`.
    ///
    /// `reset` is exact: it is set when an event of this slot with seq > `after` is no longer
    /// retained (the oldest retained record's `prevSeq` says so). `afterOrdinal`, the slot
    /// ordinal of the `after` event when the caller knows it, makes `dropped` exact.
    /// `scratch` is unused today but reserved so the signature can copy records later.
    public func window(
        slot: UnsafeRawBufferPointer, after: UInt64?, afterOrdinal: UInt64? = nil, limit: Int,
        maxSeq: UInt64 = .max, scratch: UnsafeMutableRawBufferPointer
    ) -> Window {
        var hops = 0
        return window(slot: slot, after: after, afterOrdinal: afterOrdinal, limit: limit, maxSeq: maxSeq, hops: &hops)
    }

    /// Retries when the writer overwrote the window while it was being collected.
    static var windowAttemptsMax: Int { 4 }

    /// `hops` counts the links followed by the searches (not the O(limit) collection).
    func window(
        slot: UnsafeRawBufferPointer, after: UInt64?, afterOrdinal: UInt64?, limit: Int, maxSeq: UInt64,
        hops: inout Int
    ) -> Window {
        precondition(limit >= 0, "limit must not be negative")
        // Records at or past `tail` are not visible to copyRecord yet (the directory is
        // published before `tail`): the window stops before them.
        let tail = tailAcquire()
        guard let info = findSlot(slot) else { return Window() }
        var result = Window()
        for _ in 0..<Self.windowAttemptsMax {
            if let window = attemptWindow(info: info, after: after, afterOrdinal: afterOrdinal, limit: limit,
                                          maxSeq: maxSeq, tail: tail, hops: &hops) {
                return window
            }
            result.reset = after != nil
        }
        return result
    }

    /// One try; nil when a record needed to finish vanished under the writer.
    private func attemptWindow(
        info: SlotInfo, after: UInt64?, afterOrdinal: UInt64?, limit: Int, maxSeq: UInt64, tail: UInt64,
        hops: inout Int
    ) -> Window? {
        var window = Window()
        hops += 1
        guard let staged = readHeader(
            info.newestPosition, slot: (info.index, info.generation, info.count))
        else {
            // Nothing of the slot is retained: its newest record was overwritten, so it was
            // committed (the cap on the published head covers a directory snapshot taken
            // before a rollback whose position was reused since).
            if let after, after < min(info.newestSeq, headSeqAcquire()) {
                window.reset = true
                if let afterOrdinal, afterOrdinal < info.count { window.dropped = info.count - afterOrdinal }
            }
            return window
        }
        // The directory is published at stage time: a batch not committed yet (records at or
        // past `tail`) is not part of the slot for anything this reports.
        var newest = staged
        if staged.position >= tail {
            let uncommitted = descend(from: staged, hops: &hops) { $0.position >= tail }.header
            hops += 1
            guard let committed = readPrevious(uncommitted) else {
                // Nothing committed is retained: ordinal 1 is staged, or the older records
                // were overwritten (then events after `after` may be lost).
                if let after, uncommitted.ordinal > 1, after < uncommitted.prevSeq { window.reset = true }
                return window
            }
            newest = committed
        }
        let oldest = descend(from: newest, hops: &hops) { _ in true }.header
        window.slotHeadSeq = newest.seq
        window.slotOldestSeq = oldest.seq

        // First record of the window (after mode only).
        var start: Header? = nil
        if let after {
            guard newest.seq > after else { return window }
            if oldest.seq > after {
                start = oldest
                if oldest.prevSeq > after {
                    window.reset = true
                    if let afterOrdinal, afterOrdinal < oldest.ordinal { window.dropped = oldest.ordinal - afterOrdinal - 1 }
                }
            } else {
                start = descend(from: newest, hops: &hops) { $0.seq > after }.header
            }
        }
        guard limit > 0 else { return window }

        // Last record: the newest with ordinal <= lastOrdinal, seq <= maxSeq, before `tail`.
        let lastOrdinal = start.map { $0.ordinal + UInt64(limit) - 1 } ?? .max
        var end = newest
        if newest.ordinal > lastOrdinal || newest.seq > maxSeq || newest.position >= tail {
            let beyond = descend(from: newest, hops: &hops) {
                $0.ordinal > lastOrdinal || $0.seq > maxSeq || $0.position >= tail
            }
            if beyond.olderGone { return window }
            hops += 1
            guard let previous = readPrevious(beyond.header) else {
                // Nothing older than the bound (ordinal 1), or it was overwritten.
                return beyond.header.ordinal <= 1 ? window : nil
            }
            end = previous
        }
        if let start, end.ordinal < start.ordinal { return window }

        // Collect backwards from `end`: O(limit).
        var positions: [UInt64] = [], seqs: [UInt64] = [], ordinals: [UInt64] = []
        positions.reserveCapacity(min(limit, 1024))
        seqs.reserveCapacity(min(limit, 1024))
        ordinals.reserveCapacity(min(limit, 1024))
        var current = end
        while true {
            positions.append(current.position)
            seqs.append(current.seq)
            ordinals.append(current.ordinal)
            if positions.count == limit { break }
            if let start, current.ordinal <= start.ordinal { break }
            guard let previous = readPrevious(current) else {
                if start != nil, current.ordinal > 1 { return nil }  // start was overwritten meanwhile
                break
            }
            current = previous
        }
        positions.reverse()
        seqs.reverse()
        ordinals.reverse()
        window.positions = positions
        window.seqs = seqs
        window.slotOrdinals = ordinals
        return window
    }
}
