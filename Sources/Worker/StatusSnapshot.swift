import RingLog
import WireProtocol

/// One frame of the status page's stats stream (`GET /v1/status/stream`): the host's counters,
/// summed over its processes as `/metrics` sums them, as one JSON object. Totals, not rates: the
/// page divides the difference of two frames by the time between them.
struct StatusSnapshot {
    let region: LogRegion
    let reader: LogReader
    let workers: Int
    let ioBackend: String
    let isCluster: Bool
    /// Slots listed with their newest seq (the ones with the newest events).
    static let slotsShown = 20
    /// A child whose loop has not turned this long is shown as not turning.
    static let staleNanoseconds: UInt64 = 3_000_000_000

    init(region: LogRegion, workers: Int, ioBackend: String, isCluster: Bool) {
        self.region = region
        reader = LogReader(region: region)
        self.workers = workers
        self.ioBackend = ioBackend
        self.isCluster = isCluster
    }

    func json(nowNanoseconds: UInt64, wallMilliseconds: UInt64) -> [UInt8] {
        let processes = 0..<(2 + workers)
        func sum(_ c: LogCounter) -> UInt64 { region.counterSum(c, processes: processes) }
        func gauge(_ c: LogCounter) -> Int64 { Int64(bitPattern: sum(c)) }
        var w = JSONWriter(capacity: 2048)
        func object(_ key: String, _ pairs: [(String, UInt64)]) {
            w.appendRaw(",\"\(key)\":{")
            for (i, (name, value)) in pairs.enumerated() {
                if i > 0 { w.appendRaw(",") }
                w.appendString(name)
                w.appendRaw(":")
                w.appendInt(value)
            }
            w.appendRaw("}")
        }
        w.appendRaw("{\"time\":")
        w.appendInt(wallMilliseconds)
        w.appendRaw(",\"io\":")
        w.appendString(ioBackend)
        w.appendRaw(",\"cluster\":")
        w.appendBool(isCluster)
        w.appendRaw(",\"draining\":")
        w.appendBool(sum(.drainingSinceNanoseconds) != 0)
        w.appendRaw(",\"connections\":{\"sse\":")
        w.appendInt(gauge(.connectionsSSE))
        w.appendRaw(",\"ws\":")
        w.appendInt(gauge(.connectionsWS))
        w.appendRaw(",\"http\":")
        w.appendInt(gauge(.connectionsHTTP))
        w.appendRaw("}")
        object("delivered", [("sse", sum(.eventsDeliveredSSE)), ("ws", sum(.eventsDeliveredWS))])
        w.appendRaw(",\"published\":")
        w.appendInt(sum(.eventsAppended))
        w.appendRaw(",\"history_requests\":")
        w.appendInt(sum(.historyRequests))
        object("disconnects", MetricsRenderer.disconnectReasons.map { ($0.0, sum($0.1)) })
        var resets: [(String, UInt64)] = [("lapped", sum(.resetsLapped)), ("epoch", sum(.resetsEpoch)),
                                          ("damaged", sum(.resetsDamaged))]
        if isCluster { resets.append(("gap", sum(.resetsGap))) }
        object("resets", resets)
        object("restarts", [
            ("worker_crash", sum(.restartsWorker)), ("worker_watchdog", sum(.restartsWorkerWatchdog)),
            ("ingest_crash", sum(.restartsIngest)), ("ingest_watchdog", sum(.restartsIngestWatchdog)),
        ])
        // MARK: log
        let capacity = UInt64(region.geometry.capacityBytes)
        let used = min(capacity, reader.tailAcquire() &- min(reader.tailAcquire(), reader.oldestPositionAcquire()))
        w.appendRaw(",\"log\":{\"head_seq\":")
        w.appendInt(reader.headSeqAcquire())
        w.appendRaw(",\"oldest_seq\":")
        w.appendInt(reader.oldestSeqAcquire())
        w.appendRaw(",\"capacity_bytes\":")
        w.appendInt(capacity)
        w.appendRaw(",\"used_bytes\":")
        w.appendInt(used)
        w.appendRaw(",\"slots\":")
        w.appendInt(reader.liveSlotsAcquire())
        w.appendRaw("}")
        // MARK: slots
        w.appendRaw(",\"slots\":[")
        for (i, slot) in reader.newestSlots(limit: Self.slotsShown).enumerated() {
            if i > 0 { w.appendRaw(",") }
            w.appendRaw("{\"name\":")
            w.appendString(slot.name)
            w.appendRaw(",\"head_seq\":")
            w.appendInt(slot.newestSeq)
            w.appendRaw(",\"count\":")
            w.appendInt(slot.count)
            w.appendRaw("}")
        }
        w.appendRaw("]")
        // MARK: processes: pid and how long ago its loop last turned (the watchdog's stamp)
        w.appendRaw(",\"processes\":[")
        for process in processes {
            if process > processes.lowerBound { w.appendRaw(",") }
            let role = process == ProcessBlock.supervisor ? "supervisor" : process == ProcessBlock.ingest ? "ingest" : "worker"
            let pid = region.loadCounterRelaxed(.pid, process: process)
            let beat = region.loadCounterRelaxed(.heartbeatNanoseconds, process: process)
            w.appendRaw("{\"role\":")
            w.appendString(role)
            if role == "worker" {
                w.appendRaw(",\"index\":")
                w.appendInt(process - 2)
            }
            w.appendRaw(",\"pid\":")
            w.appendInt(pid)
            // Another process may have stamped after `nowNanoseconds` was read: age 0, not negative.
            let age = beat == 0 ? nil : (beat > nowNanoseconds ? 0 : nowNanoseconds - beat)
            w.appendRaw(",\"loop_age_ms\":")
            if let age { w.appendInt(age / 1_000_000) } else { w.appendNull() }
            w.appendRaw(",\"turning\":")
            w.appendBool(role == "supervisor" || (age.map { $0 < Self.staleNanoseconds } ?? false))
            w.appendRaw("}")
        }
        w.appendRaw("]}")
        return w.bytes
    }
}
