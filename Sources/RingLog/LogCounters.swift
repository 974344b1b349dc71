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
    case overCapacitySlot
    // Subscriber lag, in events of the whole log, observed once per catch-up episode:
    // a Prometheus histogram with these upper bounds.
    case lagLE1, lagLE10, lagLE100, lagLE1000, lagLE10000, lagLE100000, lagLEInf
    case lagSum
    case lagCount
    // Not a metric: 1 while worker i has subscribers, 0 otherwise. The ingest signals only the
    // workers that want it (see `Worker.setWakeWanted` for the ordering that makes this safe).
    case wakeWanted
    // MARK: READER
    /// Damaged log records a worker stepped past, each counted once per worker.
    case logCorruptRecords
    /// Resets sent because a damaged record of the subscriber's slot was skipped.
    case resetsDamaged
    /// History pulls answered 503: the window was overwritten on every try before one event was copied.
    case historyOverruns
    // MARK: SUPERVISOR + BROWSERS
    // `restartsWorker` / `restartsIngest` count restarts after a crash; these, after the
    // watchdog killed a child whose loop stopped turning.
    case restartsWorkerWatchdog
    case restartsIngestWatchdog
    case listenersClosed               // dead workers' listeners closed by the supervisor
    case admissionClaimStuck           // streams refused: a slot's admission entry stayed half-claimed
    case originRejectedCORS            // preflights refused, requests answered without CORS headers
    case originRejectedWebSocket       // WebSocket handshakes refused by --ws-origins
    // MARK: LOG
    case logFsyncs                     // ingest: fdatasync calls (always and interval)
    case logFsyncNanoseconds           // ingest: time spent in them
    case logRecoveryRolledBackBatches  // ingest: unfinished batches rolled back at start-up
    case logRecoveryDamagedRecords     // ingest: recovery cuts at a damaged record
    case logRecoveryDiscardedBytes     // ingest: bytes turned into padding by recovery
    case publishBatchRefused           // ingest: batches refused whole by the pre-check
    // MARK: HTTP limits (issue 10, items 7-11)
    case acceptErrorsEMFILE            // accept failed: the process's descriptor limit
    case acceptErrorsENFILE            // accept failed: the system's descriptor limit
    case acceptErrorsOther             // accept failed for another reason (ENOBUFS, ENOMEM…)
    case pendingBodyBytes              // gauge: request body bytes buffered, not yet complete
    case pendingBodyRejected           // bodies refused (503) by --max-pending-body-bytes
    case pipelinePaused                // connections whose input was paused by the pipeline caps
    case responseQueueBytes            // gauge: response bytes queued and not yet sent
    case submissionQueueFull           // io_uring preps deferred because the SQ stayed full
    case httpErrors400, httpErrors408, httpErrors413, httpErrors414, httpErrors431, httpErrorsOther
    // MARK: LIVENESS (not metrics): what the supervisor's start-up wait and watchdog read
    // besides `heartbeatNanoseconds`.
    /// Monotonic time of the ingest's last progress through the start-up recovery scan.
    case startupProgressNanoseconds
    /// Monotonic time the ingest entered a blocking fdatasync (`--fsync always`); 0 outside one.
    case fsyncStartedNanoseconds
    // MARK: LOG (review of issue 10)
    case logFsyncErrors                // ingest: fdatasync calls that failed (the flusher goes on)
    case logFsyncLastErrno             // not a metric: errno of the last failed flush, for the log line
    // MARK: HTTP review (issue 10 follow-up)
    case disconnectBodyTimeout         // a request body made too little progress (408)
    case connectionsAdmin              // gauge: connections on the admin reserve (not in connectionsHTTP)
    // MARK: CLUSTER (issue 12). Each field has one writer: the link's threads (L), the ingest's
    // loop (I), a worker (W) or the supervisor (S).
    case upstreamUp                    // L gauge: 1 while both Redis connections work
    case upstreamClusterHeadSeq        // L gauge: the cluster's newest seq as Redis last said
    case upstreamPublishLE500us, upstreamPublishLE1ms, upstreamPublishLE2500us, upstreamPublishLE5ms,
         upstreamPublishLE10ms, upstreamPublishLE25ms, upstreamPublishLE100ms, upstreamPublishLE500ms,
         upstreamPublishLEInf          // L: script round trips, non-cumulative buckets
    case upstreamPublishSumNanoseconds // L
    case upstreamPublishCount          // L
    case upstreamReconnects            // L: connections re-made after a failure
    case upstreamQueueEvents           // L gauge: events submitted, not yet answered by Redis
    case upstreamLagEvents             // I gauge: cluster head seq - local head seq (0 when ahead)
    case upstreamStalled               // I gauge: 1 when behind and the local head did not move for the stall time
    case upstreamGaps                  // I: seq jumps found while tailing
    case upstreamGapDroppedEvents      // I: seqs those jumps skipped
    case upstreamDivergences           // I: entries whose seq was not above what this host applied, with other contents
    case upstreamUnavailable           // I: publishes answered 503 upstream_unavailable
    case upstreamQueueFull             // I: publishes answered 503 because the link's queue was full
    case upstreamEntriesApplied        // I: stream entries appended to the local log
    case upstreamEntriesReplayed       // I: entries at or below the local head, identical to it (skipped)
    case upstreamAckUnapplied          // I: 201s sent before the local log held the event (tail too slow)
    case resetsGap                     // W: `reset` reason gap sent
    case upstreamReinitializations     // S: the log re-made for a new cluster epoch or a diverged history
    case drainingSinceNanoseconds      // S gauge: monotonic clock of the SIGTERM that began the drain, 0 while serving
    // MARK: AUTH (issue 14): subscriber requests refused by --subscribe-auth jwt, by reason.
    case authFailuresMissing           // W: no token
    case authFailuresInvalid           // W: malformed, bad signature, alg, aud, iss, nbf, iat
    case authFailuresExpired           // W: exp (+ leeway) past at admission
    case authFailuresForbidden         // W: valid token, slot not in its `slots`
    case disconnectTokenExpired        // W: streams closed when their token expired
    case streamSlotLimit               // W: streams and pulls refused for naming more than --max-slots-per-stream slots
    case statusStreamLimit             // W: stats streams refused by --max-status-streams
    // Publishers refused by --publish-token / --publish-auth jwt, by reason.
    case publishAuthMissing            // I: no Authorization header (or not Bearer)
    case publishAuthInvalid            // I: not the token, or a malformed, badly signed or otherwise invalid JWT
    case publishAuthExpired            // I: a JWT whose exp (+ leeway) is past
    case publishAuthForbidden          // I: a valid JWT whose `publish` claim does not name a slot of the request
    // MARK: SHARED FRAMES (issue 15)
    case sharedFramesInUse             // W gauge: fan-out frames kept once, held by the fan-out or a stream still sending one
    case sharedFramesExhausted         // W: fan-outs that found every shared frame held and copied the frame per stream
}

