import CRinggateSys
import Glibc
import Testing
@testable import RingLog

@Suite struct ResidencyTests {
    /// Pages of `[base, base+length)` in memory (mincore).
    func residentPages(_ base: UnsafeMutableRawPointer, _ length: Int) -> Int {
        let pages = (length + 4095) / 4096
        var vector = [UInt8](repeating: 0, count: pages)
        #expect(mincore(base, length, &vector) == 0)
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    @Test func aNewLogTouchesOnlyItsHeader() throws {
        let geometry = try LogGeometry(capacityBytes: 64 << 20, maxSlots: 65536)
        let log = try LogFile.createEphemeral(geometry: geometry)
        defer { munmap(log.base, log.length); close(log.fd) }
        let region = try LogRegion.attach(base: log.base, length: log.length)
        var writer = LogWriter(region: region)
        let afterStart = residentPages(log.base, log.length)
        #expect(afterStart <= 4, "a fresh log must not be made resident (\(afterStart) of \(log.length / 4096) pages)")
        try writer.append("a", "one event")
        #expect(residentPages(log.base, log.length) <= afterStart + 4)
    }
}
