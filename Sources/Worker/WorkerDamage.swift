import RingLog
import WireProtocol

/// Damaged log records: counted and logged once, stepped past, and reported to the subscribers
/// of their slot as a reset (they lost an event), never read again and again.
extension Worker {
    /// The `reason` of the reset a subscriber gets when a damaged record of its slot is skipped.
    static let damagedResetReason = "damaged"

    /// Counts and logs a damaged record the first time this worker meets it. Readers meet
    /// records in position order, except an old cursor's catch-up: a record below a newer
    /// damaged one that was met first is not counted (a count per worker, not per reader).
    func noteDamaged(_ damaged: LogReader.DamagedRecord) {
        guard damaged.position >= damagedReportedBelow else { return }
        damagedReportedBelow = damaged.position + 1
        counters.add(.logCorruptRecords)
        logger.error("damaged record in the log, skipped", metadata: [
            "position": "\(damaged.position)",
            "seq": "\(damaged.seq.map { String($0) } ?? "unknown")",
        ])
    }

    /// The reset a subscriber gets for a skipped damaged record of its slot.
    func damagedResetFrame(_ transport: Subscriber.Transport, slot: ResetSlot = .omitted, dropped: UInt64?,
                           oldestSeq: UInt64, headSeq: UInt64) -> [UInt8] {
        resetFrame(transport, reason: Self.damagedResetReason, slot: slot, dropped: dropped, oldestSeq: oldestSeq, headSeq: headSeq)
    }

    /// A reset in the transport's shape; seqs of 0 are written `null`.
    func resetFrame(_ transport: Subscriber.Transport, reason: String, slot: ResetSlot, dropped: UInt64?,
                    oldestSeq: UInt64, headSeq: UInt64) -> [UInt8] {
        let oldest = oldestSeq == 0 ? nil : EventID(epoch: reader.epoch, seq: oldestSeq)
        let head = headSeq == 0 ? nil : EventID(epoch: reader.epoch, seq: headSeq)
        return transport == .sse
            ? SSEEncoder.resetEvent(reason: reason, slot: slot, oldest: oldest, head: head, dropped: dropped)
            : WebSocketMessageEncoder.resetFrame(reason: reason, slot: slot, oldest: oldest, head: head, dropped: dropped)
    }
}

extension Worker {
    /// Moves a catching-up subscriber's cursor past record `k` of its window, which is
    /// damaged, after a reset that says one event was lost. The seq and ordinal come from the
    /// window walk, which validated the record's header: no seq-index search from a cursor
    /// that may be far behind. False when the reset does not fit its buffer yet: the next
    /// catch-up meets the record again.
    func skipDamaged(_ conn: Int32, record k: Int, window: LogReader.Window) -> Bool {
        let damaged = window.damagedRecord(k)
        noteDamaged(damaged)
        let s = subscribers + Int(conn)
        let frame = damagedResetFrame(s.pointee.transport, dropped: 1,
                                      oldestSeq: window.slotOldestSeq, headSeq: window.slotHeadSeq)
        guard writeControl(conn, frame) else { return false }
        counters.add(.resetsDamaged)
        s.pointee.cursor.skippedDamaged(seq: window.seqs[k], ordinal: window.slotOrdinals[k])
        return true
    }
}
