import Testing
@testable import HTTPServer

@Suite struct SendBufferPoolTests {
    /// Takes `n` buffers, writes to each (so it is touched), gives them all back.
    func cycle(_ pool: SendBufferPool, _ n: Int) {
        let taken = (0..<n).map { _ in pool.take()! }
        for b in taken { pool.pointer(b).storeBytes(of: 1, as: UInt8.self) }
        for b in taken.reversed() { pool.give(b) }
    }

    @Test func keepsOnlyTheMostRecentlyFreedAtEachTrim() {
        let pool = SendBufferPool(capacity: 512, bufferBytes: 4096)
        cycle(pool, 300)                              // a burst: 300 at once
        #expect(pool.trim(keep: 32) == 268)           // gone at the next trim, but `keep`
        cycle(pool, 200)                              // a load of 200: 32 of them still resident
        #expect(pool.trim(keep: 32) == 168)
        #expect(pool.trim(keep: 32) == 0)             // nothing touched since: nothing to give back
        #expect(pool.touched.filter { $0 }.count == 32)
    }

    @Test func aBroadcastToIdleStreamsLeavesNoBufferResidentAfterTheNextTrim() {
        let pool = SendBufferPool(capacity: 4096, bufferBytes: 4096)
        _ = pool.trim(keep: 32)                       // idle periods before
        cycle(pool, 2500)                             // one event to 2,500 idle streams
        #expect(pool.trim(keep: 32) == 2500 - 32)
        #expect(pool.touched.filter { $0 }.count == 32)
    }

    @Test func buffersInUseAreNeverTrimmed() {
        let pool = SendBufferPool(capacity: 64, bufferBytes: 4096)
        let held = (0..<10).map { _ in pool.take()! }
        for b in held { pool.pointer(b).storeBytes(of: 1, as: UInt8.self) }
        cycle(pool, 40)                               // 50 in use at the peak
        _ = pool.trim(keep: 0)
        _ = pool.trim(keep: 0)                        // peak now 10, all in use: every free one goes
        #expect(pool.inUse == 10)
        for b in held { #expect(pool.touched[Int(b)]) }
        #expect(pool.touched.filter { $0 }.count == 10)
    }
}
