import Testing
@testable import Supervisor

/// The watchdog's verdicts, from the stamps a child leaves (no processes: the clock is given).
@Suite struct ChildLivenessTests {
    typealias L = ChildLiveness
    let second: UInt64 = 1_000_000_000
    let started: UInt64 = 1_000 * 1_000_000_000   // a monotonic time the child was spawned at

    func judge(at now: UInt64, _ stamps: L.Stamps, timeout: UInt64 = 10 * 1_000_000_000) -> L.Verdict {
        L.judge(nowNanoseconds: now, startedNanoseconds: started, stamps: stamps, watchdogTimeoutNanoseconds: timeout)
    }

    /// Finding 2: a recovery scan longer than the start-up limit that stamps progress is alive;
    /// one that stops stamping is hung after the limit without progress, not after a fixed 15 s.
    @Test func startupThatProgressesIsAliveBeyondTheStallLimit() {
        // 40 s into start-up, progress stamped 3 s ago: alive (the old rule killed it at 15 s).
        var stamps = L.Stamps(startupProgressNanoseconds: started + 37 * second)
        #expect(judge(at: started + 40 * second, stamps) == .alive)
        // The same scan 16 s after its last stamp: hung.
        #expect(judge(at: started + 53 * second, stamps) == .startupStalled(stalledNanoseconds: 16 * second))
        // No stamp at all: hung 15 s after the spawn, as before.
        stamps = L.Stamps()
        #expect(judge(at: started + 14 * second, stamps) == .alive)
        #expect(judge(at: started + 16 * second, stamps) == .startupStalled(stalledNanoseconds: 16 * second))
        // A --watchdog-timeout longer than 15 s is the stall limit.
        #expect(judge(at: started + 16 * second, stamps, timeout: 20 * second) == .alive)
    }

    @Test func progressStampFromAPreviousProcessDoesNotCount() {
        // Stamped before this child started (the process before a restart): measured from the spawn.
        let stamps = L.Stamps(startupProgressNanoseconds: started - 100 * second)
        #expect(judge(at: started + 16 * second, stamps) == .startupStalled(stalledNanoseconds: 16 * second))
    }

    @Test func startupIsBoundedEvenWhileItProgresses() {
        let end = started + L.startupMaxNanoseconds
        let stamps = L.Stamps(startupProgressNanoseconds: end)   // stamped just now
        #expect(judge(at: end, stamps) == .alive)
        #expect(judge(at: end + second, stamps) == .startupTooLong(elapsedNanoseconds: L.startupMaxNanoseconds + second))
    }

    /// Start-up limits hold with the loop watchdog off; a serving child is then never judged.
    @Test func watchdogOffStillBoundsStartup() {
        #expect(judge(at: started + 16 * second, L.Stamps(), timeout: 0) == .startupStalled(stalledNanoseconds: 16 * second))
        #expect(judge(at: started + 1_000 * second, L.Stamps(heartbeatNanoseconds: started + second), timeout: 0) == .alive)
    }

    @Test func servingChildIsJudgedByItsHeartbeat() {
        let beat = started + 100 * second
        let stamps = L.Stamps(heartbeatNanoseconds: beat, startupProgressNanoseconds: started + second)
        #expect(judge(at: beat + 9 * second, stamps) == .alive)
        #expect(judge(at: beat + 11 * second, stamps) == .loopStalled(stalledNanoseconds: 11 * second))
    }

    /// Finding 9: an ingest blocked in one fdatasync gets max(timeout, 60 s), from when the
    /// fdatasync began, and its verdict names the fdatasync.
    @Test func blockedInFdatasyncGetsTheLongerLimit() {
        let beat = started + 100 * second
        let stamps = L.Stamps(heartbeatNanoseconds: beat, fsyncStartedNanoseconds: beat + second)
        let timeout = 500_000_000 as UInt64   // --watchdog-timeout 500ms
        #expect(judge(at: beat + 30 * second, stamps, timeout: timeout) == .alive)
        #expect(judge(at: beat + 61 * second, stamps, timeout: timeout) == .alive)
        #expect(judge(at: beat + 62 * second, stamps, timeout: timeout) == .fsyncStuck(blockedNanoseconds: 61 * second))
        // A watchdog timeout above 60 s is the limit.
        #expect(judge(at: beat + 62 * second, stamps, timeout: 90 * second) == .alive)
        // Out of the fdatasync (stamp back to 0): the plain heartbeat rule again.
        #expect(judge(at: beat + 2 * second, L.Stamps(heartbeatNanoseconds: beat), timeout: timeout)
                == .loopStalled(stalledNanoseconds: 2 * second))
        // A stale stamp left by a previous process does not extend this one's limit.
        let stale = L.Stamps(heartbeatNanoseconds: beat, fsyncStartedNanoseconds: started - second)
        #expect(judge(at: beat + 2 * second, stale, timeout: timeout) == .loopStalled(stalledNanoseconds: 2 * second))
    }

    @Test func messagesSayWhichLimitFired() {
        let ms = { (v: L.Verdict) in L.message(v, child: "ingest", pid: 42, watchdogTimeoutNanoseconds: 500_000_000) }
        #expect(ms(.alive) == nil)
        #expect(ms(.fsyncStuck(blockedNanoseconds: 61 * second))!.contains("stuck in fdatasync for 61000 ms"))
        #expect(ms(.loopStalled(stalledNanoseconds: 2 * second))!.contains("has not turned its loop for 2000 ms"))
        #expect(ms(.startupStalled(stalledNanoseconds: 16 * second))!.contains("no start-up progress for 16000 ms"))
    }
}
