import Glibc
import RingLog

/// How a serving role (a worker, the ingest) takes its place on the log the supervisor
/// handed down: the mapping, the region and its own counter block.
public enum RoleLog {
    /// Maps the log file `fd` and attaches to its region (checks the header, the geometry).
    public static func attach(fd: Int32) throws -> LogRegion {
        let mapping = try LogFile.map(fd: fd)
        return try LogRegion.attach(base: mapping.base, length: mapping.length)
    }

    /// The role's counter block (`ProcessBlock.worker(i)` or `.ingest`), stamped with this
    /// process's pid: the block outlives a restarted child, so the pid says whose it is now.
    public static func counters(region: LogRegion, process: Int) -> CounterBlock {
        let block = CounterBlock(region: region, process: process)
        block.set(.pid, UInt64(getpid()))
        return block
    }
}
