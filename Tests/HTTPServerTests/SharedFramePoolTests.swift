import Testing
@testable import HTTPServer

@Suite struct SharedFramePoolTests {
    @Test func aSlotIsFreeOnlyWhenItsLastHolderLetsGo() {
        let pool = SharedFramePool(capacity: 2, slotBytes: 64)
        let bytes: [UInt8] = Array("data: x\n\n".utf8)
        let s = bytes.withUnsafeBytes { pool.take(copying: $0) }!
        #expect(Array(UnsafeRawBufferPointer(start: pool.pointer(s), count: bytes.count)) == bytes)
        pool.hold(s)
        pool.hold(s)
        #expect(pool.holderCount(s) == 3 && pool.inUse == 1)
        #expect(!pool.release(s))
        #expect(!pool.release(s))
        #expect(pool.release(s))
        #expect(pool.inUse == 0)
    }

    @Test func boundedAndReusedLastFreedFirst() {
        let pool = SharedFramePool(capacity: 2, slotBytes: 64)
        let one: [UInt8] = [1]
        let a = one.withUnsafeBytes { pool.take(copying: $0) }!
        let b = one.withUnsafeBytes { pool.take(copying: $0) }!
        #expect(one.withUnsafeBytes { pool.take(copying: $0) } == nil, "every slot held")
        pool.release(a)
        #expect(one.withUnsafeBytes { pool.take(copying: $0) } == a, "the slot last freed (its page is resident)")
        pool.release(b)
        let big = [UInt8](repeating: 0, count: 65)
        #expect(big.withUnsafeBytes { pool.take(copying: $0) } == nil, "larger than a slot")
        #expect(SharedFramePool(capacity: 0, slotBytes: 64).inUse == 0)
    }
}
