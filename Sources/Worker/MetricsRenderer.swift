import RingLog

/// Renders `/metrics` (Prometheus text format) from the counters every process keeps in the
/// log header, summed over the supervisor, the ingest and all workers.
struct MetricsRenderer {
    let region: LogRegion
    let reader: LogReader
    let processes: Range<Int>
    // MARK: IO: the backend this worker's loop runs on (`IOBackendKind.rawValue`).
    let ioBackend: String
    /// `--io auto` found io_uring refused on this host and serves on epoll.
    let ioFallback: Bool
    // MARK: CLUSTER: the upstream's metrics are rendered in cluster mode only.
    let isCluster: Bool

    init(region: LogRegion, workers: Int, ioBackend: String = "io_uring", ioFallback: Bool = false,
         isCluster: Bool = false) {
        self.region = region
        self.ioBackend = ioBackend
        self.ioFallback = ioFallback
        self.isCluster = isCluster
        reader = LogReader(region: region)
        processes = 0..<(2 + workers)
    }

    /// `disconnects_total{reason}`: each label and its counter (the status stream reads it too).
    static let disconnectReasons: [(String, LogCounter)] = [
        ("slow_consumer", .disconnectSlowConsumer), ("send_timeout", .disconnectSendTimeout),
        ("half_open", .disconnectHalfOpen), ("header_timeout", .disconnectHeaderTimeout),
        ("max_lifetime", .disconnectMaxLifetime), ("peer_closed", .disconnectPeerClosed),
        ("shutdown", .disconnectShutdown), ("over_capacity", .disconnectOverCapacity),
        ("protocol_error", .disconnectProtocolError),
        // MARK: HTTP review (issue 10 follow-up)
        ("body_timeout", .disconnectBodyTimeout),
        // MARK: AUTH (issue 14)
        ("token_expired", .disconnectTokenExpired),
    ]

    func render() -> [UInt8] {
        var out = ""
        out.reserveCapacity(4096)
        func sum(_ c: LogCounter) -> UInt64 { region.counterSum(c, processes: processes) }
        func gauge(_ c: LogCounter) -> Int64 { Int64(bitPattern: sum(c)) }
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP ringgate_\(name) \(help)\n# TYPE ringgate_\(name) \(type)\n"
        }

