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

@Suite struct LargestRetainedEventTests {
    @Test func measuresTheLargestRetainedEventPastPaddingAndDamage() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        #expect(log.reader.largestRetainedEventBytes() == 0, "an empty log holds no event")
        var positions: [UInt64] = []
        for size in [10, 9000, 300, 12000, 5] {
            positions.append(writer.tailPosition)
            try writer.append("a", String(repeating: "d", count: size))
        }
        #expect(log.reader.largestRetainedEventBytes() == 12000)
        // A damaged record's own length is not believed; the walk steps past it.
        log.region.recordPointer(positions[1]).storeU32(LogDescriptor.Record.lengthOffset, 0xFFFF_FFF0)
        #expect(log.reader.largestRetainedEventBytes() == 12000)
        // Lapped many times over (and across padding at each wrap): only retained events count.
        for _ in 0..<40 { try writer.append("b", String(repeating: "e", count: 3000)) }
        #expect(log.reader.largestRetainedEventBytes() == 3000)
    }
}
