import CRinggateSys
import GatewayCore
import IO
@preconcurrency import Glibc
import Logging
import RingLog

/// `ringgate serve`: opens the log and the listeners, spawns one ingest and N workers (each
/// inherits the descriptors it needs), restarts a dead child with backoff, and drains on
/// SIGTERM/SIGINT.
public final class Supervisor {
    public struct StartError: Error, CustomStringConvertible {
        public let description: String
        init(_ d: String) { description = d }
    }

    enum Role: Equatable {
        case ingest
        case worker(Int)
        var name: String {
            switch self {
            case .ingest: "ingest"
            case .worker(let i): "worker \(i)"
            }
        }
    }

    struct Child {
        let role: Role
        var pid: Int32 = 0
        var startedNanoseconds: UInt64 = 0
        var backoffNanoseconds: UInt64 = 100_000_000
        var restartAtNanoseconds: UInt64 = 0   // 0 = running or not scheduled
        var lastExit = ""                      // how it last ended, for messages
        // MARK: SUPERVISOR + BROWSERS
        var killedByWatchdog = false           // SIGKILLed for a stale heartbeat, not yet reaped
        var restartReason = RestartReason.crash
    }

    enum RestartReason { case crash, watchdog }

    /// Backlog of a worker listener re-created after its worker died (as `openListeners`).
    static let listenBacklog: Int32 = 4096

    /// Counters that describe a live process (gauges, liveness stamps): zeroed when the log is
    /// opened and when a child is reaped, so a dead process's values do not linger.
    static let perProcessGauges: [LogCounter] = [
        .connectionsSSE, .connectionsHTTP, .connectionsWS, .connectionsAdmin, .sendBuffersInUse, .sharedFramesInUse,
        .connectionsCatchingUp, .pendingSendBytes, .pendingBodyBytes, .responseQueueBytes,
        .heartbeatNanoseconds, .startupProgressNanoseconds, .fsyncStartedNanoseconds,
        .drainingSinceNanoseconds,
    ]

    let config: GatewayConfig
    let executable: String
    let childArguments: [String]
    let logger: Logger
    var region: LogRegion! = nil
    var counters: CounterBlock! = nil
    /// Makes the ring's pages resident ahead of the ingest's tail on its first lap, so the
    /// single writer takes no page fault, nor the zeroing of a fresh page, per 4 KiB of events.
    var pretoucher: LogPretoucher?
    var logFD: Int32 = -1
    var workerListenFDs: [Int32] = []
    var publishFD: Int32 = -1
    var wakeFDs: [Int32] = []
    var admission: SlotAdmissionTable? = nil
    var admissionFD: Int32 = -1
    var children: [Child] = []
    var subscribePort = 0
    var publishPort = 0
    /// Cluster mode: the ingest asked for the host to be re-initialised (`RoleExit.reinitialize`).
    var reinitializePending = false
    /// SIGTERM arrived while the supervisor was busy elsewhere (re-initialising).
    var terminationRequested = false

    /// `childArguments` are the serve flags every child gets (the CLI renders them from config).
    public init(config: GatewayConfig, executable: String, childArguments: [String], logger: Logger) {
        self.config = config
        self.executable = executable
        self.childArguments = childArguments
        self.logger = logger
    }

