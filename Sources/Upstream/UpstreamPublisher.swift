/// The publisher thread: takes every queued job, merges them into script calls, pipelines the
/// calls on one connection and reads the replies in order.
extension UpstreamLink {
    /// Jobs merged into one EVALSHA (they share the script's one `time` argument).
    struct Call {
        var jobs: [Queued] = []
        var events = 0
        var bytes = 0
        var arguments: [[UInt8]] = []
    }

    func runPublisher() {
        var connection: RedisConnection?
        var script = ClusterScripts.Loaded(ClusterScripts.publish)
        var bump = ClusterScripts.Loaded(ClusterScripts.bump)
        var backoffNanoseconds = Self.backoffMinNanoseconds
        var failedBefore = false
        while true {
            if connection == nil {
                if monitor.withLock({ stopping }) { return }
                do throws(UpstreamError) {
                    let c = try connect(role: "publisher")
                    try script.load(on: c)
                    bump = ClusterScripts.Loaded(ClusterScripts.bump)
                    connection = c
                    backoffNanoseconds = Self.backoffMinNanoseconds
                    monitor.withLock {
                        publisherUp = true
                        publisherDown = false
                        if failedBefore { counters.add(.upstreamReconnects) }
                        updateUpLocked()
                    }
                    if failedBefore { logger.info("upstream publisher reconnected to \(settings.url.redacted)") }
                } catch {
                    publisherFailed(error, loggedBefore: failedBefore)
                    failedBefore = true
                    if backoff(&backoffNanoseconds) { return }
                    continue
                }
            }
            let c = connection!

            // Wait for work: jobs, a divergence to report, or stop.
            var batch: [Queued] = []
            var newEpoch: UInt32?
            let stop: Bool = monitor.withLock {
                while pending.isEmpty && divergenceEpoch == nil && !stopping {
                    monitor.wait(untilNanoseconds: MonotonicClock.nanoseconds() + 1_000_000_000)
                }
                batch = pending
                pending.removeAll(keepingCapacity: true)
                newEpoch = divergenceEpoch
                return stopping
            }
            var handedToPublish = false
            do throws(UpstreamError) {
                if let newEpoch {
                    try runBump(&bump, on: c, newEpoch: newEpoch)
                    monitor.withLock { divergenceEpoch = nil }
                }
                handedToPublish = true
                if !batch.isEmpty { try publish(batch, script: &script, on: c) }
            } catch {
                connection = nil
                c.close()
                if !handedToPublish {
                    // The bump failed before this batch was sent: it still gets its completions.
                    let now = MonotonicClock.nanoseconds()
                    post(batch.map { q in
                        var call = Call()
                        call.jobs = [q]
                        return call
                    }, batch.map { _ in .unavailable(error.description) }, batch.map { _ in now })
                }
                publisherFailed(error, loggedBefore: false)
                failedBefore = true
                if backoff(&backoffNanoseconds) { return }
                continue
            }
            if stop {
                c.close()
                return
            }
        }
    }

    /// Marks the publisher down and fails every queued job at once (fast 503s).
    private func publisherFailed(_ error: UpstreamError, loggedBefore: Bool) {
        if !loggedBefore { logger.warning("upstream publisher: \(error.description)") }
        monitor.withLock {
            publisherUp = false
            publisherDown = true
            publisherLastError = error.description
            failPendingLocked(error.description)
            updateUpLocked()
        }
        wake()
    }

    private func runBump(_ bump: inout ClusterScripts.Loaded, on c: RedisConnection, newEpoch: UInt32) throws(UpstreamError) {
        let keys = settings.keys
        c.setTimeout(nanoseconds: settings.timeoutNanoseconds)
        let reply = try bump.run(on: c, keys: [keys.meta, keys.seq, keys.stream],
                                 arguments: [epochHex, Array(ClusterMeta.epochHex(newEpoch).utf8)])
        logger.warning("upstream: diverged history reported; cluster epoch \(ClusterMeta.epochHex(settings.epoch)) -> \(reply.text ?? "none")")
    }

