import CRinggateSys

/// Metric counters kept in the log header's counter area, one block per process, so that any
/// worker can answer `/metrics` summed over all processes without talking to the others.
///
/// Block 0 is the supervisor's, block 1 the ingest's, block `2 + i` worker `i`'s. A restarted
/// process keeps writing into its predecessor's block, so totals stay monotonic.
public enum LogCounter: Int, CaseIterable, Sendable {
    case heartbeatNanoseconds = 0      // monotonic clock of the process's last loop turn
    case pid
    case connectionsSSE                // gauge
    case connectionsHTTP               // gauge
    case connectionsWS                 // gauge
    case eventsAppended
    case eventsDeliveredSSE
    case eventsDeliveredWS
    case historyRequests
    case resetsLapped
    case resetsEpoch
    case disconnectSlowConsumer
    case disconnectSendTimeout
    case disconnectHalfOpen
    case disconnectHeaderTimeout
    case disconnectMaxLifetime
    case disconnectPeerClosed
    case disconnectShutdown
    case disconnectOverCapacity
    case disconnectProtocolError
    case restartsWorker
    case restartsIngest
    case slotDirectoryFull
    case sendBuffersInUse              // gauge
    case sendBufferExhausted
    case connectionsCatchingUp         // gauge
    case pendingSendBytes              // gauge
    case requests
    case publishRejected
    case recvBuffersExhausted
}

public enum ProcessBlock {
    public static let supervisor = 0
    public static let ingest = 1
    public static func worker(_ index: Int) -> Int { 2 + index }
    public static let maxWorkers = LogRegion.maxProcesses - 2
}

/// A process's own counter block; plain (relaxed) stores, since each block has one writer.
public struct CounterBlock: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer

    public init(region: LogRegion, process: Int) {
        base = region.counterPointer(process: process, counter: 0)
    }

    @inline(__always)
    public func add(_ counter: LogCounter, _ amount: UInt64 = 1) {
        let p = base + counter.rawValue * 8
        rg_store_relaxed_u64(p, rg_load_relaxed_u64(p) &+ amount)
    }

    @inline(__always)
    public func subtract(_ counter: LogCounter, _ amount: UInt64 = 1) {
        let p = base + counter.rawValue * 8
        rg_store_relaxed_u64(p, rg_load_relaxed_u64(p) &- amount)
    }

    @inline(__always)
    public func set(_ counter: LogCounter, _ value: UInt64) {
        rg_store_relaxed_u64(base + counter.rawValue * 8, value)
    }

    @inline(__always)
    public func get(_ counter: LogCounter) -> UInt64 {
        rg_load_relaxed_u64(base + counter.rawValue * 8)
    }
}

extension LogRegion {
    /// Sum of one counter over the given process blocks.
    public func counterSum(_ counter: LogCounter, processes: Range<Int>) -> UInt64 {
        var total: UInt64 = 0
        for p in processes {
            total &+= rg_load_relaxed_u64(counterPointer(process: p, counter: counter.rawValue))
        }
        return total
    }
}
