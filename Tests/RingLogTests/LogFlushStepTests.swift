import CRinggateSys
import Glibc
import Testing

/// The `--fsync interval` flusher's turn: a failed fdatasync is counted (with its errno) and
/// does not count as flushed; the ingest logs and exports the count.
@Suite struct LogFlushStepTests {
    @Test func failedFlushIsCountedAndNotTakenAsSynced() throws {
        var counters = [UInt64](repeating: 0, count: 4)   // count, nanoseconds, errors, last errno
        var pipeFDs: [Int32] = [0, 0]
        #expect(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        // fdatasync of a pipe fails (EINVAL), as a disk's write-back error (EIO) would.
        let synced = counters.withUnsafeMutableBytes { c in
            rg_flush_step(pipeFDs[1], 4096, 0, c.baseAddress!, c.baseAddress! + 8, c.baseAddress! + 16, c.baseAddress! + 24)
        }
        #expect(synced == 0, "a failed flush does not move `synced`: the next turn flushes again")
        #expect(counters[2] == 1 && counters[3] == UInt64(EINVAL))

        var template = Array("/tmp/ringgate-flush-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        #expect(fd >= 0)
        defer { close(fd); unlink(template) }
        let good = counters.withUnsafeMutableBytes { c in
            rg_flush_step(fd, 4096, 0, c.baseAddress!, c.baseAddress! + 8, c.baseAddress! + 16, c.baseAddress! + 24)
        }
        #expect(good == 4096 && counters[0] == 2 && counters[2] == 1)
        let idle = counters.withUnsafeMutableBytes { c in
            rg_flush_step(fd, 4096, 4096, c.baseAddress!, c.baseAddress! + 8, c.baseAddress! + 16, c.baseAddress! + 24)
        }
        #expect(idle == 4096 && counters[0] == 2, "nothing moved: no flush")
    }
}