    public func run() throws -> Int32 {
        if config.io == .ioUring && Ring.disabledBySysctl() {
            throw StartError("io_uring is disabled on this host (kernel.io_uring_disabled=2); enable it with sysctl kernel.io_uring_disabled=0, or run with --io epoll (or --io auto)")
        }
        try openLog()
        try joinCluster()
        try openListeners()
        for _ in 0..<config.workers {
            let fd = rg_eventfd(0, 0)
            guard fd >= 0 else { throw StartError("eventfd failed: \(String(cString: strerror(errno)))") }
            _ = rg_clear_cloexec(fd)
            wakeFDs.append(fd)
        }
        if config.maxSubscribersPerSlot > 0 {
            guard let (fd, table) = SlotAdmissionTable.create(entries: config.admissionTableEntries, workers: config.workers) else {
                throw StartError("cannot create the slot admission table: \(String(cString: strerror(errno)))")
            }
            _ = rg_clear_cloexec(fd)
            admissionFD = fd
            admission = table
        }
        _ = rg_install_signal_flags(1)
        // The ingest first, workers once it serves: its start-up recovery scan may cut the log
        // back (a damaged record, an unfinished batch) and rewinds the directory, and a worker
        // takes its read position from `tail` when it starts. Workers running during the scan
        // would serve records that are about to be cut. (An ingest restarted after a crash
        // scans while the workers run: they never read at or past the committed `tail`, which
        // is all an unfinished batch can occupy, and a record damaged below it copies as
        // `.damaged` to them too; stopping every subscriber for that restart would cost more.)
        children.append(Child(role: .ingest))
        try spawn(0)
        try waitUntilServing()
        pretoucher = LogPretoucher(region: region)
        pretoucher?.advance()
        for i in 0..<config.workers {
            children.append(Child(role: .worker(i)))
            try spawn(children.count - 1)
        }
        try waitUntilServing()
        let data = config.ephemeral ? "memfd" : config.logPath
        print("ringgate ready subscribe=\(config.listenHost):\(subscribePort) publish=\(config.publishHost):\(publishPort) workers=\(config.workers) io=\(config.io.rawValue) data=\(data)")
        fflush(stdout)
        logger.info("serving", metadata: ["subscribe": "\(config.listenHost):\(subscribePort)",
                                          "publish": "\(config.publishHost):\(publishPort)",
                                          "epoch": "\(region.epoch)"])
        superviseUntilTerminated()
        shutdownChildren()
        return 0
    }

    // MARK: - Start-up

    func openLog() throws {
        let geometry: LogGeometry
        do {
            geometry = try LogGeometry(capacityBytes: config.logCapacityBytes, maxSlots: config.maxSlots)
        } catch {
            throw StartError("bad log geometry: \(error)")
        }
        // One format only: LogFile creates a new log with its epoch. Nothing here writes the
        // log before LogFile holds the file's lock (a second instance must change nothing).
        do {
            if config.ephemeral {
                let m = try LogFile.createEphemeral(geometry: geometry)
                logFD = m.fd
                region = try LogRegion.attach(base: m.base, length: m.length)
            } else {
                if mkdir(config.dataDir, 0o755) != 0 && errno != EEXIST {
                    throw StartError("cannot create data dir \(config.dataDir): \(String(cString: strerror(errno)))")
                }
                let m = try LogFile.openOrCreate(path: config.logPath, geometry: geometry)
                logFD = m.fd
                region = try LogRegion.attach(base: m.base, length: m.length)
                if m.created {
                    logger.info("created log", metadata: ["path": "\(config.logPath)", "epoch": "\(region.epoch)"])
                } else {
                    logger.info("opened log", metadata: ["path": "\(config.logPath)",
                                                         "head": "\(LogReader(region: region).headSeqAcquire())"])
                }
            }
        } catch let error as StartError {
            throw error
        } catch {
            throw StartError("\(error)")
        }
        // Workers size their buffers for the largest event the log may hold: the largest
        // --max-event-bytes any run has opened it with.
        region.raiseMaxEventBytes(config.maxEventBytes)
        _ = rg_clear_cloexec(logFD)
        counters = CounterBlock(region: region, process: ProcessBlock.supervisor)
        counters.set(.pid, UInt64(getpid()))
        // Gauges describe live processes: a log reopened after a crash starts them from zero.
        for block in 0..<(2 + config.workers) {
            for gauge in Supervisor.perProcessGauges {
                rg_store_relaxed_u64(region.counterPointer(process: block, counter: gauge.rawValue), 0)
            }
        }
    }