        family("connections", "gauge", "Open connections by transport.")
        out += "ringgate_connections{transport=\"sse\"} \(gauge(.connectionsSSE))\n"
        out += "ringgate_connections{transport=\"ws\"} \(gauge(.connectionsWS))\n"
        out += "ringgate_connections{transport=\"http\"} \(gauge(.connectionsHTTP))\n"
        // MARK: HTTP review (issue 10 follow-up): the admin reserve, outside the connection limit
        out += "ringgate_connections{transport=\"admin\"} \(gauge(.connectionsAdmin))\n"
        family("events_appended_total", "counter", "Events appended to the log.")
        out += "ringgate_events_appended_total \(sum(.eventsAppended))\n"
        family("events_delivered_total", "counter", "Events written to subscribers.")
        out += "ringgate_events_delivered_total{transport=\"sse\"} \(sum(.eventsDeliveredSSE))\n"
        out += "ringgate_events_delivered_total{transport=\"ws\"} \(sum(.eventsDeliveredWS))\n"
        family("disconnects_total", "counter", "Connections the server ended, by reason.")
        for (reason, counter) in Self.disconnectReasons {
            out += "ringgate_disconnects_total{reason=\"\(reason)\"} \(sum(counter))\n"
        }
        family("resets_total", "counter", "Reset events sent to subscribers, by reason.")
        out += "ringgate_resets_total{reason=\"lapped\"} \(sum(.resetsLapped))\n"
        out += "ringgate_resets_total{reason=\"epoch\"} \(sum(.resetsEpoch))\n"
        out += "ringgate_resets_total{reason=\"damaged\"} \(sum(.resetsDamaged))\n"   // READER: one family, one block
        if isCluster { out += "ringgate_resets_total{reason=\"gap\"} \(sum(.resetsGap))\n" }   // CLUSTER: same family
        family("history_requests_total", "counter", "History pulls served.")
        out += "ringgate_history_requests_total \(sum(.historyRequests))\n"
        family("requests_total", "counter", "HTTP requests parsed, both listeners.")
        out += "ringgate_requests_total \(sum(.requests))\n"
        family("publish_rejected_total", "counter", "Publish requests rejected (bad input, auth, limits).")
        out += "ringgate_publish_rejected_total \(sum(.publishRejected))\n"
        family("log_head_seq", "gauge", "Sequence number of the newest event in the log.")
        out += "ringgate_log_head_seq \(reader.headSeqAcquire())\n"
        family("log_oldest_seq", "gauge", "Sequence number of the oldest retained event.")
        out += "ringgate_log_oldest_seq \(reader.oldestSeqAcquire())\n"
        family("log_capacity_bytes", "gauge", "Capacity of the ring log's data region.")
        out += "ringgate_log_capacity_bytes \(region.geometry.capacityBytes)\n"
        family("slots", "gauge", "Slots in the slot directory.")
        out += "ringgate_slots \(reader.liveSlotsAcquire())\n"
        family("slot_directory_full_total", "counter", "Publishes refused because the slot directory was full.")
        out += "ringgate_slot_directory_full_total \(sum(.slotDirectoryFull))\n"
        // MARK: SUPERVISOR + BROWSERS
        family("process_restarts_total", "counter", "Child processes restarted by the supervisor, by role and reason (crash: it exited; watchdog: its loop stopped turning).")
        out += "ringgate_process_restarts_total{role=\"worker\",reason=\"crash\"} \(sum(.restartsWorker))\n"
        out += "ringgate_process_restarts_total{role=\"worker\",reason=\"watchdog\"} \(sum(.restartsWorkerWatchdog))\n"
        out += "ringgate_process_restarts_total{role=\"ingest\",reason=\"crash\"} \(sum(.restartsIngest))\n"
        out += "ringgate_process_restarts_total{role=\"ingest\",reason=\"watchdog\"} \(sum(.restartsIngestWatchdog))\n"
        family("draining", "gauge", "1 from the SIGTERM that began this host's drain (/readyz answers 503) until it stops.")
        out += "ringgate_draining \(sum(.drainingSinceNanoseconds) == 0 ? 0 : 1)\n"
        family("worker_listeners_closed_total", "counter", "Listeners of dead workers closed until their restart, so no connection waits in their backlog.")
        out += "ringgate_worker_listeners_closed_total \(sum(.listenersClosed))\n"
        family("slot_admission_stuck_total", "counter", "Streams refused because their slot's admission entry stayed half-claimed (its claimer died).")
        out += "ringgate_slot_admission_stuck_total \(sum(.admissionClaimStuck))\n"
        family("origin_rejected_total", "counter", "Requests from origins not in --cors-origins (answered without CORS headers; preflights refused) and WebSocket handshakes refused by --ws-origins.")
        out += "ringgate_origin_rejected_total{check=\"cors\"} \(sum(.originRejectedCORS))\n"
        out += "ringgate_origin_rejected_total{check=\"websocket\"} \(sum(.originRejectedWebSocket))\n"
        // MARK: AUTH (issue 14)
        family("auth_failures_total", "counter", "Subscriber requests refused by --subscribe-auth jwt: no token (missing), a bad one (invalid), an expired one, a slot the token does not name (forbidden).")
        for (reason, counter) in [("missing", LogCounter.authFailuresMissing), ("invalid", .authFailuresInvalid),
                                  ("expired", .authFailuresExpired), ("forbidden", .authFailuresForbidden)] {
            out += "ringgate_auth_failures_total{reason=\"\(reason)\"} \(sum(counter))\n"
        }
        family("publish_auth_failures_total", "counter", "Publish requests refused by --publish-token or --publish-auth jwt: no token (missing), a wrong or bad one (invalid), an expired JWT, a slot its publish claim does not name (forbidden). Also counted in publish_rejected_total.")
        for (reason, counter) in [("missing", LogCounter.publishAuthMissing), ("invalid", .publishAuthInvalid),
                                  ("expired", .publishAuthExpired), ("forbidden", .publishAuthForbidden)] {
            out += "ringgate_publish_auth_failures_total{reason=\"\(reason)\"} \(sum(counter))\n"
        }
        family("connections_catching_up", "gauge", "Subscribers reading from their cursor instead of the live fan-out.")
        out += "ringgate_connections_catching_up \(gauge(.connectionsCatchingUp))\n"
        family("pending_send_bytes", "gauge", "Bytes written to send buffers and not yet sent.")
        out += "ringgate_pending_send_bytes \(gauge(.pendingSendBytes))\n"
        family("send_buffers_in_use", "gauge", "Pooled send buffers held by connections.")
        out += "ringgate_send_buffers_in_use \(gauge(.sendBuffersInUse))\n"
        family("send_buffer_exhausted_total", "counter", "Times a connection found the send buffer pool empty.")
        out += "ringgate_send_buffer_exhausted_total \(sum(.sendBufferExhausted))\n"
        family("shared_frames_in_use", "gauge", "Fan-out frames kept once for the streams sending them (held by the fan-out or a stream whose send of it has not completed).")
        out += "ringgate_shared_frames_in_use \(gauge(.sharedFramesInUse))\n"
        family("shared_frames_exhausted_total", "counter", "Fan-outs that found every shared frame held (--shared-frames) and copied their frame into each stream's buffer.")
        out += "ringgate_shared_frames_exhausted_total \(sum(.sharedFramesExhausted))\n"
        family("recv_buffers_exhausted_total", "counter", "Receives that found no provided buffer free.")
        out += "ringgate_recv_buffers_exhausted_total \(sum(.recvBuffersExhausted))\n"
        family("subscriber_lag_events", "histogram", "How far (in log events) a subscriber fell behind the live fan-out, once per catch-up.")
        var cumulative: UInt64 = 0
        for (bound, counter) in LogCounter.lagBuckets {
            cumulative &+= sum(counter)
            out += "ringgate_subscriber_lag_events_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "ringgate_subscriber_lag_events_sum \(sum(.lagSum))\n"
        out += "ringgate_subscriber_lag_events_count \(sum(.lagCount))\n"
        family("slot_subscriber_limit_total", "counter", "Streams refused by --max-subscribers-per-slot.")
        out += "ringgate_slot_subscriber_limit_total \(sum(.overCapacitySlot))\n"
        family("stream_slot_limit_total", "counter", "Streams and history pulls refused for naming more than --max-slots-per-stream slots.")
        out += "ringgate_stream_slot_limit_total \(sum(.streamSlotLimit))\n"
        family("status_stream_limit_total", "counter", "Status page stats streams refused by --max-status-streams (per worker).")
        out += "ringgate_status_stream_limit_total \(sum(.statusStreamLimit))\n"
        // MARK: READER
        family("log_corrupt_records_total", "counter", "Damaged log records skipped by readers (each once per worker).")
        out += "ringgate_log_corrupt_records_total \(sum(.logCorruptRecords))\n"
        family("history_overruns_total", "counter", "History pulls answered 503 log_overrun: the ring overwrote the window on every try.")
        out += "ringgate_history_overruns_total \(sum(.historyOverruns))\n"
        // MARK: LOG
        family("log_fsyncs_total", "counter", "fdatasync calls on the log file (--fsync always or interval).")
        out += "ringgate_log_fsyncs_total \(sum(.logFsyncs))\n"
        family("log_fsync_seconds_total", "counter", "Time spent in fdatasync of the log file.")
        out += "ringgate_log_fsync_seconds_total \(Double(sum(.logFsyncNanoseconds)) / 1e9)\n"
        family("log_recovery_total", "counter", "Recovery cuts of the log at ingest start-up, by cause.")
        out += "ringgate_log_recovery_total{cause=\"unfinished_batch\"} \(sum(.logRecoveryRolledBackBatches))\n"
        out += "ringgate_log_recovery_total{cause=\"damaged_record\"} \(sum(.logRecoveryDamagedRecords))\n"
        family("log_recovery_discarded_bytes_total", "counter", "Log bytes recovery turned into padding.")
        out += "ringgate_log_recovery_discarded_bytes_total \(sum(.logRecoveryDiscardedBytes))\n"
        family("publish_batch_refused_total", "counter", "NDJSON batches refused whole before any line was appended (log or directory limits).")
        out += "ringgate_publish_batch_refused_total \(sum(.publishBatchRefused))\n"
        // MARK: LOG (review of issue 10)
        family("log_fsync_errors_total", "counter", "fdatasync calls on the log file that failed (writes since the last good flush may be lost on power loss).")
        out += "ringgate_log_fsync_errors_total \(sum(.logFsyncErrors))\n"
        // MARK: HTTP limits (issue 10, items 7-11)
        family("accept_errors_total", "counter", "Accepts that failed, by errno (accept backs off; waiting connections get 503).")
        out += "ringgate_accept_errors_total{errno=\"EMFILE\"} \(sum(.acceptErrorsEMFILE))\n"
        out += "ringgate_accept_errors_total{errno=\"ENFILE\"} \(sum(.acceptErrorsENFILE))\n"
        out += "ringgate_accept_errors_total{errno=\"other\"} \(sum(.acceptErrorsOther))\n"
        family("pending_body_bytes", "gauge", "Request body bytes buffered before the body was complete.")
        out += "ringgate_pending_body_bytes \(gauge(.pendingBodyBytes))\n"
        family("pending_body_rejected_total", "counter", "Request bodies refused with 503 by --max-pending-body-bytes.")
        out += "ringgate_pending_body_rejected_total \(sum(.pendingBodyRejected))\n"
        family("pipeline_paused_total", "counter", "Times a connection's input was paused by --max-pipelined-requests or --max-response-queue-bytes.")
        out += "ringgate_pipeline_paused_total \(sum(.pipelinePaused))\n"
        family("response_queue_bytes", "gauge", "Response bytes queued and not yet sent.")
        out += "ringgate_response_queue_bytes \(gauge(.responseQueueBytes))\n"
        family("submission_queue_full_total", "counter", "io_uring operations deferred because the submission queue stayed full.")
        out += "ringgate_submission_queue_full_total \(sum(.submissionQueueFull))\n"
        family("http_errors_total", "counter", "Requests answered with a parse error or a timeout, by status.")
        let httpErrors: [(String, LogCounter)] = [
            ("400", .httpErrors400), ("408", .httpErrors408), ("413", .httpErrors413),
            ("414", .httpErrors414), ("431", .httpErrors431), ("other", .httpErrorsOther),
        ]
        for (status, counter) in httpErrors {
            out += "ringgate_http_errors_total{status=\"\(status)\"} \(sum(counter))\n"
        }
        // MARK: IO
        family("io_backend", "gauge", "The kernel interface the answering worker's loop runs on (io_uring, or epoll where io_uring is refused).")
        out += "ringgate_io_backend{backend=\"\(ioBackend)\"} 1\n"
        family("io_fallback", "gauge", "1 when --io auto found io_uring refused (seccomp, kernel.io_uring_disabled, RLIMIT_MEMLOCK, an old kernel) and serves on epoll; 0 otherwise, also under --io epoll.")
        out += "ringgate_io_fallback \(ioFallback ? 1 : 0)\n"
        // MARK: CLUSTER
        if isCluster {
            family("upstream_up", "gauge", "1 while the ingest's Redis connections (publisher and tail) work, 0 while Redis is unreachable.")
            out += "ringgate_upstream_up \(sum(.upstreamUp))\n"
            family("upstream_cluster_head_seq", "gauge", "The cluster's newest seq, as Redis last reported it.")
            out += "ringgate_upstream_cluster_head_seq \(sum(.upstreamClusterHeadSeq))\n"
            family("upstream_lag_events", "gauge", "The cluster's head seq minus this host's log head (0 when not behind).")
            out += "ringgate_upstream_lag_events \(sum(.upstreamLagEvents))\n"
            family("upstream_stalled", "gauge", "1 while this host is behind the cluster and its log head has not moved for the stall time (/readyz answers 503).")
            out += "ringgate_upstream_stalled \(sum(.upstreamStalled))\n"
            family("upstream_publish_seconds", "histogram", "Round trips of publish scripts to Redis.")
            var publishes: UInt64 = 0
            for bucket in LogCounter.upstreamPublishBuckets {
                publishes &+= sum(bucket.counter)
                out += "ringgate_upstream_publish_seconds_bucket{le=\"\(bucket.bound)\"} \(publishes)\n"
            }
            out += "ringgate_upstream_publish_seconds_sum \(Double(sum(.upstreamPublishSumNanoseconds)) / 1e9)\n"
            out += "ringgate_upstream_publish_seconds_count \(sum(.upstreamPublishCount))\n"
            family("upstream_queue_events", "gauge", "Events submitted to Redis and not yet answered.")
            out += "ringgate_upstream_queue_events \(gauge(.upstreamQueueEvents))\n"
            let counters: [(String, LogCounter, String)] = [
                ("reconnects_total", .upstreamReconnects, "Redis connections re-made after a failure."),
                ("gaps_total", .upstreamGaps, "Seq jumps found while tailing the stream (recorded as gaps in the log)."),
                ("gap_dropped_events_total", .upstreamGapDroppedEvents, "Seqs those gaps skipped: events this host will never hold."),
                ("divergences_total", .upstreamDivergences, "Stream entries under a seq this host holds with other contents (the host re-initialises)."),
                ("unavailable_total", .upstreamUnavailable, "Publishes answered 503 upstream_unavailable."),
                ("queue_full_total", .upstreamQueueFull, "Publishes answered 503 upstream_busy (--upstream-max-queued-events)."),
                ("entries_applied_total", .upstreamEntriesApplied, "Stream entries appended to the local log."),
                ("entries_replayed_total", .upstreamEntriesReplayed, "Stream entries this host already held, identical (skipped)."),
                ("ack_unapplied_total", .upstreamAckUnapplied, "Publishes acknowledged before the local log held them (the tail was slower than --upstream-timeout)."),
                ("reinitializations_total", .upstreamReinitializations, "Times the log was re-made for a new cluster epoch or a diverged history."),
            ]
            for (name, counter, help) in counters {
                family("upstream_\(name)", "counter", help)
                out += "ringgate_upstream_\(name) \(sum(counter))\n"
            }
        }
        return Array(out.utf8)
    }
}
