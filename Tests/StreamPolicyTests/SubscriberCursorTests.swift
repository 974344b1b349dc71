import Testing
@testable import StreamPolicy

@Suite struct SubscriberCursorTests {
    let second: UInt64 = 1_000_000_000
    let heartbeat: UInt64 = 15_000_000_000
    let epoch: UInt32 = 0x5f3a_9c01

    func start(resume: (epoch: UInt32, seq: UInt64)?, head: UInt64 = 100, fanout: UInt64 = 100,
               kind: SubscriberCursor.Heartbeat = .comment, now: UInt64 = 1_000,
               deadline: UInt64 = .max) -> SubscriberCursor {
        .start(resume: resume, logEpoch: epoch, headSeq: head, fanoutSeq: fanout, heartbeat: kind,
               nowNanoseconds: now, deadlineNanoseconds: deadline)
    }

    // MARK: where a subscriber starts

    @Test func noResumeIDJoinsLiveAtTheFanoutPosition() {
        let c = start(resume: nil, head: 120, fanout: 97)
        #expect(c.mode == .live)
        #expect(c.seq == 97)
        #expect(!c.pendingEpochReset)
        #expect(c.windowAction(windowReset: false, policy: .resync) == .deliver)
    }

    @Test func resumeIDOfThisLogCatchesUpFromIt() {
        let c = start(resume: (epoch, 42), head: 100)
        #expect(c.mode == .catchingUp)
        #expect(c.seq == 42)
        #expect(c.ordinal == 0)
        #expect(!c.pendingEpochReset)
        #expect(c.windowAction(windowReset: false, policy: .disconnect) == .deliver)
    }

    @Test func inClusterModeAnIDPastTheHeadIsAResumeNotAForeignID() {
        // Another host of the cluster had gone further: this one resumes after it once it
        // has caught up; on one host the same id is foreign (reset epoch).
        let cluster = SubscriberCursor.start(resume: (epoch, 130), logEpoch: epoch, headSeq: 100, fanoutSeq: 100,
                                             heartbeat: .comment, nowNanoseconds: 0, deadlineNanoseconds: .max,
                                             aheadIsResume: true)
        #expect(cluster.seq == 130 && !cluster.pendingEpochReset)
        var promoted = cluster
        promoted.observeLag(fanoutSeq: 100)
        #expect(promoted.promote(fanoutSeq: 100) == 0)   // ahead of the fan-out is no lag
        #expect(promoted.seq == 130)
        let single = start(resume: (epoch, 130), head: 100)
        #expect(single.pendingEpochReset && single.seq == 0)
        // Another epoch stays foreign in cluster mode too.
        let other = SubscriberCursor.start(resume: (epoch &+ 1, 5), logEpoch: epoch, headSeq: 100, fanoutSeq: 100,
                                           heartbeat: .comment, nowNanoseconds: 0, deadlineNanoseconds: .max,
                                           aheadIsResume: true)
        #expect(other.pendingEpochReset)
    }

    @Test func resumeIDAtTheHeadCatchesUpWithoutReset() {
        let c = start(resume: (epoch, 100), head: 100)
        #expect(c.mode == .catchingUp)
        #expect(c.seq == 100)
        #expect(c.windowAction(windowReset: false, policy: .resync) == .deliver)
    }

    @Test func resumeIDFromAnotherEpochResetsFromTheOldestEvent() {
        let c = start(resume: (epoch &+ 1, 42), head: 100)
        #expect(c.mode == .catchingUp)
        #expect(c.seq == 0)
        #expect(c.pendingEpochReset)
        // Even under the disconnect policy and with nothing overwritten: an unknown id is
        // answered with a reset, never with a disconnect or a silent resume.
        #expect(c.windowAction(windowReset: false, policy: .disconnect) == .reset(reason: .epoch))
        #expect(c.windowAction(windowReset: true, policy: .disconnect) == .reset(reason: .epoch))
    }

    @Test func resumeIDAheadOfTheHeadIsTreatedAsForeign() {
        let c = start(resume: (epoch, 101), head: 100)
        #expect(c.seq == 0)
        #expect(c.pendingEpochReset)
        #expect(c.windowAction(windowReset: false, policy: .resync) == .reset(reason: .epoch))
    }

