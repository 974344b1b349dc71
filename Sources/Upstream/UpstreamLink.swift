import Glibc
import Logging
import RingLog

/// The ingest's link to the cluster: a publisher thread and a tail thread, one Redis
/// connection each. The ingest's loop talks to it only through `submit`, the two drains and the
/// wake eventfd, so the loop never blocks on Redis.
///
/// Limits: `maxQueuedEvents` events submitted and not yet answered; a tail queue of
/// `4 × tailBatch` entries or `tailQueueBytesMax` bytes (the tail thread waits while it is full,
/// so it may exceed the byte limit by one XREAD batch).
public final class UpstreamLink: @unchecked Sendable {
    let settings: UpstreamSettings
    let counters: CounterBlock
    let wakeFD: Int32
    let logger: Logger
    let monitor = Monitor()
    let epochHex: [UInt8]

    /// Largest script call the publisher makes from merged jobs (a larger job is one call).
    static let callEventsMax = 1000
    static let callBytesMax = 4 << 20
    static let tailQueueBytesMax = 64 << 20
    static let backoffMinNanoseconds: UInt64 = 100_000_000
    static let backoffMaxNanoseconds: UInt64 = 2_000_000_000
    static let headPollNanoseconds: UInt64 = 500_000_000
    static let tailBlockMilliseconds: UInt64 = 500

    // Everything below is guarded by `monitor`.
    struct Queued {
        let job: PublishJob
        let submittedNanoseconds: UInt64
    }
    var pending: [Queued] = []
    var unansweredEvents = 0
    var unansweredBytes = 0
    var completions: [PublishCompletion] = []
    var tailQueue: [TailEvent] = []
    var tailHead = 0
    var tailQueueBytes = 0
    var publisherUp = false
    var publisherDown = false
    var publisherLastError = "not connected to Redis yet"
    var tailUp = false
    var head: UInt64 = 0
    var stopping = false
    var divergenceEpoch: UInt32?
    private var threads: [LinkThread] = []

    public init(settings: UpstreamSettings, counters: CounterBlock, wakeFD: Int32, logger: Logger) {
        precondition(settings.tailBatch > 0 && settings.maxQueuedEvents > 0 && settings.retain > 0)
        self.settings = settings
        self.counters = counters
        self.wakeFD = wakeFD
        self.logger = logger
        epochHex = Array(ClusterMeta.epochHex(settings.epoch).utf8)
    }

    var tailQueueEntriesMax: Int { 4 * settings.tailBatch }

    /// Starts both threads; they connect in the background and reconnect with jittered backoff.
    public func start() {
        precondition(threads.isEmpty, "start() once")
        threads.append(LinkThread { [self] in runPublisher() })
        threads.append(LinkThread { [self] in runTail() })
    }

    /// Ends and joins both threads (within about the timeout). A divergence reported before runs
    /// its bump script first. Jobs still queued complete as `.unavailable`.
    public func stop() {
        monitor.withLock {
            stopping = true
            monitor.broadcast()
        }
        for t in threads { t.join() }
        threads.removeAll()
        let failed = monitor.withLock { () -> Bool in
            let had = !pending.isEmpty
            failPendingLocked("the link is stopping")
            return had
        }
        if failed { wake() }
    }

    /// Queues a job; false when the link already holds `maxQueuedEvents` unanswered events (then
    /// nothing is queued), or, while disconnected, that many undrained completions. While the publisher is disconnected the job completes at once as
    /// `.unavailable`.
    public func submit(_ job: PublishJob) -> Bool {
        precondition(!job.events.isEmpty, "a job holds at least one event")
        let now = MonotonicClock.nanoseconds()
        let (accepted, completedNow): (Bool, Bool) = monitor.withLock {
            guard unansweredEvents + job.events.count <= settings.maxQueuedEvents,
                  unansweredBytes + job.bytes <= settings.maxQueuedBytes || unansweredEvents == 0
            else { return (false, false) }
            if publisherDown || stopping {
                // Completions the loop has not drained count too, so a loop that stops draining
                // cannot grow this list without bound.
                guard completions.count + unansweredEvents < settings.maxQueuedEvents else { return (false, false) }
                completions.append(PublishCompletion(token: job.token, outcome: .unavailable(publisherLastError),
                                                     roundTripNanoseconds: 0))
                return (true, true)
            }
            pending.append(Queued(job: job, submittedNanoseconds: now))
            unansweredEvents += job.events.count
            unansweredBytes += job.bytes
            counters.set(.upstreamQueueEvents, UInt64(unansweredEvents))
            monitor.broadcast()
            return (true, false)
        }
        if completedNow { wake() }
        return accepted
    }

