import HTTPServer
import RingLog
import StreamPolicy
import WireProtocol

/// A record of one slot's catch-up window: window `slot` (the membership's index), record `k`.
struct MergedRecord {
    var seq: UInt64
    var slot: Int32
    var k: Int32
}

/// Streams of several slots (`/v1/stream?slot=a&slot=b`, `/v1/ws?slot=…`). Seqs are global, so
/// the stream has one cursor; it is in each slot's fan-out list while live, and catching up it
/// reads one window per slot after the cursor and delivers their records merged by seq. What
/// is per slot is what a reset needs: the ordinal of its last event (exact `dropped`) and
/// whether this slot's loss was already reported.
extension Worker {
    /// A live delivery of an event of local slot `slot`.
    @inline(__always)
    func noteSlotDelivered(_ s: UnsafeMutablePointer<Subscriber>, slot: Int32, ordinal: UInt64) {
        for k in s.pointee.memberships.indices where s.pointee.memberships[k].localSlot == slot {
            s.pointee.memberships[k].ordinal = ordinal
            s.pointee.memberships[k].gapAccepted = false
        }
    }

    /// `catchUp` of a stream of several slots: windows of every slot after the cursor, up to
    /// the fan-out position, merged by seq. A window that came back full bounds what may be
    /// delivered this round (records of that slot past its end are not read yet); when none
    /// was full, everything up to the fan-out position was delivered and the stream goes live.
    func catchUpSlots(_ connection: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.active, !s.pointee.cursor.closing, s.pointee.liveIndex < 0, engine.isOpenStream(connection) else { return }
        let transport = s.pointee.transport
        reading: while true {
            if engine.streamSpace(connection) < 512 { return }
            s.pointee.cursor.observeLag(fanoutSeq: fanoutSeq)
            slotWindows.removeAll(keepingCapacity: true)
            for m in s.pointee.memberships {
                guard let name = slots.slots[Int(m.localSlot)]?.name else { return }
                slotWindows.append(name.withUnsafeBytes { nameBytes in
                    reader.window(slot: nameBytes, after: s.pointee.cursor.seq, afterOrdinal: m.ordinal == 0 ? nil : m.ordinal,
                                  limit: catchUpBatch, maxSeq: fanoutSeq, scratch: recordScratch)
                })
            }
            if s.pointee.cursor.pendingEpochReset {
                // The resume id is not of this log: one reset for the whole stream, which
                // starts over from each slot's oldest event (their losses are part of it).
                let frame = resetFrame(transport, reason: ResetReason.epoch.rawValue, slot: .wholeStream,
                                       dropped: nil, oldestSeq: 0, headSeq: 0)
                guard writeControl(connection, frame) else { return }
                counters.add(.resetsEpoch)
                s.pointee.cursor.resetSent()
                for k in s.pointee.memberships.indices { s.pointee.memberships[k].gapAccepted = true }
                let firstRetained = slotWindows.compactMap(\.seqs.first).min()
                s.pointee.gapsReportedThrough = firstRetained.map { $0 - 1 } ?? fanoutSeq
            }
            for k in slotWindows.indices where slotWindows[k].reset {
                switch config.lagPolicy.action(windowReset: true, gapAccepted: s.pointee.memberships[k].gapAccepted,
                                               unknownID: false) {
                case .deliver:
                    continue
                case .disconnect:
                    closeStream(connection, reason: .slowConsumer)
                    return
                case .reset(let reason):
                    let window = slotWindows[k]
                    let frame = resetFrame(transport, reason: reason.rawValue, slot: slotNamed(s, k),
                                           dropped: window.dropped, oldestSeq: window.slotOldestSeq, headSeq: window.slotHeadSeq)
                    guard writeControl(connection, frame) else { return }
                    counters.add(.resetsLapped)
                    s.pointee.memberships[k].gapAccepted = true
                }
            }
            var bound = fanoutSeq
            var full = false
            for window in slotWindows where window.positions.count >= catchUpBatch {
                bound = min(bound, window.seqs[window.seqs.count - 1])
                full = true
            }
            mergedRecords.removeAll(keepingCapacity: true)
            for (slot, window) in slotWindows.enumerated() {
                for k in window.seqs.indices where window.seqs[k] <= bound {
                    mergedRecords.append(MergedRecord(seq: window.seqs[k], slot: Int32(slot), k: Int32(k)))
                }
            }
            mergedRecords.sort { $0.seq < $1.seq }
            var delivered: UInt64 = 0
            defer { counters.add(transport == .sse ? .eventsDeliveredSSE : .eventsDeliveredWS, delivered) }
            for record in mergedRecords {
                let k = Int(record.k), slot = Int(record.slot)
                let window = slotWindows[slot]
                let view: LogReader.RecordView
                switch reader.copyRecord(at: window.positions[k], into: recordScratch) {
                case .record(let copied):
                    view = copied
                case .lapped, .notYetWritten:
                    continue reading   // overwritten meanwhile: the next windows report the loss
                case .damaged, .padding:
                    guard reportGaps(connection, through: window.seqs[k] - 1, window: window) else { return }
                    noteDamaged(window.damagedRecord(k))
                    let frame = damagedResetFrame(transport, slot: slotNamed(s, slot), dropped: 1,
                                                  oldestSeq: window.slotOldestSeq, headSeq: window.slotHeadSeq)
                    guard writeControl(connection, frame) else { return }
                    counters.add(.resetsDamaged)
                    s.pointee.cursor.skippedDamaged(seq: window.seqs[k], ordinal: 0)
                    s.pointee.memberships[slot].ordinal = window.slotOrdinals[k]
                    continue
                }
                guard reportGaps(connection, through: view.seq - 1, window: window) else { return }
                if encodedLength(view, transport: transport, namesSlot: true) > engine.streamSpace(connection) {
                    return   // wait for the socket to drain
                }
                _ = engine.streamWrite(connection) { out in encodeFrame(view, transport: transport, namesSlot: true, into: out).count }
                s.pointee.cursor.delivered(seq: view.seq, ordinal: 0, nowNanoseconds: engine.nowNanoseconds)
                s.pointee.memberships[slot].ordinal = view.slotOrdinal
                s.pointee.memberships[slot].gapAccepted = false
                delivered += 1
            }
            if !full {
                // Every slot is delivered up to the fan-out position: rejoin the fan-out, after
                // the gaps between its last event and the fan-out position.
                guard reportGaps(connection, through: fanoutSeq, window: LogReader.Window()) else { return }
                if s.pointee.cursor.mode == .catchingUp { counters.subtract(.connectionsCatchingUp) }
                counters.observeLag(events: s.pointee.cursor.promote(fanoutSeq: fanoutSeq))
                joinLive(connection)
                return
            }
            // A full window: the cursor is at its last record (`bound`) now; read on from there.
        }
    }

    /// The reset's slot for membership `k`: its name.
    func slotNamed(_ s: UnsafeMutablePointer<Subscriber>, _ k: Int) -> ResetSlot {
        .named(slots.slots[Int(s.pointee.memberships[k].localSlot)]?.name ?? [])
    }
}