    @Test func epochResetIsSentOnceThenEventsFlow() {
        var c = start(resume: (epoch &+ 1, 42))
        #expect(c.windowAction(windowReset: true, policy: .resync) == .reset(reason: .epoch))
        c.resetSent()
        #expect(!c.pendingEpochReset)
        #expect(c.gapAccepted)
        // The window that followed the reset may start after the oldest retained event.
        #expect(c.windowAction(windowReset: true, policy: .resync) == .deliver)
        c.delivered(seq: 7, ordinal: 3, nowNanoseconds: 2_000)
        #expect(c.seq == 7 && c.ordinal == 3)
        #expect(!c.gapAccepted)
    }

    // MARK: live, full buffers, promotion

    @Test func deliveryMovesTheCursorAndRestartsSilence() {
        var c = start(resume: nil, fanout: 10, now: 5)
        c.delivered(seq: 11, ordinal: 4, nowNanoseconds: 900)
        #expect(c.seq == 11)
        #expect(c.ordinal == 4)
        #expect(c.lastWriteNanoseconds == 900)
        #expect(c.mode == .live)
    }

    @Test func fullBufferDemotesALiveSubscriberOnce() {
        var c = start(resume: nil, fanout: 10)
        c.delivered(seq: 11, ordinal: 1, nowNanoseconds: 2)
        let demoted = c.demote()
        #expect(demoted)
        #expect(c.mode == .catchingUp)
        // The cursor stays at the last event delivered: catch-up resumes right after it.
        #expect(c.seq == 11 && c.ordinal == 1)
        let again = c.demote()
        #expect(!again)   // already catching up: counted once
    }

    @Test func promotionBringsTheCursorToTheFanoutPositionAndReportsTheEpisodeLag() {
        var c = start(resume: (epoch, 40), head: 100, fanout: 100)
        c.observeLag(fanoutSeq: 100)
        c.delivered(seq: 60, ordinal: 9, nowNanoseconds: 2)
        c.observeLag(fanoutSeq: 110)
        #expect(c.maxLag == 60)
        c.delivered(seq: 70, ordinal: 10, nowNanoseconds: 3)
        #expect(c.promote(fanoutSeq: 110) == 60)
        #expect(c.mode == .live)
        #expect(c.seq == 110)   // records of other slots up to the fan-out position are not its own
        #expect(c.maxLag == 0)
        #expect(!c.gapAccepted)
        // A second episode measures from zero.
        _ = c.demote()
        c.observeLag(fanoutSeq: 115)
        #expect(c.promote(fanoutSeq: 115) == 5)
    }

    /// The fan-out's `deliveredLive` writes only what delivery moves: a live cursor must
    /// never hold an accepted gap (a reset sent while catching up is cleared by promotion).
    @Test func aLiveCursorHasNoAcceptedGapSoLiveDeliveryOnlyMovesTheCursor() {
        var c = start(resume: (epoch, 40), head: 100, fanout: 100)
        c.resetSent()
        #expect(c.gapAccepted)
        _ = c.promote(fanoutSeq: 100)
        #expect(c.mode == .live && !c.gapAccepted)
        c.deliveredLive(seq: 101, ordinal: 7, nowNanoseconds: 9)
        #expect(c.seq == 101 && c.ordinal == 7 && c.lastWriteNanoseconds == 9 && !c.gapAccepted)
    }

    @Test func promotionNeverMovesTheCursorBack() {
        var c = start(resume: (epoch, 50), head: 100, fanout: 100)
        c.delivered(seq: 100, ordinal: 2, nowNanoseconds: 2)
        _ = c.promote(fanoutSeq: 90)
        #expect(c.seq == 100)
    }

    // MARK: lapped readers

    @Test func lappedUnderResyncSendsOneResetThenDelivers() {
        var c = start(resume: nil, fanout: 10)
        c.delivered(seq: 11, ordinal: 1, nowNanoseconds: 2)
        _ = c.demote()
        // Lapped exactly at the cursor: the event right after seq 11 was overwritten.
        #expect(c.windowAction(windowReset: true, policy: .resync) == .reset(reason: .lapped))
        c.resetSent()
        #expect(c.gapAccepted)
        // The same gap is not reported twice (the reset did not fit, or the window came back).
        #expect(c.windowAction(windowReset: true, policy: .resync) == .deliver)
        // The next event after the reset: the gap is closed, a new lap is a new reset.
        c.delivered(seq: 30, ordinal: 5, nowNanoseconds: 3)
        #expect(!c.gapAccepted)
        #expect(c.windowAction(windowReset: true, policy: .resync) == .reset(reason: .lapped))
    }

