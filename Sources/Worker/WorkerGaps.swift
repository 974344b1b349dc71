import RingLog
import WireProtocol

// MARK: CLUSTER
/// Gaps in the log (seqs this host will never hold: trimmed from the stream while it was
/// away, or entries it could not store) reported to subscribers as `reset` reason `gap`.
extension Worker {
    static let gapResetReason = "gap"

    /// Before a subscriber is given anything past seq `through` (an event at `through + 1`, or
    /// the live fan-out at `through`): a reset when recorded gaps lie between what it covered
    /// and `through`, `dropped` = how many seqs they hold (events of any slot: the host cannot
    /// know which), null when the gap table no longer covers the range. False when the reset
    /// does not fit its buffer yet: the caller stops and the next catch-up asks again.
    /// One acquire load when the log has no gaps (single host: never).
    func reportGaps(_ connection: Int32, through: UInt64, window: LogReader.Window) -> Bool {
        let s = subscribers + Int(connection)
        let covered = max(s.pointee.cursor.seq, s.pointee.gapsReportedThrough)
        guard through > covered else { return true }
        let missing = reader.missingSeqs(after: covered, through: through)
        guard missing != 0 else { return true }
        // A stream of several slots: the gap's events may be of any of them (or none), so the
        // reset is the whole stream's, without one slot's oldest and head.
        let namesSlots = s.pointee.namesSlots
        let frame = resetFrame(s.pointee.transport, reason: Self.gapResetReason, slot: namesSlots ? .wholeStream : .omitted,
                               dropped: missing, oldestSeq: namesSlots ? 0 : window.slotOldestSeq,
                               headSeq: namesSlots ? 0 : window.slotHeadSeq)
        guard writeControl(connection, frame) else { return false }
        counters.add(.resetsGap)
        s.pointee.gapsReportedThrough = through
        return true
    }
}

/// `/readyz` in cluster mode, from the ingest's counters: ready while the ingest runs and the
/// host is not stalled behind the cluster; `degraded` while Redis is unreachable (subscribers
/// are served from the local log, publishes get 503).
struct ClusterReadiness {
    let region: LogRegion
    let workers: Int
    let stallNanoseconds: UInt64

    func answer() -> (status: Int, body: [UInt8]) {
        let processes = 0..<(2 + workers)
        let up = region.counterSum(.upstreamUp, processes: processes) != 0
        let stalled = region.counterSum(.upstreamStalled, processes: processes) != 0
        let lag = region.counterSum(.upstreamLagEvents, processes: processes)
        let upstream = up ? "up" : "down"
        if stalled {
            let milliseconds = stallNanoseconds / 1_000_000
            let time = milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
            let detail = "the cluster is \(lag) events ahead of this host's log and the log has not moved for \(time)"
            return (503, Array(#"{"status":"stalled","upstream":"\#(upstream)","lag_events":\#(lag),"detail":"\#(detail)"}"#.utf8))
        }
        if up {
            return (200, Array(#"{"status":"ready","upstream":"up","lag_events":\#(lag)}"#.utf8))
        }
        return (200, Array(#"{"status":"ready","upstream":"down","degraded":true,"lag_events":\#(lag)}"#.utf8))
    }
}
