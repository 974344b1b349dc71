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
    func damagedResetFrame(_ transport: Subscriber.Transport, dropped: UInt64?,
                           oldestSeq: UInt64, headSeq: UInt64) -> [UInt8] {
        let oldest = oldestSeq == 0 ? nil : EventID(epoch: reader.epoch, seq: oldestSeq)
        let head = headSeq == 0 ? nil : EventID(epoch: reader.epoch, seq: headSeq)
        return transport == .sse
            ? SSEEncoder.resetEvent(reason: Self.damagedResetReason, oldest: oldest, head: head, dropped: dropped)
            : WebSocketMessageEncoder.resetFrame(reason: Self.damagedResetReason, oldest: oldest, head: head,
                                                 dropped: dropped)
    }
}

extension Worker {
    /// Moves a catching-up subscriber's cursor past a damaged record of its window, after a
    /// reset that says what was lost (one event when the record's seq is known). False when
    /// the reset does not fit its buffer yet: the next catch-up meets the record again.
    func skipDamaged(_ connection: Int32, _ damaged: LogReader.DamagedRecord, window: LogReader.Window) -> Bool {
        noteDamaged(damaged)
        let s = subscribers + Int(connection)
        let frame = damagedResetFrame(s.pointee.transport, dropped: damaged.seq == nil ? nil : 1,
                                      oldestSeq: window.slotOldestSeq, headSeq: window.slotHeadSeq)
        guard writeControl(connection, frame) else { return false }
        counters.add(.resetsDamaged)
        if let seq = damaged.seq {
            s.pointee.cursorSeq = seq
            s.pointee.cursorOrdinal = damaged.slotOrdinal ?? 0
        } else {
            s.pointee.cursorSeq = max(s.pointee.cursorSeq,
                                      reader.resumePoint(after: damaged, lastSeq: s.pointee.cursorSeq).throughSeq)
            s.pointee.cursorOrdinal = 0
        }
        return true
    }
}