    @Test func resetThatDidNotFitIsAskedForAgain() {
        let c = start(resume: (epoch, 5))
        // The caller could not write the reset, so it did not report resetSent.
        #expect(c.windowAction(windowReset: true, policy: .resync) == .reset(reason: .lapped))
        #expect(c.windowAction(windowReset: true, policy: .resync) == .reset(reason: .lapped))
    }

    @Test func lappedUnderDisconnectPolicyCloses() {
        var c = start(resume: nil, fanout: 10)
        _ = c.demote()
        #expect(c.windowAction(windowReset: true, policy: .disconnect) == .disconnect)
        #expect(c.windowAction(windowReset: false, policy: .disconnect) == .deliver)
    }

    @Test func damagedRecordIsSkippedWithoutMovingTheCursorBack() {
        var c = start(resume: (epoch, 20))
        c.skippedDamaged(seq: 25, ordinal: 8)
        #expect(c.seq == 25 && c.ordinal == 8)
        c.skippedDamaged(seq: 22, ordinal: 9)
        #expect(c.seq == 25)
        #expect(c.ordinal == 9)
    }

    // MARK: closing

    @Test func closeBeginsOnce() {
        var c = start(resume: nil)
        #expect(!c.closing)
        let first = c.beginClose()
        #expect(first)
        #expect(c.closing)
        let second = c.beginClose()
        #expect(!second)
    }

    // MARK: heartbeats and lifetime

    @Test func sseHeartbeatIsDueAfterAFullIntervalOfSilence() {
        var c = start(resume: nil, now: 1_000)
        #expect(c.tick(nowNanoseconds: 1_000 + heartbeat - 1, heartbeatNanoseconds: heartbeat) == .none)
        #expect(c.tick(nowNanoseconds: 1_000 + heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
        // Any write restarts the silence.
        c.delivered(seq: 101, ordinal: 1, nowNanoseconds: 1_000 + heartbeat)
        #expect(c.tick(nowNanoseconds: 1_000 + heartbeat + 1, heartbeatNanoseconds: heartbeat) == .none)
        c.wroteControl(nowNanoseconds: 1_000 + 2 * heartbeat)
        #expect(c.tick(nowNanoseconds: 1_000 + 3 * heartbeat - 1, heartbeatNanoseconds: heartbeat) == .none)
        c.heartbeatSent(nowNanoseconds: 1_000 + 3 * heartbeat)
        #expect(c.lastWriteNanoseconds == 1_000 + 3 * heartbeat)
        #expect(c.tick(nowNanoseconds: 1_000 + 4 * heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
    }

    @Test func lifetimeEndsTheStreamAtItsDeadlineBeforeAnyHeartbeat() {
        let c = start(resume: nil, now: 0, deadline: 100 * second)
        #expect(c.tick(nowNanoseconds: 100 * second - 1, heartbeatNanoseconds: heartbeat) == .heartbeat)
        #expect(c.tick(nowNanoseconds: 100 * second, heartbeatNanoseconds: heartbeat) == .closeMaxLifetime)
        let ws = start(resume: nil, kind: .ping, now: 0, deadline: 100 * second)
        #expect(ws.tick(nowNanoseconds: 100 * second, heartbeatNanoseconds: heartbeat) == .closeMaxLifetime)
    }

    @Test func lifetimeDeadlineIsJitteredDownByAtMostATenth() {
        let lifetime = 1000 * second
        let deadlines = (0..<200).map {
            Jitter.lifetimeDeadline(startNanoseconds: 5, lifetimeNanoseconds: lifetime, random: UInt64($0) &* 0x9e37_79b9_7f4a_7c15)
        }
        #expect(deadlines.allSatisfy { $0 <= 5 + lifetime && $0 >= 5 + lifetime - lifetime / 10 })
        #expect(Set(deadlines).count > 100)
    }

    @Test func webSocketPingIsDueEveryIntervalAndUnansweredPingClosesAfterTwo() {
        var c = start(resume: nil, kind: .ping, now: 0)
        #expect(c.tick(nowNanoseconds: heartbeat - 1, heartbeatNanoseconds: heartbeat) == .none)
        #expect(c.tick(nowNanoseconds: heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
        c.heartbeatSent(nowNanoseconds: heartbeat)
        #expect(c.lastPingNanoseconds == heartbeat)
        // Unanswered: the next ping goes out, but the clock keeps the oldest unanswered one.
        #expect(c.tick(nowNanoseconds: 2 * heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
        c.heartbeatSent(nowNanoseconds: 2 * heartbeat)
        #expect(c.lastPingNanoseconds == heartbeat)
        #expect(c.tick(nowNanoseconds: 3 * heartbeat - 1, heartbeatNanoseconds: heartbeat) == .heartbeat)
        #expect(c.tick(nowNanoseconds: 3 * heartbeat, heartbeatNanoseconds: heartbeat) == .closeHalfOpen)
    }

