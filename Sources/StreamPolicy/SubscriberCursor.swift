/// One subscriber's stream state as pure logic: where it starts, live vs catch-up, what a full
/// buffer, a lapped cursor, a damaged record, a heartbeat or the end of its lifetime do to it.
///
/// A subscriber is a cursor, never a queue. It is either *live* (in its slot's fan-out, its
/// cursor following the fan-out position) or *catching up* (reading windows of its slot from
/// its cursor). The caller does the I/O — copies records, encodes, writes into the stream
/// buffer — and reports what happened; the cursor answers with what to do next. No sockets, no
/// log mapping, no engine here, so every transition is tested without either.
public struct SubscriberCursor: Sendable, Equatable {
    public enum Mode: UInt8, Sendable {
        case live
        case catchingUp
    }

    /// How the stream keeps a silent connection alive.
    public enum Heartbeat: UInt8, Sendable {
        /// An SSE comment after `--heartbeat` of silence; nothing is expected back.
        case comment
        /// A WebSocket ping every `--heartbeat`, which must be answered within two.
        case ping
    }

    /// What the heartbeat timer asks for at one tick.
    public enum TickAction: Equatable, Sendable {
        case none
        /// Send the heartbeat (comment or ping), then report `heartbeatSent(nowNanoseconds:)`.
        case heartbeat
        /// The stream is past its lifetime: close it with a notice (`max_lifetime`).
        case closeMaxLifetime
        /// A ping went unanswered for two heartbeats: the peer is gone (`half_open`).
        case closeHalfOpen
    }

    @inlinable public var mode: Mode { _mode }
    /// The last seq delivered (or skipped); the next window starts after it.
    @inlinable public var seq: UInt64 { _seq }
    /// That event's ordinal in its slot, 0 when unknown (after a start or a promotion).
    @inlinable public var ordinal: UInt64 { _ordinal }
    /// A reset was sent for the current gap: the next window may start later without another.
    @inlinable public var gapAccepted: Bool { _gapAccepted }
    @inlinable public var lastWriteNanoseconds: UInt64 { _lastWriteNanoseconds }

    // Stored properties, 8-byte ones first and the hot ones (what delivery and demotion
    // change, stored for the inlined fan-out path) at the front: one cursor is 64 bytes, so a
    // worker's subscriber table stays as dense as it was before the extraction.
    @usableFromInline var _seq: UInt64
    @usableFromInline var _ordinal: UInt64
    @usableFromInline var _lastWriteNanoseconds: UInt64
    /// The largest lag (fan-out position minus cursor) of the current catch-up episode.
    public private(set) var maxLag: UInt64
    public let deadlineNanoseconds: UInt64
    /// WebSocket: when the oldest unanswered ping (or the last answered one) went out.
    public private(set) var lastPingNanoseconds: UInt64
    public private(set) var lastPongNanoseconds: UInt64
    @usableFromInline var _mode: Mode
    @usableFromInline var _gapAccepted: Bool
    /// The resume id was not from this log (another epoch, or ahead of its head): the first
    /// window sends a reset with reason `epoch` whatever it holds.
    public private(set) var pendingEpochReset: Bool
    /// A close notice was written: nothing more is delivered.
    public private(set) var closing: Bool
    public let heartbeat: Heartbeat

    /// An unused table entry: catching up from 0, never due.
    public init() {
        self.init(mode: .catchingUp, seq: 0, pendingEpochReset: false, heartbeat: .comment,
                  nowNanoseconds: 0, deadlineNanoseconds: .max)
    }

    @usableFromInline
    init(mode: Mode, seq: UInt64, pendingEpochReset: Bool, heartbeat: Heartbeat,
         nowNanoseconds now: UInt64, deadlineNanoseconds: UInt64) {
        self._mode = mode
        self._seq = seq
        self._ordinal = 0
        self._gapAccepted = false
        self.pendingEpochReset = pendingEpochReset
        self.closing = false
        self.maxLag = 0
        self.heartbeat = heartbeat
        self._lastWriteNanoseconds = now
        self.deadlineNanoseconds = deadlineNanoseconds
        self.lastPingNanoseconds = now
        self.lastPongNanoseconds = now
    }