    func openListeners() throws {
        var port = config.listenPort
        // SO_REUSEPORT would let this instance join the group of another one on the same port
        // and take half its subscribers: first bind a plain socket, which fails while anyone
        // holds the port, then the group.
        if port != 0 {
            let probe = rg_listen_tcp(config.listenHost, Int32(port), 1, 0)
            guard probe >= 0 else {
                let code = errno
                throw StartError("cannot listen on \(config.listenHost):\(port) (--listen): \(String(cString: strerror(code)))"
                    + (code == EADDRINUSE ? "; another process (another ringgate?) holds the port" : ""))
            }
            close(probe)
        }
        for i in 0..<config.workers {
            let fd = rg_listen_tcp(config.listenHost, Int32(port), 4096, 1)
            guard fd >= 0 else {
                throw StartError("cannot listen on \(config.listenHost):\(port) (--listen): \(String(cString: strerror(errno)))")
            }
            if i == 0 { port = Int(rg_local_port(fd)) }
            _ = rg_clear_cloexec(fd)
            workerListenFDs.append(fd)
        }
        subscribePort = port
        publishFD = rg_listen_tcp(config.publishHost, Int32(config.publishPort), 1024, 0)
        guard publishFD >= 0 else {
            throw StartError("cannot listen on \(config.publishHost):\(config.publishPort) (--publish-listen): \(String(cString: strerror(errno)))")
        }
        publishPort = Int(rg_local_port(publishFD))
        _ = rg_clear_cloexec(publishFD)
    }

    func arguments(for role: Role) -> [String] {
        switch role {
        case .ingest:
            return [executable, "ingest"] + childArguments + [
                "--log-fd", "\(logFD)", "--listen-fd", "\(publishFD)",
                "--wake-fds", wakeFDs.map(String.init).joined(separator: ","),
            ]
        case .worker(let i):
            return [executable, "worker", "--index", "\(i)"] + childArguments + [
                "--log-fd", "\(logFD)", "--listen-fd", "\(workerListenFDs[i])", "--wake-fd", "\(wakeFDs[i])",
            ] + (admissionFD >= 0 ? ["--admission-fd", "\(admissionFD)"] : [])
        }
    }

    func spawn(_ i: Int) throws {
        if case .worker(let w) = children[i].role, workerListenFDs[w] < 0 { try reopenListener(worker: w) }
        let args = arguments(for: children[i].role)
        var cArgs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        var pid: Int32 = 0
        guard rg_spawn(executable, cArgs, &pid) == 0 else {
            throw StartError("cannot start \(children[i].role.name) (\(executable)): \(String(cString: strerror(errno)))")
        }
        children[i].pid = pid
        children[i].startedNanoseconds = rg_monotonic_ns()
        children[i].restartAtNanoseconds = 0
        children[i].killedByWatchdog = false
        logger.debug("started \(children[i].role.name)", metadata: ["pid": "\(pid)"])
    }

    func block(of role: Role) -> Int {
        switch role {
        case .ingest: ProcessBlock.ingest
        case .worker(let i): ProcessBlock.worker(i)
        }
    }