    /// One pipelined round: every call appended (with waitReplicas, then one `WAIT`), the
    /// replies read in order, each read bounded by the oldest unanswered job's deadline.
    private func publish(_ batch: [Queued], script: inout ClusterScripts.Loaded, on c: RedisConnection) throws(UpstreamError) {
        // Jobs that waited out their timeout (behind a slow connect or round) are not sent:
        // their 503 is due now, and a write after it would be a publish nobody was told of.
        let now = MonotonicClock.nanoseconds()
        let expired = batch.filter { deadline(of: $0.submittedNanoseconds) <= now }
        if !expired.isEmpty {
            let why = "Redis at \(settings.url.endpoint) did not answer within \(settings.timeoutNanoseconds / 1_000_000) ms (--upstream-timeout)"
            post(expired.map { q in
                var call = Call()
                call.jobs = [q]
                return call
            }, expired.map { _ in .unavailable(why) }, expired.map { _ in now })
        }
        let live = expired.isEmpty ? batch : batch.filter { deadline(of: $0.submittedNanoseconds) > now }
        if live.isEmpty { return }
        let calls = merge(live)
        var outcomes = [PublishOutcome?](repeating: nil, count: calls.count)
        var answeredNanoseconds = [UInt64](repeating: 0, count: calls.count)
        var lastIDs = [StreamID?](repeating: nil, count: calls.count)
        let keys = [settings.keys.stream, settings.keys.seq, settings.keys.meta]
        do throws(UpstreamError) {
            var todo = Array(calls.indices)
            let oldest = calls[0].jobs[0].submittedNanoseconds
            var waitReply: RedisReply = .null
            var waitMilliseconds: UInt64 = 0
            while !todo.isEmpty {
                let sentNanoseconds = MonotonicClock.nanoseconds()
                for i in todo { try c.append(script.evalsha(keys: keys, arguments: calls[i].arguments)) }
                if settings.waitReplicas > 0 {
                    // In the same pipeline; WAIT counts every write before it on this connection.
                    let remaining = deadline(of: oldest) &- sentNanoseconds
                    waitMilliseconds = max(1, remaining / 1_000_000 * 3 / 4)
                    try c.append(["WAIT", String(settings.waitReplicas), String(waitMilliseconds)].map { Array($0.utf8) })
                }
                var retry: [Int] = []
                for i in todo {
                    try boundRead(c, by: calls[i].jobs[0].submittedNanoseconds)
                    let reply = try c.reply()
                    let now = MonotonicClock.nanoseconds()
                    // SCRIPT FLUSH (or a restart) since the load: reload, send those calls again.
                    if case .error(let m) = reply, m.hasPrefix("NOSCRIPT") {
                        retry.append(i)
                        continue
                    }
                    outcomes[i] = outcome(of: reply)
                    lastIDs[i] = lastStreamID(of: reply)
                    answeredNanoseconds[i] = now
                }
                if settings.waitReplicas > 0 {
                    try boundRead(c, by: oldest)
                    waitReply = try c.reply()   // only the last pass's WAIT covers every call
                }
                if !retry.isEmpty { try script.load(on: c) }
                todo = retry
            }
            if settings.waitReplicas > 0 {
                let replicas: Int64 = if case .integer(let n) = waitReply { n } else { -1 }
                if replicas < Int64(settings.waitReplicas) {
                    let why = replicas < 0 ? "WAIT answered \(waitReply)"
                        : "WAIT \(settings.waitReplicas): \(replicas) replicas acknowledged within \(waitMilliseconds) ms"
                    for i in outcomes.indices {
                        if case .appended = outcomes[i] { outcomes[i] = .notReplicated(why) }
                    }
                }
            }
        } catch {
            // Unanswered calls fail; the script may still have run (a timeout is ambiguous).
            // With waitReplicas, an unanswered WAIT fails the answered calls as well.
            let now = MonotonicClock.nanoseconds()
            for i in outcomes.indices {
                if outcomes[i] == nil || settings.waitReplicas > 0 {
                    outcomes[i] = .unavailable(error.description)
                    answeredNanoseconds[i] = now
                }
            }
            post(calls, outcomes, answeredNanoseconds, lastIDs)
            throw error
        }
        post(calls, outcomes, answeredNanoseconds, lastIDs)
    }

