import CRinggateSys
import GatewayCore
@preconcurrency import Glibc
import Logging
import RingLog
import Upstream

/// Cluster mode in the supervisor: the start-up checks against Redis, the cluster epoch, and
/// re-initialising the host when the ingest finds its log no longer matches the cluster.
extension Supervisor {
    /// Redis reachable with these credentials, the cluster's epoch (made once, by whichever
    /// host comes first), and a log of that epoch: a log of another epoch (a first start, a
    /// single-host log, Redis wiped since) is re-made empty, to be filled from the stream.
    /// Throws a message naming the problem; nothing is served on a cluster that cannot work.
    func joinCluster() throws {
        guard let text = config.upstream else { return }
        let url: UpstreamURL
        do {
            url = try UpstreamURL.parse(text, passwordFromEnvironment: Supervisor.environment("RINGGATE_UPSTREAM_PASSWORD"))
        } catch {
            throw StartError("--upstream: \(error)")
        }
        let meta: (epoch: UInt32, start: StreamID)
        do {
            let connection = try RedisConnection(url: url, timeoutNanoseconds: config.upstreamTimeoutNanoseconds,
                                                 name: "ringgate-supervisor-\(getpid())")
            defer { connection.close() }
            meta = try ClusterMeta.ensureEpoch(connection, keys: ClusterKeys(key: url.key),
                                               random: { UInt32.random(in: 1...UInt32.max) })
        } catch {
            throw StartError("\(error)")
        }
        let logEpoch = region.epoch
        guard logEpoch != meta.epoch else {
            logger.info("joined the cluster", metadata: ["upstream": "\(url.redacted)", "epoch": "\(Supervisor.hex(meta.epoch))"])
            return
        }
        do {
            try LogFile.reinitialize(region: region, fd: logFD, epoch: meta.epoch,
                                     upstreamCursor: (meta.start.milliseconds, meta.start.sequence))
        } catch {
            throw StartError("cannot re-initialise the log for cluster epoch \(Supervisor.hex(meta.epoch)): \(error)")
        }
        logger.warning("re-initialised the log for the cluster: its epoch was \(Supervisor.hex(logEpoch)), the cluster's is \(Supervisor.hex(meta.epoch)); it fills from the stream after \(meta.start)",
                       metadata: ["upstream": "\(url.redacted)"])
    }

    /// After the ingest exited with `RoleExit.reinitialize`: stop the workers (their streams
    /// end with `event: close`; clients reconnect and are told `reset`), re-make the log for
    /// the cluster's epoch (waiting, with backoff, while Redis is unreachable), then start the
    /// ingest and the workers as at start-up.
    func reinitializeHost() {
        reinitializePending = false
        logger.warning("re-initialising this host for the cluster: stopping its workers")
        for child in children where child.pid > 0 { kill(child.pid, SIGTERM) }
        let deadline = rg_monotonic_ns() + 4_500_000_000
        while children.contains(where: { $0.pid > 0 }) && rg_monotonic_ns() < deadline {
            reap(shuttingDown: true)
            usleep(10_000)
        }
        for child in children where child.pid > 0 { kill(child.pid, SIGKILL) }
        reap(shuttingDown: true)
        for i in children.indices {
            children[i].restartAtNanoseconds = 0
            children[i].backoffNanoseconds = 100_000_000
            // As after a crash: a stopped process's gauges (its heartbeat included, which the
            // start-up wait reads) and admission counts must not outlive it.
            for gauge in Supervisor.perProcessGauges {
                rg_store_relaxed_u64(region.counterPointer(process: block(of: children[i].role), counter: gauge.rawValue), 0)
            }
            if case .worker(let w) = children[i].role, let admission { _ = admission.clear(worker: w) }
        }
        var backoffNanoseconds: UInt64 = 100_000_000
        while true {
            if rg_signal_take() & Int32(RG_SIG_TERM) != 0 {
                terminationRequested = true
                return
            }
            do {
                try joinCluster()
                break
            } catch {
                logger.error("\(error); trying again in \(backoffNanoseconds / 1_000_000) ms")
                usleep(UInt32(backoffNanoseconds / 1000))
                backoffNanoseconds = min(backoffNanoseconds * 2, 5_000_000_000)
            }
        }
        counters.add(.upstreamReinitializations)
        do {
            for i in children.indices where children[i].role == .ingest { try spawn(i) }
            try waitUntilServing { $0.role == .ingest }
            for i in children.indices where children[i].role != .ingest { try spawn(i) }
            try waitUntilServing()
            logger.warning("host re-initialised", metadata: ["epoch": "\(Supervisor.hex(region.epoch))"])
        } catch {
            // waitUntilServing stopped everything: restart it all through the usual backoff.
            logger.error("\(error)")
            let now = rg_monotonic_ns()
            for i in children.indices where children[i].pid == 0 { children[i].restartAtNanoseconds = now + 100_000_000 }
        }
    }

    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    static func hex(_ epoch: UInt32) -> String {
        let digits = String(epoch, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