    /// Waits until every child spawned so far has run its loop once (its heartbeat counter
    /// moved), so that a client who reads the ready line is served at once. A child that is
    /// still starting is given time while it makes progress (`ChildLiveness`: the ingest's
    /// recovery scan of a large log), not a fixed deadline.
    /// `chosen`: the children waited for (re-initialising starts the ingest alone first).
    func waitUntilServing(_ chosen: (Child) -> Bool = { _ in true }) throws {
        while true {
            reap(shuttingDown: false)
            // A child that dies before it ever served cannot be fixed by restarting it (no
            // io_uring, a bad descriptor): fail now, with the child's own message above.
            if let dead = children.first(where: { $0.pid == 0 && chosen($0) }) {
                shutdownChildren()
                throw StartError("\(dead.role.name) exited during start-up (\(dead.lastExit)); its message is above")
            }
            var up = true
            let now = rg_monotonic_ns()
            for child in children where chosen(child) && stamps(of: child.role).heartbeatNanoseconds == 0 {
                up = false
                let verdict = ChildLiveness.judge(nowNanoseconds: now, startedNanoseconds: child.startedNanoseconds,
                                                  stamps: stamps(of: child.role),
                                                  watchdogTimeoutNanoseconds: config.watchdogTimeoutNanoseconds)
                if let message = ChildLiveness.message(verdict, child: child.role.name, pid: child.pid,
                                                       watchdogTimeoutNanoseconds: config.watchdogTimeoutNanoseconds) {
                    shutdownChildren()
                    throw StartError("\(message); see the messages above")
                }
            }
            if up { return }
            if rg_signal_take() & Int32(RG_SIG_TERM) != 0 {
                shutdownChildren()
                exit(0)
            }
            usleep(10_000)
        }
    }

    /// The liveness stamps a child keeps in its counter block.
    func stamps(of role: Role) -> ChildLiveness.Stamps {
        func load(_ counter: LogCounter) -> UInt64 {
            region.loadCounterRelaxed(counter, process: block(of: role))
        }
        // The fdatasync stamp before the heartbeat: the ingest stamps its heartbeat before it
        // clears the fdatasync stamp, so a flush that just ended is seen either as still in
        // progress or with a fresh heartbeat.
        let fsyncStarted = load(.fsyncStartedNanoseconds)
        rg_fence_acquire()
        return ChildLiveness.Stamps(heartbeatNanoseconds: load(.heartbeatNanoseconds),
                                    startupProgressNanoseconds: load(.startupProgressNanoseconds),
                                    fsyncStartedNanoseconds: fsyncStarted)
    }

    // MARK: - Supervision

    /// Supervises until SIGTERM has drained the host, or SIGINT (or a second SIGTERM) stops it.
    ///
    /// The drain: from the SIGTERM, `/readyz` answers 503 in every worker (they read
    /// `drainingSinceNanoseconds`), so the load balancer takes the host out, while every stream
    /// and publish goes on for `--drain-delay`; then the children are stopped as usual.
    func superviseUntilTerminated() {
        var drainEndNanoseconds: UInt64 = 0   // 0 while not draining
        while true {
            if terminationRequested { return }
            let signals = rg_signal_take()
            if signals & Int32(RG_SIG_TERM) != 0 {
                let delay = config.drainDelayNanoseconds
                if drainEndNanoseconds != 0 || signals & Int32(RG_SIG_INT) != 0 || delay == 0 { return }
                let now = rg_monotonic_ns()
                drainEndNanoseconds = now + delay
                counters.set(.drainingSinceNanoseconds, now)
                logger.notice("draining: /readyz answers 503; streams close in \(delay / 1_000_000) ms (SIGINT or a second SIGTERM stops at once)")
            }
            if drainEndNanoseconds != 0 && rg_monotonic_ns() >= drainEndNanoseconds { return }
            reap(shuttingDown: false)
            if reinitializePending {
                if drainEndNanoseconds != 0 { return }   // stopping anyway: nothing to re-make
                reinitializeHost()
                continue
            }
            closeDeadListeners()
            let now = rg_monotonic_ns()
            counters.set(.heartbeatNanoseconds, now)
            pretoucher?.advance()
            killHungChildren(now: now)
            for i in children.indices where children[i].pid == 0 && children[i].restartAtNanoseconds != 0
                && now >= children[i].restartAtNanoseconds {
                do {
                    try spawn(i)
                    let ingest = children[i].role == .ingest
                    switch children[i].restartReason {
                    case .crash: counters.add(ingest ? .restartsIngest : .restartsWorker)
                    case .watchdog: counters.add(ingest ? .restartsIngestWatchdog : .restartsWorkerWatchdog)
                    }
                    logger.warning("restarted \(children[i].role.name)", metadata: ["pid": "\(children[i].pid)"])
                } catch {
                    logger.error("\(error)")
                    children[i].restartAtNanoseconds = now + children[i].backoffNanoseconds
                }
            }
            pause(now: now, until: drainEndNanoseconds)
        }
    }

