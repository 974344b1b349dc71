import CRinggateSys
import RingLog

extension LogRegion {
    /// Another process's counter (a worker's gauge, the ingest's heartbeat), read with a
    /// relaxed load: a reading for a decision that tolerates staleness, never a hand-off.
    public func loadCounterRelaxed(_ counter: LogCounter, process: Int) -> UInt64 {
        rg_load_relaxed_u64(counterPointer(process: process, counter: counter.rawValue))
    }
}
