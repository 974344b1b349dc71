import Testing
@testable import RoleSupport

/// The order of a role's stop, on a clock the test holds.
@Suite struct RoleShutdownTests {
    @Test func aServingRoleNeverFinishes() {
        let stop = RoleShutdown(graceNanoseconds: 2_000)
        #expect(!stop.isStopping)
        #expect(!stop.isFinished(connectionCount: 0, nowNanoseconds: 1_000_000))
    }

    @Test func finishesWhenTheLastConnectionIsGoneOrPastTheDeadline() {
        var stop = RoleShutdown(graceNanoseconds: 2_000)
        let began = stop.begin(nowNanoseconds: 10_000)
        #expect(began)
        #expect(stop.deadlineNanoseconds == 12_000)
        #expect(!stop.isFinished(connectionCount: 3, nowNanoseconds: 11_000))
        #expect(!stop.isFinished(connectionCount: 3, nowNanoseconds: 12_000))   // the deadline itself is still grace
        #expect(stop.isFinished(connectionCount: 3, nowNanoseconds: 12_001))
        #expect(stop.isFinished(connectionCount: 0, nowNanoseconds: 10_000))
    }

    @Test func aSecondTerminationKeepsTheFirstDeadline() {
        var stop = RoleShutdown(graceNanoseconds: 2_000)
        let first = stop.begin(nowNanoseconds: 10_000)
        #expect(first)
        let second = stop.begin(nowNanoseconds: 50_000)
        #expect(!second)
        #expect(stop.deadlineNanoseconds == 12_000)
    }
}