    /// Longest sleep of the supervision loop: the watchdog's resolution (its timeouts are
    /// seconds). SIGCHLD and SIGTERM end a sleep early (`nanosleep` is never restarted after
    /// a handler ran), so a crash is reaped, and a restart begins, within a pass.
    static let supervisionPassNanoseconds: UInt64 = 100_000_000

    /// Sleeps until the next pass is due: a due restart or the drain's end may come sooner.
    /// An idle host costs a wake-up per pass, not one every 20 ms.
    func pause(now: UInt64, until drainEnd: UInt64) {
        var wake = now + Self.supervisionPassNanoseconds
        if drainEnd != 0 { wake = min(wake, drainEnd) }
        for child in children where child.pid == 0 && child.restartAtNanoseconds != 0 {
            wake = min(wake, child.restartAtNanoseconds)
        }
        let nanoseconds = max(wake > now ? wake - now : 0, 1_000_000)
        usleep(UInt32(nanoseconds / 1000))
    }

    func reap(shuttingDown: Bool) {
        var status: Int32 = 0
        while true {
            let pid = rg_waitpid_nohang(&status)
            guard pid > 0 else { return }
            guard let i = children.firstIndex(where: { $0.pid == pid }) else { continue }
            let how = rg_wifsignaled(status) != 0 ? "signal \(rg_wtermsig(status))" : "status \(rg_wexitstatus(status))"
            children[i].pid = 0
            children[i].lastExit = how
            children[i].restartReason = children[i].killedByWatchdog ? .watchdog : .crash
            children[i].killedByWatchdog = false
            guard !shuttingDown else { continue }
            if children[i].role == .ingest && config.isCluster && rg_wifsignaled(status) == 0
                && rg_wexitstatus(status) == RoleExit.reinitialize {
                // Not a crash: the log must be re-made before anything starts again.
                logger.warning("the ingest asked for the host to be re-initialised for the cluster")
                reinitializePending = true
                for gauge in Supervisor.perProcessGauges {
                    rg_store_relaxed_u64(region.counterPointer(process: block(of: children[i].role), counter: gauge.rawValue), 0)
                }
                continue
            }
            let now = rg_monotonic_ns()
            let lived = now &- children[i].startedNanoseconds
            if lived > 10_000_000_000 { children[i].backoffNanoseconds = 100_000_000 }
            children[i].restartAtNanoseconds = now + children[i].backoffNanoseconds
            logger.error("\(children[i].role.name) exited (\(how)); restarting in \(children[i].backoffNanoseconds / 1_000_000) ms")
            children[i].backoffNanoseconds = min(children[i].backoffNanoseconds * 2, 5_000_000_000)
            // A crashed child's gauges and admission counts would otherwise stay as they were.
            if case .worker(let w) = children[i].role, let admission {
                let released = admission.clear(worker: w)
                if released > 0 {
                    logger.warning("released \(released) slot admission entries that \(children[i].role.name) was claiming when it died")
                }
            }
            for gauge in Supervisor.perProcessGauges {
                rg_store_relaxed_u64(region.counterPointer(process: block(of: children[i].role), counter: gauge.rawValue), 0)
            }
        }
    }

    // MARK: SUPERVISOR + BROWSERS

