import Testing
@testable import StreamPolicy

@Suite struct TimerWheelTests {
    let ms: UInt64 = 1_000_000

    func taken(_ wheel: inout TimerWheel, at now: UInt64) -> [Int32] {
        var out: [TimerWheel.Entry] = []
        wheel.takeDue(nowNanoseconds: now, into: &out)
        return out.map(\.connection)
    }

    @Test func handsOutEachEntryOnceItIsDueAndNotBefore() {
        var w = TimerWheel(slotNanoseconds: 250 * ms, slotCount: 8, nowNanoseconds: 0)
        w.schedule(1, token: 1, dueNanoseconds: 600 * ms)
        w.schedule(2, token: 1, dueNanoseconds: 300 * ms)
        w.schedule(3, token: 1, dueNanoseconds: 0)            // already due: the next look
        #expect(taken(&w, at: 250 * ms) == [3])
        #expect(taken(&w, at: 299 * ms) == [])               // 2 is in slot 1, due at 300
        #expect(taken(&w, at: 300 * ms) == [2])
        #expect(taken(&w, at: 750 * ms) == [1])
        #expect(taken(&w, at: 5_000 * ms) == [])
        #expect(w.count == 0)
    }

    @Test func anEntryBeyondATurnWaitsInItsSlotForItsTurn() {
        var w = TimerWheel(slotNanoseconds: 250 * ms, slotCount: 4, nowNanoseconds: 0)   // a turn is 1 s
        w.schedule(7, token: 3, dueNanoseconds: 2_600 * ms)   // slot 10 ≡ 2: looked at at 0.5 s and 1.5 s
        var now: UInt64 = 0
        var seen: [UInt64] = []
        while now <= 4_000 * ms {
            var due: [TimerWheel.Entry] = []
            w.takeDue(nowNanoseconds: now, into: &due)
            for e in due {
                #expect(e.token == 3)
                seen.append(now)
            }
            now += 250 * ms
        }
        #expect(seen == [2_750 * ms])                        // slot 11's look is the first at or after 2.6 s
        #expect(w.count == 0)
    }

    @Test func aStalledLoopLooksAtEverySlotOnce() {
        var w = TimerWheel(slotNanoseconds: 250 * ms, slotCount: 4, nowNanoseconds: 0)
        for c in 0..<40 { w.schedule(Int32(c), token: 0, dueNanoseconds: UInt64(c) * 100 * ms) }
        w.schedule(50, token: 0, dueNanoseconds: 10_200 * ms)
        // 10 s later: 40 slots passed, the last 4 (one turn) are looked at and hold all 40.
        #expect(taken(&w, at: 10_000 * ms).sorted() == (0..<40).map { Int32($0) })
        #expect(w.count == 1)
        w.schedule(100, token: 0, dueNanoseconds: 10_100 * ms)
        #expect(taken(&w, at: 10_250 * ms).sorted() == [50, 100])
        #expect(w.count == 0)
    }

    @Test func pastDueIsTakenAtTheNextLook() {
        var w = TimerWheel(slotNanoseconds: 250 * ms, slotCount: 4, nowNanoseconds: 0)
        _ = taken(&w, at: 1_000 * ms)
        w.schedule(1, token: 0, dueNanoseconds: 900 * ms)   // slot 3 was looked at: it goes in slot 4
        w.schedule(2, token: 0, dueNanoseconds: 1_200 * ms)
        #expect(taken(&w, at: 1_100 * ms) == [1])
        #expect(taken(&w, at: 1_200 * ms) == [2])
        #expect(w.count == 0)
    }
}
