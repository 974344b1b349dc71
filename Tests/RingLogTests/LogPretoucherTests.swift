import Glibc
import Testing
@testable import RingLog

@Suite struct LogPretoucherTests {
    typealias State = LogPretoucher.State
    let capacity: UInt64 = 1 << 20

    @Test func populatesAheadOfTheTailAndOnlyWhatIsNew() {
        var state = State()
        #expect(LogPretoucher.plan(tail: 0, capacity: capacity, lookahead: 4096, state: &state) == 0..<4096)
        // The tail moved but is still inside what was populated: only the new part beyond.
        #expect(LogPretoucher.plan(tail: 1000, capacity: capacity, lookahead: 8192, state: &state) == 4096..<9192)
        #expect(LogPretoucher.plan(tail: 1000, capacity: capacity, lookahead: 8192, state: &state) == nil)
    }

    @Test func aWriterThatOvertookIsFollowedFromItsTail() {
        var state = State()
        _ = LogPretoucher.plan(tail: 0, capacity: capacity, lookahead: 4096, state: &state)
        // The pages between 4096 and 50000 were faulted by the writer itself: not populated again.
        #expect(LogPretoucher.plan(tail: 50000, capacity: capacity, lookahead: 4096, state: &state) == 50000..<54096)
    }

    @Test func stopsAfterOneLapAndStartsAgainAfterAReinitialisation() {
        var state = State()
        let start: UInt64 = 3 * capacity + 100   // a reopened log, tail past several laps
        _ = LogPretoucher.plan(tail: start, capacity: capacity, lookahead: 4096, state: &state)
        // Capped at one lap from where it began, across the ring's end.
        #expect(LogPretoucher.plan(tail: start + capacity - 10, capacity: capacity, lookahead: 4096, state: &state)
                == (start + capacity - 10)..<(start + capacity))
        #expect(LogPretoucher.plan(tail: start + 2 * capacity, capacity: capacity, lookahead: 4096, state: &state) == nil)
        // Re-initialised: the tail is back at 0, a new lap begins there.
        #expect(LogPretoucher.plan(tail: 0, capacity: capacity, lookahead: 4096, state: &state) == 0..<4096)
    }

    @Test func makesPagesResidentAheadOfARealWriterAndNothingWhileIdle() throws {
        let log = try MemfdLog(capacityBytes: 64 << 20, maxSlots: 1024)
        let region = log.region
        var writer = LogWriter(region: region)
        var pretoucher = LogPretoucher(region: region)
        let ring = region.data
        let ringBytes = region.geometry.capacityBytes
        #expect(pretoucher.advance() == 0, "the first call only notes the tail")
        let idle = residentPages(ring, ringBytes)
        #expect(pretoucher.advance() == 0, "an idle log gets nothing populated")
        #expect(residentPages(ring, ringBytes) == idle)

        let payload = String(repeating: "x", count: 1000)
        for _ in 0..<1000 { try writer.append("s", payload) }   // about 1 MiB
        let tail = LogReader(region: region).tailAcquire()
        let written = residentPages(ring, ringBytes)
        let populated = pretoucher.advance()
        #expect(UInt64(populated) >= 2 * tail - 4096, "twice what was written, ahead of the tail")
        let after = residentPages(ring, ringBytes)
        #expect(after >= written + Int(2 * tail / 4096) - 2, "\(written) -> \(after) resident pages")
        #expect(after <= written + Int(2 * tail / 4096) + 2, "no more than the lookahead: \(written) -> \(after)")
        #expect(!pretoucher.unsupported)
        // The writer's next pages are the populated ones: its events land and read back.
        try writer.append("s", "after")
        #expect(LogReader(region: region).findSlot("s")?.count == 1001)
        withExtendedLifetime(log) {}
    }
}
