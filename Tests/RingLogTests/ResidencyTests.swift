import CRinggateSys
import Glibc
import Testing
@testable import RingLog

@Suite struct ResidencyTests {
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

    @Test func restartingOnAUsedLogTouchesOnlyWhatWasWritten() throws {
        let geometry = try LogGeometry(capacityBytes: 64 << 20, maxSlots: 65536)
        let log = try LogFile.createEphemeral(geometry: geometry)
        defer { munmap(log.base, log.length); close(log.fd) }
        let region = try LogRegion.attach(base: log.base, length: log.length)
        var writer = LogWriter(region: region)
        for i in 0..<10 { try writer.append("s\(i)", "event \(i)") }
        let written = residentPages(log.base, log.length)
        // A second writer (an ingest restart) runs the recovery scan over the 24 MiB directory.
        let restarted = LogWriter(region: region, file: log.fd)
        #expect(restarted.recovery.recordsVerified == 10)
        let after = residentPages(log.base, log.length)
        #expect(after <= written + 4, "recovery must not fault the directory in (\(written) -> \(after) pages)")
        #expect(LogReader(region: region).findSlot("s7")?.count == 1)
    }
}
