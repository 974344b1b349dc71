import Testing
@testable import StreamPolicy

@Suite struct SendProgressTests {
    let second: UInt64 = 1_000_000_000
    let timeout: UInt64 = 10_000_000_000

    func sample(acked: UInt64, unacked: UInt32 = 0, queued: Int = 0,
                established: Bool = true) -> SendProgress.Sample {
        .init(bytesAcked: acked, unackedSegments: unacked, kernelQueuedBytes: queued, established: established)
    }

    @Test func idleConnectionIsNeverReaped() {
        var p = SendProgress()
        for t in 0..<100 {
            #expect(p.observe(sample(acked: 500), nowNanoseconds: UInt64(t) * second, timeoutNanoseconds: timeout) == .healthy)
        }
    }

    @Test func stoppedReaderTimesOutAfterTimeout() {
        var p = SendProgress()
        // Window shut: data queued, nothing in flight, nothing acknowledged.
        var verdicts: [SendProgress.Verdict] = []
        for t in 0...11 {
            verdicts.append(p.observe(sample(acked: 1000, queued: 4096),
                                      nowNanoseconds: 1 + UInt64(t) * second, timeoutNanoseconds: timeout))
        }
        #expect(verdicts[0..<10].allSatisfy { $0 == .healthy })
        #expect(verdicts[10] == .sendTimeout)
    }

    @Test func slowButDrainingClientIsNeverReaped() {
        var p = SendProgress()
        var acked: UInt64 = 0
        for t in 0..<300 {   // 5 minutes, one small ack per second, data always waiting
            acked += 100
            let v = p.observe(sample(acked: acked, queued: 100_000),
                              nowNanoseconds: 1 + UInt64(t) * second, timeoutNanoseconds: timeout)
            #expect(v == .healthy)
        }
    }

    @Test func vanishedPeerIsHalfOpen() {
        var p = SendProgress()
        var last = SendProgress.Verdict.healthy
        for t in 0...10 {
            last = p.observe(sample(acked: 42, unacked: 3, queued: 300), nowNanoseconds: 1 + UInt64(t) * second,
                             timeoutNanoseconds: timeout)
        }
        #expect(last == .halfOpen)
    }

    @Test func progressRestartsTheClock() {
        var p = SendProgress()
        _ = p.observe(sample(acked: 0, queued: 10), nowNanoseconds: 1, timeoutNanoseconds: timeout)
        _ = p.observe(sample(acked: 0, queued: 10), nowNanoseconds: 9 * second, timeoutNanoseconds: timeout)
        _ = p.observe(sample(acked: 5, queued: 10), nowNanoseconds: 9 * second + 1, timeoutNanoseconds: timeout)
        #expect(p.observe(sample(acked: 5, queued: 10), nowNanoseconds: 18 * second, timeoutNanoseconds: timeout) == .healthy)
        #expect(p.observe(sample(acked: 5, queued: 10), nowNanoseconds: 19 * second + 1, timeoutNanoseconds: timeout) == .sendTimeout)
    }

    @Test func drainingToEmptyClearsTheStall() {
        var p = SendProgress()
        _ = p.observe(sample(acked: 0, queued: 10), nowNanoseconds: 1, timeoutNanoseconds: timeout)
        _ = p.observe(sample(acked: 0), nowNanoseconds: 5 * second, timeoutNanoseconds: timeout)
        #expect(p.stalledSinceNanoseconds == 0)
        #expect(p.observe(sample(acked: 0, queued: 10), nowNanoseconds: 12 * second, timeoutNanoseconds: timeout) == .healthy)
    }

    @Test func notEstablishedWithStalledDataIsHalfOpen() {
        var p = SendProgress()
        _ = p.observe(sample(acked: 0, queued: 10, established: false), nowNanoseconds: 1, timeoutNanoseconds: timeout)
        #expect(p.observe(sample(acked: 0, queued: 10, established: false), nowNanoseconds: 11 * second,
                          timeoutNanoseconds: timeout) == .halfOpen)
    }
}

@Suite struct LagPolicyTests {
    @Test func resyncResetsOnceThenDelivers() {
        #expect(LagPolicy.resync.action(windowReset: true, gapAccepted: false, unknownID: false) == .reset(reason: .lapped))
        #expect(LagPolicy.resync.action(windowReset: true, gapAccepted: true, unknownID: false) == .deliver)
        #expect(LagPolicy.resync.action(windowReset: false, gapAccepted: false, unknownID: false) == .deliver)
    }

    @Test func disconnectClosesWhenLapped() {
        #expect(LagPolicy.disconnect.action(windowReset: true, gapAccepted: false, unknownID: false) == .disconnect)
        #expect(LagPolicy.disconnect.action(windowReset: false, gapAccepted: false, unknownID: false) == .deliver)
    }

    @Test func unknownIDIsAnEpochResetUnderEitherPolicy() {
        #expect(LagPolicy.disconnect.action(windowReset: true, gapAccepted: false, unknownID: true) == .reset(reason: .epoch))
        #expect(LagPolicy.resync.action(windowReset: false, gapAccepted: false, unknownID: true) == .reset(reason: .epoch))
    }

    @Test func lifetimeJitterStaysWithinTenPercent() {
        let life: UInt64 = 86_400_000_000_000
        var seen = Set<UInt64>()
        for r in stride(from: UInt64(0), to: 1_000_000, by: 7919) {
            let d = Jitter.lifetimeDeadline(startNanoseconds: 5, lifetimeNanoseconds: life, random: r &* 0x9E3779B97F4A7C15)
            #expect(d <= 5 + life)
            #expect(d >= 5 + life - life / 10)
            seen.insert(d)
        }
        #expect(seen.count > 50)
    }

    @Test func retryIsWithinOneToTwoSeconds() {
        for r in [UInt64(0), 1, 999, 1000, 1001, .max] {
            let ms = Jitter.retryMilliseconds(random: r)
            #expect((1000...2000).contains(ms))
        }
    }
}