    /// Where a new subscriber starts. Without a resume id (`Last-Event-ID` / `after`) it joins
    /// the live fan-out at the fan-out position. With an id of this log, not ahead of its head,
    /// it catches up from that id. With any other id (another epoch: a wiped data dir, another
    /// cluster; or a seq past the head) it catches up from the oldest event after a reset with
    /// reason `epoch`, never silently mis-resumed. `aheadIsResume` (cluster mode): an id of this
    /// epoch past the head was given by a host further along the same cluster log; this host
    /// resumes after it once it has caught up.
    /// - Parameters:
    ///   - resume: the parsed resume id, nil when the client sent none.
    ///   - logEpoch, headSeq: the log's epoch and its newest seq now.
    ///   - fanoutSeq: the last seq this worker fanned out.
    public static func start(resume: (epoch: UInt32, seq: UInt64)?, logEpoch: UInt32, headSeq: UInt64,
                             fanoutSeq: UInt64, heartbeat: Heartbeat, nowNanoseconds now: UInt64,
                             deadlineNanoseconds: UInt64, aheadIsResume: Bool = false) -> SubscriberCursor {
        guard let resume else {
            return SubscriberCursor(mode: .live, seq: fanoutSeq, pendingEpochReset: false, heartbeat: heartbeat,
                                    nowNanoseconds: now, deadlineNanoseconds: deadlineNanoseconds)
        }
        let foreign = resume.epoch != logEpoch || (resume.seq > headSeq && !aheadIsResume)
        return SubscriberCursor(mode: .catchingUp, seq: foreign ? 0 : resume.seq, pendingEpochReset: foreign,
                                heartbeat: heartbeat, nowNanoseconds: now, deadlineNanoseconds: deadlineNanoseconds)
    }

    // MARK: delivery (the fan-out's hot path: inlined across the module boundary)

    /// A live subscriber took the fan-out's record: only the fields delivery moves are written
    /// (a live cursor has no accepted gap to clear), so the fan-out touches the front of the
    /// entry only.
    @inlinable
    public mutating func deliveredLive(seq: UInt64, ordinal: UInt64, nowNanoseconds now: UInt64) {
        _seq = seq
        _ordinal = ordinal
        _lastWriteNanoseconds = now
    }

    /// Record `seq` (ordinal `ordinal` in its slot) was copied whole into the stream buffer.
    @inlinable
    public mutating func delivered(seq: UInt64, ordinal: UInt64, nowNanoseconds now: UInt64) {
        _seq = seq
        _ordinal = ordinal
        _gapAccepted = false
        _lastWriteNanoseconds = now
    }

    /// The stream buffer could not take the next frame, or this worker's own reader was lapped
    /// or met a damaged record: the subscriber leaves the fan-out and catches up from its
    /// cursor when the buffer drains. True when it was live (the caller removes it from the
    /// fan-out list and counts it as catching up); false when it already was catching up.
    @inlinable
    public mutating func demote() -> Bool {
        guard _mode == .live else { return false }
        _mode = .catchingUp
        return true
    }

    // MARK: catch-up

    /// Before each window: the lag of this catch-up episode (for the lag histogram).
    public mutating func observeLag(fanoutSeq: UInt64) {
        // A cursor past the fan-out (cluster mode: resumed after an id this host has not
        // reached yet) is not behind.
        maxLag = max(maxLag, fanoutSeq > seq ? fanoutSeq - seq : 0)
    }

    /// What to do with a window read after the cursor. `windowReset` is the log's report that
    /// events after the cursor were overwritten (the reader was lapped, even exactly at the
    /// cursor). A reset already sent for this gap is not sent again; a foreign resume id gets
    /// its `epoch` reset whatever the policy.
    public func windowAction(windowReset: Bool, policy: LagPolicy) -> CatchUpAction {
        policy.action(windowReset: windowReset, gapAccepted: gapAccepted, unknownID: pendingEpochReset)
    }

