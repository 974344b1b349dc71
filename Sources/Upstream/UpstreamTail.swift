import CHiredis

/// The tail thread: XREAD BLOCK from the cursor into the bounded tail queue, and the meta poll
/// (the cluster epoch and head seq) every `headPollNanoseconds`.
extension UpstreamLink {
    func runTail() {
        var connection: RedisConnection?
        var cursor = settings.cursor
        var backoffNanoseconds = Self.backoffMinNanoseconds
        var failedBefore = false
        var lastPollNanoseconds: UInt64 = 0
        var epochReported = false
        let blockNanoseconds = Self.tailBlockMilliseconds * 1_000_000
        let xreadHead: [[UInt8]] = ["XREAD", "COUNT", String(settings.tailBatch), "BLOCK",
                                    String(Self.tailBlockMilliseconds), "STREAMS", settings.keys.stream].map { Array($0.utf8) }
        while true {
            if monitor.withLock({ stopping }) { break }
            if connection == nil {
                do throws(UpstreamError) {
                    connection = try connect(role: "tail")
                    backoffNanoseconds = Self.backoffMinNanoseconds
                    lastPollNanoseconds = 0
                    monitor.withLock {
                        tailUp = true
                        if failedBefore { counters.add(.upstreamReconnects) }
                        updateUpLocked()
                    }
                    if failedBefore { logger.info("upstream tail reconnected to \(settings.url.redacted); resuming after \(cursor)") }
                } catch {
                    tailFailed(error, loggedBefore: failedBefore)
                    failedBefore = true
                    if backoff(&backoffNanoseconds) { break }
                    continue
                }
            }
            let c = connection!
            do throws(UpstreamError) {
                let now = MonotonicClock.nanoseconds()
                if now &- lastPollNanoseconds >= Self.headPollNanoseconds {
                    lastPollNanoseconds = now
                    c.setTimeout(nanoseconds: settings.timeoutNanoseconds)
                    let epoch = try pollMeta(c)
                    if !epochReported && epoch != settings.epoch {
                        epochReported = true
                        post(.epochChanged(clusterEpoch: epoch), bytes: 0)
                        logger.warning("upstream: cluster epoch is now \(epoch.map(ClusterMeta.epochHex) ?? "none"), this host's is \(ClusterMeta.epochHex(settings.epoch)); tail stopped")
                    }
                }
                if epochReported {
                    // Nothing more to tail in this epoch: keep polling the head until stopped.
                    monitor.withLock {
                        if !stopping { monitor.wait(untilNanoseconds: MonotonicClock.nanoseconds() + Self.headPollNanoseconds) }
                    }
                    continue
                }
                if !waitForRoom() { break }
                c.setTimeout(nanoseconds: blockNanoseconds + settings.timeoutNanoseconds)
                try c.append(xreadHead + [Array(cursor.description.utf8)])
                let decoded: [TailEvent]? = try c.withReply { raw throws(UpstreamError) in
                    if raw.pointee.type == REDIS_REPLY_ERROR, case .error(let message) = RedisReply(hiredis: raw) {
                        throw UpstreamError(.server, "Redis at \(settings.url.endpoint) refused XREAD on \(settings.keys.stream): \(message)")
                    }
                    return TailDecoding.events(ofXRead: raw)
                }
                guard let events = decoded else {
                    throw UpstreamError(.protocolError, "Redis at \(settings.url.endpoint): XREAD answered an unexpected shape")
                }
                if events.isEmpty { continue }
                var bytes = 0
                for event in events {
                    switch event {
                    case .entry(let entry):
                        cursor = entry.id
                        bytes += entry.queuedBytes
                    case .malformed(let id, _, _):
                        cursor = id
                    case .epochChanged:
                        break
                    }
                }
                post(events, bytes: bytes)
            } catch {
                connection = nil
                c.close()
                tailFailed(error, loggedBefore: false)
                failedBefore = true
                if backoff(&backoffNanoseconds) { break }
            }
        }
        connection?.close()
    }

    /// `HGET meta epoch` and `GET seq`, pipelined. Returns the cluster epoch (nil: no hash).
    private func pollMeta(_ c: RedisConnection) throws(UpstreamError) -> UInt32? {
        try c.append(["HGET", settings.keys.meta, "epoch"].map { Array($0.utf8) })
        try c.append(["GET", settings.keys.seq].map { Array($0.utf8) })
        let epochReply = try c.reply()
        let seqReply = try c.reply()
        let epoch: UInt32?
        switch epochReply {
        case .string(let bytes): epoch = ClusterMeta.parseEpoch(bytes)
        case .null: epoch = nil
        default: throw UpstreamError(.server, "Redis at \(settings.url.endpoint): HGET \(settings.keys.meta) epoch answered \(epochReply)")
        }
        let seq: UInt64
        switch seqReply {
        case .string(let bytes): seq = StreamID.decimal(bytes) ?? 0
        case .null: seq = 0
        default: throw UpstreamError(.server, "Redis at \(settings.url.endpoint): GET \(settings.keys.seq) answered \(seqReply)")
        }
        monitor.withLock { setHeadLocked(seq) }
        return epoch
    }

    /// Waits while the tail queue cannot take one more XREAD batch; false when stopping.
    private func waitForRoom() -> Bool {
        monitor.withLock {
            while !stopping
                && (tailQueue.count - tailHead + settings.tailBatch > tailQueueEntriesMax || tailQueueBytes >= Self.tailQueueBytesMax)
            {
                monitor.wait(untilNanoseconds: MonotonicClock.nanoseconds() + Self.headPollNanoseconds)
            }
            return !stopping
        }
    }

    private func post(_ event: TailEvent, bytes: Int) { post([event], bytes: bytes) }

    private func post(_ events: [TailEvent], bytes: Int) {
        monitor.withLock {
            tailQueue.append(contentsOf: events)
            tailQueueBytes += bytes
        }
        wake()
    }

    private func tailFailed(_ error: UpstreamError, loggedBefore: Bool) {
        if !loggedBefore { logger.warning("upstream tail: \(error.description)") }
        monitor.withLock {
            tailUp = false
            updateUpLocked()
        }
    }
}
