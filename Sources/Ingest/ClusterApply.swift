/// What the ingest does with one entry it tailed from the cluster's stream, decided from the
/// entry's epoch and seq and the local log's epoch and head alone (no I/O).
///
/// Seqs are dense in the cluster, so the local log is a prefix of the stream's seqs with
/// known holes: an entry is either the next seq, past it (a gap), or at or below the head —
/// which is only harmless when the log already holds that very event (the ingest restarted
/// between a commit and the cursor it stored, or a tail reconnect re-read an entry).
public enum ClusterApply {
    public enum Decision: Equatable, Sendable {
        /// Append with the entry's seq; `gapFrom` is the first missing seq when the entry
        /// skips seqs (`gapFrom ... entry seq - 1` were never seen by this host).
        case append(gapFrom: UInt64?)
        /// The log already holds this event: skip it.
        case replay
        /// A different event under a seq this host already applied: the cluster's history
        /// forked (a failover to a replica that missed writes). The host must re-initialise
        /// under a new epoch, or two hosts would serve two events under one id.
        case diverged
        /// The entry belongs to another epoch: the cluster was re-made; re-initialise.
        case otherEpoch
    }

    /// `holdsSameEvent` is asked only for a seq at or below the head.
    public static func decide(entryEpoch: UInt32, entrySeq: UInt64, logEpoch: UInt32, headSeq: UInt64,
                              holdsSameEvent: () -> Bool) -> Decision {
        guard entryEpoch == logEpoch else { return .otherEpoch }
        if entrySeq == headSeq &+ 1 { return .append(gapFrom: nil) }
        if entrySeq > headSeq { return .append(gapFrom: headSeq + 1) }
        return holdsSameEvent() ? .replay : .diverged
    }
}

/// Publishes Redis has accepted, waiting for the local log to hold them before their 201 goes
/// out (read-your-writes on the publishing host). `Key` is how far the tail has come: the
/// stream id of the last entry applied, which only grows.
///
/// Completions arrive in the order the one publisher connection sent the script calls, so the
/// keys almost always grow along the queue; where they do not (a call re-sent after NOSCRIPT),
/// the later one just waits for the one before it. The answerable ones are always a prefix: a
/// plain array with a moving head, compacted as it drains.
struct AppliedWaitQueue<Key: Comparable, Item> {
    private var items: [(key: Key, dueNanoseconds: UInt64, item: Item)] = []
    private var head = 0

    var count: Int { items.count - head }
    var isEmpty: Bool { head == items.count }

    mutating func append(key: Key, dueNanoseconds: UInt64, _ item: Item) {
        items.append((key, dueNanoseconds, item))
    }

    /// Removes, in order, the items whose key the tail has `reached`, or whose due time passed
    /// (`nowNanoseconds`); `body` gets each with whether it was reached.
    mutating func drain(reached: Key, nowNanoseconds: UInt64, _ body: (Item, _ reached: Bool) -> Void) {
        while head < items.count {
            let entry = items[head]
            let done = entry.key <= reached
            // In order: an item not due waits, and so does every item behind it (their
            // 201s would otherwise overtake on a pipelined connection anyway).
            guard done || nowNanoseconds >= entry.dueNanoseconds else { break }
            body(entry.item, done)
            head += 1
        }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Removes everything (re-initialisation), in order.
    mutating func removeAll(_ body: (Item) -> Void) {
        while head < items.count {
            body(items[head].item)
            head += 1
        }
        items.removeAll(keepingCapacity: true)
        head = 0
    }
}
