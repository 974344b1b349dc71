import RingLog
import WireProtocol

/// The body of one history pull, read from the log without sockets: complete JSON or nothing.
///
/// A window whose records were overwritten while being copied is read again from scratch: the
/// new window starts at the slot's oldest retained event, with `reset:true` when events after
/// `after` were lost. When every one of `attemptsMax` tries was lapped, the events copied on the
/// last try are answered (a complete body whose `next` is the last of them, so the client goes
/// on from there); when not even one was copied the pull is an overrun and the caller answers
/// with an error status. A damaged record is left out, said with `reset:true` (the client lost
/// an event), and `next` goes past it so a client paging on from `next` is not stuck on it.
struct HistoryBody {
    /// One pull's parameters, already validated.
    struct Query {
        /// The slots read; more than one (or `namesSlots`) merges them by seq.
        var slots: [[UInt8]]
        /// A pull of several slots (`GET /v1/events?slot=…`): each event names its slot, and
        /// `oldest` / `head` are objects keyed by slot.
        var namesSlots: Bool
        /// Seq to read after; nil for the newest `limit` events.
        var after: UInt64?
        /// `after` named an id of another log (then `after` is 0).
        var foreignEpoch: Bool
        /// The `after` id as the client wrote it, echoed as `next` when nothing comes after it.
        var requestedAfter: String?
        var limit: Int

        init(slots: [[UInt8]], namesSlots: Bool, after: UInt64?, foreignEpoch: Bool, requestedAfter: String?, limit: Int) {
            self.slots = slots
            self.namesSlots = namesSlots
            self.after = after
            self.foreignEpoch = foreignEpoch
            self.requestedAfter = requestedAfter
            self.limit = limit
        }

        /// A pull of one slot (`GET /v1/slots/{slot}/events`).
        init(slot: UnsafeRawBufferPointer, after: UInt64?, foreignEpoch: Bool, requestedAfter: String?, limit: Int) {
            self.init(slots: [Array(slot)], namesSlots: false, after: after, foreignEpoch: foreignEpoch,
                      requestedAfter: requestedAfter, limit: limit)
        }
    }

    /// Tries of a window before answering what the last try copied.
    static let attemptsMax = 4

    let reader: LogReader
    let scratch: UnsafeMutableRawBufferPointer
    /// Copies one record in place of `LogReader.copyRecord` (tests: a writer racing the copy).
    var copy: ((UInt64, UnsafeMutableRawBufferPointer) -> LogReader.CopyResult)?
    /// Called for every damaged record met (the worker counts and logs it once).
    var onDamaged: (LogReader.DamagedRecord) -> Void

    init(reader: LogReader, scratch: UnsafeMutableRawBufferPointer,
         copy: ((UInt64, UnsafeMutableRawBufferPointer) -> LogReader.CopyResult)? = nil,
         onDamaged: @escaping (LogReader.DamagedRecord) -> Void = { _ in }) {
        self.reader = reader
        self.scratch = scratch
        self.copy = copy
        self.onDamaged = onDamaged
    }

    /// Writes the whole body into `json` (emptied first); false on an overrun (`json` empty).
    func write(_ json: inout JSONWriter, _ query: Query) -> Bool {
        for attempt in 1...Self.attemptsMax {
            json.reset()
            switch writeAttempt(&json, query, last: attempt == Self.attemptsMax) {
            case .complete: return true
            case .lapped: continue
            case .overrun: json.reset(); return false
            }
        }
        return false   // not reached: the last attempt never answers .lapped
    }

    private enum Attempt { case complete, lapped, overrun }

    /// A record of one of the slots' windows: window `slot`, record `k`.
    private struct Pick { var seq: UInt64; var slot: Int; var k: Int }

    /// The windows' records in seq order, at most `limit`: with `after`, the first of them;
    /// without, the newest. Each window holds the first (newest) `limit` of its slot, so no
    /// record that belongs in the answer is missing from the windows.
    private func merge(_ windows: [LogReader.Window], newest: Bool, limit: Int) -> [Pick] {
        var picks: [Pick] = []
        for (slot, window) in windows.enumerated() {
            for k in window.seqs.indices { picks.append(Pick(seq: window.seqs[k], slot: slot, k: k)) }
        }
        if windows.count > 1 { picks.sort { $0.seq < $1.seq } }
        guard picks.count > limit else { return picks }
        return newest ? Array(picks.suffix(limit)) : Array(picks.prefix(limit))
    }