    /// The reset asked for by `windowAction` was written whole: the window may start later
    /// than the cursor (the gap is accepted) until the next event is delivered.
    public mutating func resetSent() {
        pendingEpochReset = false
        _gapAccepted = true
    }

    /// A damaged record of the slot (seq `seq`, ordinal `ordinal`) was skipped after a reset
    /// with `dropped: 1`; the cursor never moves back.
    public mutating func skippedDamaged(seq: UInt64, ordinal: UInt64) {
        self._seq = max(self.seq, seq)
        self._ordinal = ordinal
    }

    /// The window held everything up to the fan-out position: back into the live fan-out, the
    /// cursor brought to the fan-out position (records of other slots between are not its
    /// own). Returns the episode's largest lag and starts a new episode.
    public mutating func promote(fanoutSeq: UInt64) -> UInt64 {
        if _seq < fanoutSeq { _seq = fanoutSeq }
        _gapAccepted = false
        _mode = .live
        let lag = maxLag
        maxLag = 0
        return lag
    }

    // MARK: closing, writes, timers

    /// A close notice is being written. False when the stream was closing already.
    public mutating func beginClose() -> Bool {
        guard !closing else { return false }
        closing = true
        return true
    }

    /// A control frame (reset, close notice) went into the buffer: silence restarts.
    public mutating func wroteControl(nowNanoseconds now: UInt64) {
        _lastWriteNanoseconds = now
    }

    /// The heartbeat timer, for a stream that is not closing. Lifetime first: a stream past
    /// its deadline is closed whatever else is due. Inlined: the heartbeat scan calls it for
    /// every stream.
    @inlinable
    public func tick(nowNanoseconds now: UInt64, heartbeatNanoseconds interval: UInt64) -> TickAction {
        if now >= deadlineNanoseconds { return .closeMaxLifetime }
        switch heartbeat {
        case .comment:
            return now &- lastWriteNanoseconds >= interval ? .heartbeat : .none
        case .ping:
            if lastPongNanoseconds < lastPingNanoseconds && now &- lastPingNanoseconds >= 2 * interval {
                return .closeHalfOpen
            }
            return now &- lastPingNanoseconds >= interval ? .heartbeat : .none
        }
    }

    /// When `tick` next has something to do, given no writes or pongs until then, for a
    /// stream looked at `now` (just after a heartbeat went out, or when nothing was due): its
    /// lifetime deadline, its next heartbeat, or, with a ping unanswered, the next ping an
    /// interval from now and the close two intervals after the oldest. Never before `now`.
    public func nextTickNanoseconds(nowNanoseconds now: UInt64, heartbeatNanoseconds interval: UInt64) -> UInt64 {
        let due: UInt64
        switch heartbeat {
        case .comment:
            due = lastWriteNanoseconds &+ interval
        case .ping:
            if lastPongNanoseconds < lastPingNanoseconds {
                due = min(now &+ interval, lastPingNanoseconds &+ 2 &* interval)
            } else {
                due = lastPingNanoseconds &+ interval
            }
        }
        return max(min(due, deadlineNanoseconds), now)
    }

    /// The heartbeat asked for by `tick` was written. A ping's clock keeps the oldest
    /// unanswered ping, so a peer that never answers is closed two heartbeats after the first.
    public mutating func heartbeatSent(nowNanoseconds now: UInt64) {
        if heartbeat == .ping && lastPongNanoseconds >= lastPingNanoseconds {
            lastPingNanoseconds = now
        }
        _lastWriteNanoseconds = now
    }

    /// The WebSocket peer answered a ping.
    public mutating func pongReceived(nowNanoseconds now: UInt64) {
        lastPongNanoseconds = now
    }
}
