import Testing
@testable import RingLog

@Suite struct LogEventBytesLimitTests {
    @Test func raisedNeverLoweredAndKeptAcrossAttach() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        #expect(log.region.maxEventBytesAcquire == 0, "a fresh log has recorded no limit")
        log.region.raiseMaxEventBytes(200 << 10)
        log.region.raiseMaxEventBytes(64 << 10)    // a later run with a smaller limit
        #expect(log.region.maxEventBytesAcquire == 200 << 10)
        let reattached = try LogRegion.attach(base: log.base, length: log.length)
        #expect(reattached.maxEventBytesAcquire == 200 << 10)
        reattached.raiseMaxEventBytes(1 << 20)
        #expect(log.region.maxEventBytesAcquire == 1 << 20)
    }
}