    /// The liveness watchdog. Every child stamps its heartbeat once per loop turn, and an idle
    /// loop still turns on its 100 ms tick, so a heartbeat older than `--watchdog-timeout`
    /// means the loop is wedged (a handler that never returns, a stopped process). Waiting for
    /// it to exit would wait forever: kill it, and the reap path restarts it like a crash.
    ///
    /// Before its first turn a child is starting up (mapping the log, the ingest's recovery
    /// scan), judged by its start-up progress instead; an ingest inside a blocking fdatasync
    /// gets a longer limit (see `ChildLiveness`).
    func killHungChildren(now: UInt64) {
        // With --watchdog-timeout 0 `judge` still applies the start-up limits (a restarted
        // child hung before its first turn is killed); only a serving loop is not judged.
        let timeout = config.watchdogTimeoutNanoseconds
        for i in children.indices where children[i].pid > 0 && !children[i].killedByWatchdog {
            let verdict = ChildLiveness.judge(nowNanoseconds: now, startedNanoseconds: children[i].startedNanoseconds,
                                              stamps: stamps(of: children[i].role), watchdogTimeoutNanoseconds: timeout)
            guard let message = ChildLiveness.message(verdict, child: children[i].role.name, pid: children[i].pid,
                                                      watchdogTimeoutNanoseconds: timeout) else { continue }
            logger.error("\(message); killing it")
            kill(children[i].pid, SIGKILL)   // also ends a stopped process; reaped without blocking
            children[i].killedByWatchdog = true
        }
    }

    /// A dead worker's listener is still in the SO_REUSEPORT group, so the kernel keeps
    /// routing about 1/N of new connections into a backlog nobody accepts until the restart
    /// (up to the 5 s backoff). While another worker serves, stop it: connections already in
    /// that backlog are reset and their clients retry onto a live listener; `spawn` opens a
    /// new one. With no worker alive, a backlog that waits for the restart beats a refusal.
    ///
    /// `shutdown` before `close`: every child inherited this descriptor, so closing only
    /// ours would leave the socket listening, orphaned, in the group. Shutting it down stops
    /// the socket itself, whoever holds it.
    func closeDeadListeners() {
        let anyWorkerAlive = children.contains { child in
            if case .worker = child.role { return child.pid > 0 }
            return false
        }
        guard anyWorkerAlive else { return }
        for child in children where child.pid == 0 {
            guard case .worker(let w) = child.role, workerListenFDs[w] >= 0 else { continue }
            _ = rg_shutdown(workerListenFDs[w], Int32(SHUT_RDWR))
            _ = close(workerListenFDs[w])
            workerListenFDs[w] = -1
            counters.add(.listenersClosed)
            logger.info("closed the listener of \(child.role.name) until it restarts")
        }
    }

    /// A new listener in the same SO_REUSEPORT group for a worker about to be respawned.
    func reopenListener(worker w: Int) throws {
        let fd = rg_listen_tcp(config.listenHost, Int32(subscribePort), Self.listenBacklog, 1)
        guard fd >= 0 else {
            throw StartError("cannot listen again on \(config.listenHost):\(subscribePort) for worker \(w): \(String(cString: strerror(errno)))")
        }
        _ = rg_clear_cloexec(fd)
        workerListenFDs[w] = fd
    }

    /// SIGTERM to every child; workers send `event: close` and exit. Whatever is still running
    /// after 4.5 s is killed, so the whole shutdown stays within 5 s.
    func shutdownChildren() {
        logger.info("shutting down")
        // Every child drains on its own: workers send their close events, the ingest answers
        // the publishes in flight.
        for child in children where child.pid > 0 { kill(child.pid, SIGTERM) }
        let deadline = rg_monotonic_ns() + 4_500_000_000
        while children.contains(where: { $0.pid > 0 }) && rg_monotonic_ns() < deadline {
            reap(shuttingDown: true)
            usleep(10_000)
        }
        for child in children where child.pid > 0 {
            logger.warning("\(child.role.name) did not stop in time; killing it")
            kill(child.pid, SIGKILL)
        }
        reap(shuttingDown: true)
    }
}