    public func drainCompletions(_ body: (PublishCompletion) -> Void) {
        let taken: [PublishCompletion] = monitor.withLock {
            let all = completions
            completions.removeAll(keepingCapacity: true)
            return all
        }
        for c in taken { body(c) }
    }

    /// Up to `maxEntries` tail events, in stream order; true when more are waiting.
    public func drainTail(maxEntries: Int, _ body: (TailEvent) -> Void) -> Bool {
        var taken: [TailEvent] = []
        let more: Bool = monitor.withLock {
            let n = min(maxEntries, tailQueue.count - tailHead)
            guard n > 0 else { return false }
            taken = Array(tailQueue[tailHead..<(tailHead + n)])
            tailHead += n
            for e in taken { if case .entry(let entry) = e { tailQueueBytes -= entry.queuedBytes } }
            if tailHead == tailQueue.count {
                tailQueue.removeAll(keepingCapacity: true)
                tailHead = 0
            } else if tailHead > tailQueue.count / 2 {
                tailQueue.removeFirst(tailHead)
                tailHead = 0
            }
            monitor.broadcast()
            return tailHead < tailQueue.count
        }
        for e in taken { body(e) }
        return more
    }

    /// On divergence: the publisher thread runs the bump script (this epoch → `newEpoch`), a
    /// compare-and-set, so two hosts that both find it make one new epoch.
    public func reportDivergence(newEpoch: UInt32) {
        monitor.withLock {
            divergenceEpoch = newEpoch
            monitor.broadcast()
        }
    }

    public var isUp: Bool { monitor.withLock { publisherUp && tailUp } }

    /// The newest seq Redis reported (polled from `NAME:seq`, and from each publish reply).
    public var clusterHeadSeq: UInt64 { monitor.withLock { head } }

    // MARK: shared by the threads (lock held where the name says so)

    func wake() {
        guard wakeFD >= 0 else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(wakeFD, $0.baseAddress, 8) }
    }

    func updateUpLocked() {
        counters.set(.upstreamUp, publisherUp && tailUp ? 1 : 0)
    }

    func setHeadLocked(_ seq: UInt64) {
        head = seq
        counters.set(.upstreamClusterHeadSeq, seq)
    }

    func failPendingLocked(_ why: String) {
        let now = MonotonicClock.nanoseconds()
        for q in pending {
            completions.append(PublishCompletion(token: q.job.token, outcome: .unavailable(why),
                                                 roundTripNanoseconds: now &- q.submittedNanoseconds))
            unansweredEvents -= q.job.events.count
            unansweredBytes -= q.job.bytes
        }
        pending.removeAll(keepingCapacity: true)
        counters.set(.upstreamQueueEvents, UInt64(unansweredEvents))
    }

    /// Waits the jittered backoff (or until stop); true when stopping.
    func backoff(_ nanoseconds: inout UInt64) -> Bool {
        var rng = SystemRandomNumberGenerator()
        let wait = nanoseconds / 2 + UInt64.random(in: 0...(nanoseconds / 2), using: &rng)
        nanoseconds = min(nanoseconds * 2, Self.backoffMaxNanoseconds)
        let deadline = MonotonicClock.nanoseconds() + wait
        return monitor.withLock {
            while !stopping && MonotonicClock.nanoseconds() < deadline {
                monitor.wait(untilNanoseconds: deadline)
            }
            return stopping
        }
    }

    func connect(role: String) throws(UpstreamError) -> RedisConnection {
        try RedisConnection(url: settings.url, timeoutNanoseconds: settings.timeoutNanoseconds,
                            name: "ringgate-\(settings.hostName)-\(role)")
    }
}
