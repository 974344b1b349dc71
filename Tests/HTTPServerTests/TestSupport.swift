import RingLog

/// A formatted log on the heap (for its counter blocks), freed with the object.
final class HeapLog {
    let base: UnsafeMutableRawPointer
    let region: LogRegion

    init(capacityBytes: Int = 4096, maxSlots: Int = 8) {
        let geometry = try! LogGeometry(capacityBytes: capacityBytes, maxSlots: maxSlots)
        base = UnsafeMutableRawPointer.allocate(byteCount: geometry.totalBytes, alignment: 4096)
        // format expects zeroed memory, like a fresh ftruncate'd file (and counters start at 0).
        base.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
        region = try! LogRegion.format(base: base, length: geometry.totalBytes, geometry: geometry, epoch: 7)
    }

    deinit { base.deallocate() }
}