    @Test func answeredPingKeepsTheWebSocketOpen() {
        var c = start(resume: nil, kind: .ping, now: 0)
        c.heartbeatSent(nowNanoseconds: heartbeat)
        c.pongReceived(nowNanoseconds: heartbeat + second)
        #expect(c.tick(nowNanoseconds: 3 * heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
        c.heartbeatSent(nowNanoseconds: 3 * heartbeat)
        #expect(c.lastPingNanoseconds == 3 * heartbeat)
        // Deliveries do not count as pings: a busy stream still pings on time.
        c.delivered(seq: 200, ordinal: 1, nowNanoseconds: 4 * heartbeat - 1)
        #expect(c.tick(nowNanoseconds: 4 * heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
    }
}

@Suite struct SubscriberCursorLayoutTests {
    /// The cursor lives in every subscriber table entry, read on every fan-out delivery: it
    /// must not grow the table (the fan-out's cache footprint) past what it replaced.
    @Test func cursorFitsInSixtyFourBytes() {
        #expect(MemoryLayout<SubscriberCursor>.stride <= 64)
    }
}

@Suite struct SubscriberCursorNextTickTests {
    let second: UInt64 = 1_000_000_000
    let heartbeat: UInt64 = 15_000_000_000

    func start(_ kind: SubscriberCursor.Heartbeat, deadline: UInt64 = .max) -> SubscriberCursor {
        .start(resume: nil, logEpoch: 1, headSeq: 100, fanoutSeq: 100, heartbeat: kind,
               nowNanoseconds: 0, deadlineNanoseconds: deadline)
    }

    /// Looking only at the times `nextTick` names gives the same heartbeats as looking always.
    @Test func commentIsDueAnIntervalAfterTheLastWriteAndNeverPastTheDeadline() {
        var c = start(.comment)
        #expect(c.nextTickNanoseconds(nowNanoseconds: 0, heartbeatNanoseconds: heartbeat) == heartbeat)
        c.delivered(seq: 101, ordinal: 1, nowNanoseconds: 4 * second)
        #expect(c.tick(nowNanoseconds: heartbeat, heartbeatNanoseconds: heartbeat) == .none)
        #expect(c.nextTickNanoseconds(nowNanoseconds: heartbeat, heartbeatNanoseconds: heartbeat) == heartbeat + 4 * second)
        #expect(c.tick(nowNanoseconds: heartbeat + 4 * second, heartbeatNanoseconds: heartbeat) == .heartbeat)
        let short = start(.comment, deadline: 10 * second)
        #expect(short.nextTickNanoseconds(nowNanoseconds: 0, heartbeatNanoseconds: heartbeat) == 10 * second)
        #expect(short.tick(nowNanoseconds: 10 * second, heartbeatNanoseconds: heartbeat) == .closeMaxLifetime)
    }

    @Test func unansweredPingIsRepeatedOnceAnIntervalThenClosedAtTwo() {
        var c = start(.ping)
        var now = c.nextTickNanoseconds(nowNanoseconds: 0, heartbeatNanoseconds: heartbeat)
        var actions: [SubscriberCursor.TickAction] = []
        var times: [UInt64] = []
        for _ in 0..<4 {
            let a = c.tick(nowNanoseconds: now, heartbeatNanoseconds: heartbeat)
            actions.append(a)
            times.append(now)
            if a == .closeHalfOpen { break }
            if a == .heartbeat { c.heartbeatSent(nowNanoseconds: now) }
            now = c.nextTickNanoseconds(nowNanoseconds: now, heartbeatNanoseconds: heartbeat)
        }
        #expect(actions == [.heartbeat, .heartbeat, .closeHalfOpen])
        #expect(times == [heartbeat, 2 * heartbeat, 3 * heartbeat])
    }

    @Test func answeredPingIsDueAnIntervalAfterItWentOut() {
        var c = start(.ping)
        c.heartbeatSent(nowNanoseconds: heartbeat)
        c.pongReceived(nowNanoseconds: heartbeat + second)
        #expect(c.nextTickNanoseconds(nowNanoseconds: heartbeat + second, heartbeatNanoseconds: heartbeat) == 2 * heartbeat)
        #expect(c.tick(nowNanoseconds: 2 * heartbeat, heartbeatNanoseconds: heartbeat) == .heartbeat)
    }
}