    private func writeAttempt(_ json: inout JSONWriter, _ query: Query, last: Bool) -> Attempt {
        let windows = query.slots.map { name in
            name.withUnsafeBytes { reader.window(slot: $0, after: query.after, limit: query.limit, scratch: scratch) }
        }
        if query.namesSlots {
            json.appendRaw(#"{"slots":["#)
            for (i, name) in query.slots.enumerated() {
                if i > 0 { json.appendRaw(",") }
                name.withUnsafeBytes { json.appendString($0) }
            }
            json.appendRaw("]")
        } else {
            json.appendRaw(#"{"slot":"#)
            query.slots[0].withUnsafeBytes { json.appendString($0) }
        }
        json.appendRaw(#","events":["#)
        var nextSeq: UInt64 = 0   // `next`: the last event returned, or a damaged one after it
        var count = 0
        var lost = false
        copying: for pick in merge(windows, newest: query.after == nil, limit: query.limit) {
            let window = windows[pick.slot]
            let view: LogReader.RecordView
            switch copy?(window.positions[pick.k], scratch) ?? reader.copyRecord(at: window.positions[pick.k], into: scratch) {
            case .record(let record):
                view = record
            case .lapped, .notYetWritten:
                guard last else { return .lapped }
                if count == 0 { return .overrun }
                break copying
            case .damaged, .padding:
                // (.padding: the window walk read an event header here and it is still intact.)
                // The walk validated this record's header, so its seq is known: stepping past
                // it never searches the seq index (a damaged record first in a window would
                // otherwise walk it from the oldest retained seq, O(retained) in one turn).
                skip(window.damagedRecord(pick.k), nextSeq: &nextSeq)
                lost = true
                continue copying
            }
            if count > 0 { json.appendRaw(",") }
            count += 1
            json.appendRaw(#"{"id":"#)
            json.appendID(EventID(epoch: reader.epoch, seq: view.seq))
            if query.namesSlots {
                json.appendRaw(#","slot":"#)
                json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[view.name]))
            }
            json.appendRaw(#","type":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[view.type]))
            json.appendRaw(#","data":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(scratch)[view.data]))
            json.appendRaw(#","time":"#)
            json.appendInt(Int(view.timeMilliseconds))
            json.appendRaw("}")
            nextSeq = view.seq
        }
        json.appendRaw(#"],"next":"#)
        if nextSeq != 0 {
            appendID(&json, nextSeq)
        } else if let requestedAfter = query.requestedAfter, !query.foreignEpoch {
            json.appendString(requestedAfter)
        } else {
            json.appendRaw("null")
        }
        if query.namesSlots {
            appendPerSlot(&json, "oldest", query.slots, windows.map(\.slotOldestSeq))
            appendPerSlot(&json, "head", query.slots, windows.map(\.slotHeadSeq))
        } else {
            json.appendRaw(#","oldest":"#)
            appendID(&json, windows[0].slotOldestSeq)
            json.appendRaw(#","head":"#)
            appendID(&json, windows[0].slotHeadSeq)
        }
        json.appendRaw(#","reset":"#)
        // MARK: CLUSTER: the events returned skip seqs this host will never hold (of any slot).
        let crossesGap = query.after.map { after in
            !query.foreignEpoch && nextSeq > after && reader.missingSeqs(after: after, through: nextSeq) != 0
        } ?? false
        let retained = windows.contains { $0.slotOldestSeq != 0 }
        let reset = windows.contains(where: \.reset) || (query.foreignEpoch && retained) || lost || crossesGap
        json.appendRaw(reset ? "true" : "false")
        json.appendRaw("}")
        return .complete
    }

    /// `,"name":{"slot":ID|null,…}`
    private func appendPerSlot(_ json: inout JSONWriter, _ name: String, _ slots: [[UInt8]], _ seqs: [UInt64]) {
        json.appendRaw(",")
        json.appendString(name)
        json.appendRaw(":{")
        for (i, slot) in slots.enumerated() {
            if i > 0 { json.appendRaw(",") }
            slot.withUnsafeBytes { json.appendString($0) }
            json.appendRaw(":")
            appendID(&json, seqs[i])
        }
        json.appendRaw("}")
    }

    /// Leaves a damaged record out; `next` moves past it (to its seq, from the window).
    private func skip(_ damaged: LogReader.DamagedRecord, nextSeq: inout UInt64) {
        onDamaged(damaged)
        nextSeq = max(nextSeq, damaged.seq ?? 0)
    }

    private func appendID(_ json: inout JSONWriter, _ seq: UInt64) {
        json.appendID(seq == 0 ? nil : EventID(epoch: reader.epoch, seq: seq))
    }
}

extension LogReader.Window {
    /// Record `k` of the window as damaged, named by the seq and ordinal the walk validated.
    func damagedRecord(_ k: Int) -> LogReader.DamagedRecord {
        LogReader.DamagedRecord(position: positions[k], seq: seqs[k], slotOrdinal: slotOrdinals[k])
    }
}