    func post(_ calls: [Call], _ outcomes: [PublishOutcome?], _ answeredNanoseconds: [UInt64], _ lastIDs: [StreamID?] = []) {
        monitor.withLock {
            for (i, call) in calls.enumerated() {
                let outcome = outcomes[i]!
                var seq: UInt64 = if case .appended(let first) = outcome { first } else { 0 }
                for q in call.jobs {
                    let jobOutcome: PublishOutcome = seq > 0 ? .appended(firstSeq: seq) : outcome
                    if seq > 0 { seq += UInt64(q.job.events.count) }
                    completions.append(PublishCompletion(token: q.job.token, outcome: jobOutcome,
                                                         roundTripNanoseconds: answeredNanoseconds[i] &- q.submittedNanoseconds,
                                                         lastStreamID: seq > 0 && i < lastIDs.count ? lastIDs[i] : nil))
                    unansweredEvents -= q.job.events.count
                    unansweredBytes -= q.job.bytes
                }
                if seq > 0 && seq - 1 > head { setHeadLocked(seq - 1) }
            }
            counters.set(.upstreamQueueEvents, UInt64(unansweredEvents))
        }
        wake()
    }

    /// The script's second element: the stream id of the call's last entry.
    private func lastStreamID(of reply: RedisReply) -> StreamID? {
        guard case .array(let parts) = reply, parts.count == 2, case .string(let id) = parts[1] else { return nil }
        return StreamID(parsing: String(decoding: id, as: UTF8.self))
    }

    private func outcome(of reply: RedisReply) -> PublishOutcome {
        switch reply {
        case .array(let parts):
            guard parts.count == 2, case .integer(let first) = parts[0], first > 0 else {
                return .unavailable("unexpected script reply \(reply)")
            }
            return .appended(firstSeq: UInt64(first))
        case .error(let message) where message.hasPrefix("EPOCH "):
            return .epochChanged(clusterEpoch: ClusterMeta.parseEpoch(message.utf8.dropFirst(6)))
        case .error(let message):
            return .unavailable("Redis refused the publish: \(message)")
        default:
            return .unavailable("unexpected script reply \(reply)")
        }
    }

    private func deadline(of submittedNanoseconds: UInt64) -> UInt64 {
        submittedNanoseconds + settings.timeoutNanoseconds
    }

    /// The next read may take until that job's deadline (at least 1 ms), so each job is
    /// answered, or failed, within the timeout of its submission.
    private func boundRead(_ c: RedisConnection, by submittedNanoseconds: UInt64) throws(UpstreamError) {
        let now = MonotonicClock.nanoseconds()
        let end = deadline(of: submittedNanoseconds)
        guard end > now else {
            throw UpstreamError(.timeout, "Redis at \(settings.url.endpoint) did not answer within \(settings.timeoutNanoseconds / 1_000_000) ms (--upstream-timeout)")
        }
        c.setTimeout(nanoseconds: end - now)
    }

    /// Merges consecutive jobs of the same millisecond into calls of at most `callEventsMax`
    /// events / `callBytesMax` bytes; a larger job is a call by itself, never split.
    private func merge(_ batch: [Queued]) -> [Call] {
        var calls: [Call] = []
        var current = Call()
        for q in batch {
            let bytes = q.job.events.reduce(0) { $0 + $1.slot.count + $1.type.count + $1.data.count }
            let fits = current.jobs.isEmpty
                || (current.jobs[0].job.timeMilliseconds == q.job.timeMilliseconds
                    && current.events + q.job.events.count <= Self.callEventsMax
                    && current.bytes + bytes <= Self.callBytesMax)
            if !fits {
                calls.append(finish(current))
                current = Call()
            }
            current.jobs.append(q)
            current.events += q.job.events.count
            current.bytes += bytes
        }
        if !current.jobs.isEmpty { calls.append(finish(current)) }
        return calls
    }

    private func finish(_ call: Call) -> Call {
        var call = call
        var argv: [[UInt8]] = []
        argv.reserveCapacity(4 + 3 * call.events)
        argv.append(epochHex)
        argv.append(Array(String(settings.retain).utf8))
        argv.append(Array(String(call.jobs[0].job.timeMilliseconds).utf8))
        argv.append(Array(String(call.events).utf8))
        for q in call.jobs {
            for e in q.job.events {
                argv.append(e.slot)
                argv.append(e.type)
                argv.append(e.data)
            }
        }
        call.arguments = argv
        return call
    }
}