extension LogCounter {
    public static let lagBuckets: [(bound: String, counter: LogCounter)] = [
        ("1", .lagLE1), ("10", .lagLE10), ("100", .lagLE100), ("1000", .lagLE1000),
        ("10000", .lagLE10000), ("100000", .lagLE100000), ("+Inf", .lagLEInf),
    ]
}

extension LogCounter {
    /// Upper bounds (seconds, as rendered) of the publish round-trip histogram.
    public static let upstreamPublishBuckets: [(bound: String, nanoseconds: UInt64, counter: LogCounter)] = [
        ("0.0005", 500_000, .upstreamPublishLE500us), ("0.001", 1_000_000, .upstreamPublishLE1ms),
        ("0.0025", 2_500_000, .upstreamPublishLE2500us), ("0.005", 5_000_000, .upstreamPublishLE5ms),
        ("0.01", 10_000_000, .upstreamPublishLE10ms), ("0.025", 25_000_000, .upstreamPublishLE25ms),
        ("0.1", 100_000_000, .upstreamPublishLE100ms), ("0.5", 500_000_000, .upstreamPublishLE500ms),
        ("+Inf", .max, .upstreamPublishLEInf),
    ]
}

extension CounterBlock {
    /// Records one publish round trip to Redis (non-cumulative buckets; the renderer accumulates).
    public func observeUpstreamPublish(nanoseconds: UInt64) {
        for bucket in LogCounter.upstreamPublishBuckets where nanoseconds <= bucket.nanoseconds {
            add(bucket.counter)
            break
        }
        add(.upstreamPublishSumNanoseconds, nanoseconds)
        add(.upstreamPublishCount)
    }

    /// Records one lag observation (non-cumulative buckets; the renderer accumulates).
    public func observeLag(events: UInt64) {
        let bucket: LogCounter = switch events {
        case ...1: .lagLE1
        case ...10: .lagLE10
        case ...100: .lagLE100
        case ...1000: .lagLE1000
        case ...10000: .lagLE10000
        case ...100_000: .lagLE100000
        default: .lagLEInf
        }
        add(bucket)
        add(.lagSum, events)
        add(.lagCount)
    }
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
