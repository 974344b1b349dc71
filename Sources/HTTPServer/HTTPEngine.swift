import IO
import Glibc
import Logging
import RingLog
import StreamPolicy
import WireProtocol

/// What a role does with requests and the loop's other events. Called on the loop's thread.
public protocol HTTPEngineDelegate: AnyObject {
    /// A complete request. The delegate answers with `respond`, defers the answer with
    /// `deferAnswer` (it comes in a later turn) or turns the connection into a stream with
    /// `startStream`.
    func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32)
    /// A stream connection's send buffer has room again (a send completed or a buffer freed).
    func engine(_ engine: HTTPEngine, streamWritable connection: Int32)
    /// Bytes a stream connection that asked for its input (`startStream(wantsInput:)`) received.
    func engine(_ engine: HTTPEngine, streamInput bytes: UnsafeRawBufferPointer, connection: Int32)
    /// A stream connection is gone; its table entry is about to be reused.
    func engine(_ engine: HTTPEngine, streamClosed connection: Int32)
    /// The wake descriptor fired: the log has new records.
    func engineWake(_ engine: HTTPEngine)
    /// Called every tick with the monotonic time.
    func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64)
    /// Called once per loop turn, after all completions of the turn were handled.
    func engineTurnEnd(_ engine: HTTPEngine)
    /// Whether one more connection may be admitted (a host-wide limit); the table's own
    /// capacity is checked by the engine.
    func engineAdmits(_ engine: HTTPEngine) -> Bool
    /// The head of a request whose body is still to come (only with
    /// `Configuration.reportsHeadBeforeBody`). Return false to refuse it before any of the body
    /// is buffered, after answering with `respondError(..., close: true)`.
    func engine(_ engine: HTTPEngine, acceptsHead request: HTTPRequest, contentLength: Int?, connection: Int32) -> Bool
}

extension HTTPEngineDelegate {
    public func engineAdmits(_ engine: HTTPEngine) -> Bool { true }
    public func engine(_ engine: HTTPEngine, acceptsHead request: HTTPRequest, contentLength: Int?,
                       connection: Int32) -> Bool { true }
    public func engine(_ engine: HTTPEngine, streamInput bytes: UnsafeRawBufferPointer, connection: Int32) {}
}

/// A single-threaded HTTP/1.1 server loop on an `IOBackend` (io_uring, epoll, or the
/// simulation's): multishot accept on one listener, multishot receive into pooled buffers, sends
/// from per-connection buffers, and timers inside the loop, so a send that never completes
/// cannot starve a deadline. It calls the kernel and the clock only through the backend.
///
/// Every connection lives in a fixed table sized at start-up; nothing grows per connection
/// beyond a bounded response queue and one pooled send buffer while bytes are pending.
public final class HTTPEngine {
    public struct Configuration: Sendable {
        public var maxConnections: Int
        public var headerTimeoutNanoseconds: UInt64
        public var keepAliveIdleNanoseconds: UInt64 = 60_000_000_000
        public var lingerNanoseconds: UInt64 = 2_000_000_000
        public var tickNanoseconds: UInt64 = 100_000_000
        public var limits: HTTPLimits
        public var sendBufferBytes: Int
        public var sendBufferCount: Int
        /// Close a connection whose peer acknowledges nothing this long while data waits.
        public var sendTimeoutNanoseconds: UInt64 = 10_000_000_000
        /// How often the send-progress check reads the kernel's counters.
        public var progressCheckNanoseconds: UInt64 = 500_000_000
        public var userTimeoutMilliseconds: UInt32 = 0
        public var keepaliveIdleSeconds: Int32 = 0
        public var keepaliveIntervalSeconds: Int32 = 0
        public var keepaliveCount: Int32 = 0
        var socketOptions: AcceptedSocketOptions {
            var o = AcceptedSocketOptions()
            o.userTimeoutMilliseconds = userTimeoutMilliseconds
            o.keepaliveIdleSeconds = keepaliveIdleSeconds
            o.keepaliveIntervalSeconds = keepaliveIntervalSeconds
            o.keepaliveCount = keepaliveCount
            return o
        }
        // MARK: HTTP limits (issue 10, items 7-11)
        /// Requests a connection may have read whose answers are not completely sent yet
        /// before its input is paused (an answer counts as sent once the send holding it is).
        public var maxPipelinedRequests: Int = 32
        /// Response bytes a connection may have queued before its input is paused.
        public var maxResponseQueueBytes: Int = 4 << 20
        /// Body bytes buffered across all connections of this loop; a body that would exceed it
        /// gets 503 before it is read.
        public var maxPendingBodyBytes: Int = 64 << 20
        /// A body that makes no progress this long gets 408 (the header timeout ends with the head).
        public var bodyTimeoutNanoseconds: UInt64 = 10_000_000_000
        /// Body bytes that count as progress (or the rest of the body, if less): a client that
        /// trickles a byte now and then cannot hold its reserved share of the body budget.
        public var bodyProgressMinBytes: Int = 16 << 10
        /// Report request heads to the delegate before their bodies (`engine(_:acceptsHead:…)`).
        public var reportsHeadBeforeBody = false
        /// Connections admitted past the limit that may only ask for `adminPaths`.
        public var adminReserveConnections: Int = 16
        public var adminPaths: [String] = ["/healthz", "/readyz", "/metrics"]
        /// Accept is paused this long after EMFILE/ENFILE, doubling up to the maximum.
        public var acceptBackoffMinNanoseconds: UInt64 = 100_000_000
        public var acceptBackoffMaxNanoseconds: UInt64 = 1_000_000_000
        /// At most one warning per this interval about failing accepts.
        public var acceptErrorLogIntervalNanoseconds: UInt64 = 5_000_000_000
        // MARK: Deferred answers (issue 12)
        /// Deferred answers (`deferAnswer`) that may wait at once across this loop's
        /// connections; past it `deferAnswer` returns nil and the request is answered at once.
        public var maxDeferredAnswers: Int = 65_536
        // MARK: Shared frames (issue 15)
        /// Frames a fan-out keeps once for every stream with nothing pending
        /// (`makeSharedFrame`); 0 turns them off (every stream copies its frame).
        public var sharedFrameCount: Int = 0
        /// The largest shared frame; a larger one is copied per stream.
        public var sharedFrameBytes: Int = 4096

        public init(maxConnections: Int, headerTimeoutNanoseconds: UInt64, limits: HTTPLimits,
                    sendBufferBytes: Int, sendBufferCount: Int) {
            self.maxConnections = maxConnections
            self.headerTimeoutNanoseconds = headerTimeoutNanoseconds
            self.limits = limits
            self.sendBufferBytes = sendBufferBytes
            self.sendBufferCount = sendBufferCount
        }
    }

    enum Phase: UInt8 { case free, http, stream, lingering, closing }

    struct Connection {
        var fd: Int32 = -1
        var generation: UInt32 = 0
        var phase: Phase = .free
        var recvArmed = false
        var recvNeedsRearm = false
        var sendInFlight = false
        var closeAfterFlush = false
        var dirty = false
        var waitingForBuffer = false
        var wantsInput = false
        var gauge: LogCounter = .connectionsHTTP
        var closeReason: DisconnectReason = .completed
        var parser: HTTPRequestParser? = nil
        var headStartNanoseconds: UInt64 = 0    // 0 = no partial request head
        var lastActivityNanoseconds: UInt64 = 0
        var lingerDeadlineNanoseconds: UInt64 = 0
        // Send progress, judged from the kernel's counters on the timer; `watch` is set when
        // bytes were handed to the kernel and cleared once everything was acknowledged.
        var progress = SendProgress()
        var watchProgress = false
        // Plain responses: `out` is being sent (stable while in flight), `queued` waits behind it.
        var out: UnsafeMutableRawBufferPointer? = nil
        var outOffset = 0
        var queued: [UInt8] = []
        // Stream bytes: a pooled buffer; the send in flight covers [head, inflightEnd).
        var streamBuffer: Int32 = -1
        var head: Int32 = 0
        var tail: Int32 = 0
        var inflightEnd: Int32 = 0
        // MARK: HTTP limits (issue 10)
        /// Admitted past the connection limit: only `adminPaths` are answered.
        var reserve = false
        /// When the body being read last made progress; 0 = no body is being read.
        var bodyProgressNanoseconds: UInt64 = 0
        var bodyChunked = false
        /// Body bytes received since `bodyProgressNanoseconds` was last moved.
        var bodyBytesSinceProgress = 0
        var chunksAtProgress = 0            // the parser's completed chunks when progress last moved
        /// The delegate accepted the head of the request being read (`acceptsHead`).
        var headJudged = false
        /// The request being handed to the delegate had its head accepted.
        var requestJudged = false
        /// Bytes of `pendingBodyBytes` this connection holds.
        var bodyReservedBytes = 0
        /// Response bytes this connection adds to the `responseQueueBytes` gauge.
        var responseGaugeBytes = 0
        /// Requests read whose answers are not completely sent yet (pipelining cap).
        var unsentAnswers = 0
        /// Answers in `out` and in `queued`: when `out` is sent, its answers are.
        var answersInOut = 0
        var answersQueued = 0
        /// Input is paused (pipelining caps): received bytes wait in `stash`, unparsed.
        var paused = false
        var recvCancelPending = false
        var inputEnded = false
        var stash: [UInt8] = []
        /// A stream's last frames (close notice, close frame) that found no room in its send
        /// buffer: sent after the buffer drains, from their own small allocation
        /// (`finalFrameBytesMax`), so a stream ended while the pool is exhausted or its buffer
        /// full still says why.
        var finalFrames: [UInt8] = []
        /// A new stream's first bytes (response head, `retry:`) while the send-buffer pool is
        /// exhausted: copied into its buffer first once it gets one (`streamSpace`), so a burst
        /// of new subscribers past the pool waits for buffers instead of being closed unanswered.
        var heldPrelude: [UInt8] = []
        // MARK: Deferred answers (issue 12)
        /// Answers from the first deferred one still waiting on, in request order: none of them
        /// is in `out` or `queued` yet. Empty unless a deferred answer waits.
        var held: [HeldAnswer] = []
        /// Bytes of the ready answers in `held` (part of `responseBytes`).
        var heldBytes = 0
        var nextDeferredOrdinal: UInt32 = 0
        // MARK: Timers (issue 15)
        /// In `tickList` / `progressList`. Kept when the entry is freed and reused: the
        /// lists drop an entry lazily, and must not hold it twice.
        var inTickList = false
        var inProgressList = false
        /// A fixed frame (`streamSendFixed`) being sent from the engine's own memory: its
        /// start and the bytes of it not yet sent (0 = none).
        var fixedStart: UnsafeRawPointer? = nil
        var fixedLeft: Int32 = 0
        /// The shared frame slot `fixedStart` points into, held until its send completes or
        /// the connection is freed; -1 for a registered `FixedFrame` (or none).
        var sharedSlot: Int32 = -1
    }

    /// A small frame sent the same to many streams (a heartbeat, a ping), kept by the engine.
    public struct FixedFrame: Sendable {
        let offset: Int32
        let count: Int32
    }

    /// One fan-out's frame, kept once in `sharedFrames` (`makeSharedFrame`).
    public struct SharedFrame: Sendable {
        let slot: Int32
        public let count: Int32
    }

    /// The kernel interface this loop runs on (io_uring, epoll, or the simulation's).
    public let io: any IOBackend
    public let configuration: Configuration
    public let counters: CounterBlock
    public let sendPool: SendBufferPool
    let sharedFrames: SharedFramePool
    let listenFD: Int32
    let wakeFD: Int32
    let logger: Logger
    /// The handler of requests and stream events; it must outlive the engine's use (the roles
    /// own their engine). `unowned`, not `weak`: a weak reference moves the delegate's
    /// reference count to a side table for good, and every retain and release of the role
    /// object then takes the runtime's slow path, several per request.
    public unowned var delegate: HTTPEngineDelegate?

    /// Entries below `initializedCount` are initialized; fresh ones are initialized on first
    /// use, so a large table costs memory only as far as it was ever filled.
    var table: UnsafeMutablePointer<Connection>
    var initializedCount = 0
    var freeConnections: [Int32] = []
    var dirtyList: [Int32] = []
    var bufferWaiters: [Int32] = []
    var liveCount = 0
    var highWater: Int32 = 0
    let wakeScratch = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
    var acceptArmed = false
    var stopping = false
    var lastProgressCheck: UInt64 = 0
    var lastTrim: UInt64 = 0
    var rearmList: [Int32] = []
    /// What the timer looks at: every connection that is not a steady stream (HTTP,
    /// lingering, a stream with a receive to re-arm or a close pending), so 100,000 idle
    /// streams cost the tick nothing. Dropped lazily by the tick once steady or free.
    var tickList: [Int32] = []
    /// Connections whose sends are watched for progress (`watchProgress`), dropped once not.
    var progressList: [Int32] = []
    var timerScratch: [Int32] = []
    /// The bytes of the registered `FixedFrame`s (never moved or freed while the engine lives).
    let fixedFrames = UnsafeMutableRawPointer.allocate(byteCount: HTTPEngine.fixedFrameBytesMax, alignment: 8)
    var fixedFramesUsed = 0
    static let fixedFrameBytesMax = 256
    public private(set) var nowNanoseconds: UInt64
    // MARK: HTTP limits (issue 10)
    /// Table entries: `maxConnections` ordinary ones, then the admin reserve.
    let tableCapacity: Int
    var freeReserveConnections: [Int32] = []
    var reserveLive = 0
    /// Held open so that at EMFILE one descriptor can be freed to accept and answer 503.
    var reserveFD: Int32 = -1
    var acceptBackoffNanoseconds: UInt64 = 0
    var acceptResumeNanoseconds: UInt64 = 0
    var acceptErrorsSinceLog = 0
    var lastAcceptErrno: Int32 = 0
    var lastAcceptErrorLogNanoseconds: UInt64 = 0
    var tickArmed = false
    var wakeArmed = false
    /// Body bytes buffered across this loop's connections (bounded by `maxPendingBodyBytes`).
    public internal(set) var pendingBodyBytes = 0
    // MARK: Deferred answers (issue 12)
    /// Deferred answers waiting to be given (a gauge for the ingest; 0 when none).
    public internal(set) var deferredAnswers = 0
    /// The connection whose request the delegate is handling (-1 between requests): only
    /// then may its answer be deferred, so that answers keep the order of their requests.
    var dispatchingConnection: Int32 = -1
    var dispatchDeferred = false

    public init(configuration: Configuration, io: any IOBackend, listenFD: Int32, wakeFD: Int32,
                counters: CounterBlock, logger: Logger) {
        self.io = io
        nowNanoseconds = io.now()
        self.configuration = configuration
        self.listenFD = listenFD
        self.wakeFD = wakeFD
        self.counters = counters
        self.logger = logger
        sendPool = SendBufferPool(capacity: configuration.sendBufferCount, bufferBytes: configuration.sendBufferBytes)
        precondition(configuration.sharedFrameBytes <= configuration.sendBufferBytes, "a shared frame fits a send buffer (see streamSpace)")
        sharedFrames = SharedFramePool(capacity: configuration.sharedFrameCount, slotBytes: configuration.sharedFrameBytes)
        let reserve = max(0, configuration.adminReserveConnections)
        tableCapacity = configuration.maxConnections + reserve
        table = .allocate(capacity: tableCapacity)
        // The reserve sits above the ordinary entries, so a delegate's per-connection arrays
        // sized by `maxConnections` never see a reserve index (those only serve admin paths).
        (table + configuration.maxConnections).initialize(repeating: Connection(), count: reserve)
        freeReserveConnections = (configuration.maxConnections..<tableCapacity).reversed().map { Int32($0) }
        reserveFD = io.openReserveDescriptor()
    }

    deinit {
        table.deinitialize(count: initializedCount)
        (table + configuration.maxConnections).deinitialize(count: tableCapacity - configuration.maxConnections)
        table.deallocate()
        wakeScratch.deallocate()
        fixedFrames.deallocate()
        if reserveFD >= 0 { io.close(fd: reserveFD) }
    }

    // MARK: - Loop

    /// Runs until `stop()` was called and every connection is gone, or `deadline` passes.
    public func run(shouldStop: () -> Bool) {
        armAccept()
        armWake()
        armTick()
        while true {
            // Without a tick armed (the queue was full) the wait must not be unbounded.
            let n = io.wait(timeoutNanoseconds: tickArmed ? 0 : configuration.tickNanoseconds)
            nowNanoseconds = io.now()
            counters.set(.heartbeatNanoseconds, nowNanoseconds)   // every turn: the supervisor's watchdog reads it
            let completions = io.completions
            for i in 0..<n { handle(completions[i]) }
            delegate?.engineTurnEnd(self)
            flushDirty()
            if !rearmList.isEmpty { rearmReceives() }
            if !tickArmed { armTick() }
            if !wakeArmed { armWake() }
            if stopping && liveCount == 0 { return }
            if shouldStop() { return }
        }
    }

    /// Stops accepting; the loop returns once every connection has closed.
    public func stopAccepting() {
        stopping = true
        if acceptArmed { _ = io.cancelAll(fd: listenFD, tag: UserData.pack(.cancel)) }
    }

    public var connectionCount: Int { liveCount }

    func handle(_ cqe: IOCompletion) {
        let ud = UserData(cqe.tag)
        switch ud.operation {
        case .accept: handleAccept(cqe)
        case .recv: handleRecv(cqe, ud)
        case .send: handleSend(cqe, ud)
        case .wake:
            wakeArmed = false
            armWake()
            delegate?.engineWake(self)
        case .tick:
            tickArmed = false
            armTick()
            tick()
        case .cancel, .none:
            break
        }
    }

    func rearmReceives() {
        let list = rearmList
        rearmList.removeAll(keepingCapacity: true)
        for conn in list {
            let c = table + Int(conn)
            guard c.pointee.recvNeedsRearm, !c.pointee.recvArmed, !c.pointee.paused,
                  c.pointee.phase == .http || c.pointee.phase == .stream || c.pointee.phase == .lingering else { continue }
            armRecv(conn)
        }
    }

    func armAccept() {
        guard !stopping, !acceptArmed else { return }
        guard io.acceptMultishot(listener: listenFD, tag: UserData.pack(.accept)) else {
            submissionQueueFull()
            acceptResumeNanoseconds = nowNanoseconds   // retried from the tick
            return
        }
        acceptArmed = true
    }

    func armTick() {
        tickArmed = io.timeout(nanoseconds: configuration.tickNanoseconds, tag: UserData.pack(.tick))
        if !tickArmed { submissionQueueFull() }
    }

    func armWake() {
        guard wakeFD >= 0 else { return }
        wakeArmed = io.readWake(fd: wakeFD, into: wakeScratch, tag: UserData.pack(.wake))
        if !wakeArmed { submissionQueueFull() }
    }

    func submissionQueueFull() { counters.add(.submissionQueueFull) }

    // MARK: - Accept

    func handleAccept(_ cqe: IOCompletion) {
        if !cqe.more { acceptArmed = false }
        guard cqe.result >= 0 else {
            if cqe.result == -ECANCELED { return }
            acceptFailed(errno: -cqe.result)
            return
        }
        acceptBackoffNanoseconds = 0
        if !acceptArmed { armAccept() }
        admit(cqe.result)
    }

    /// An accepted descriptor: a table entry, or 503 when over the limit (past the admin
    /// reserve) or stopping.
    func admit(_ fd: Int32) {
        guard !stopping else { return rejectOverCapacity(fd) }
        var reserve = false
        if !(delegate?.engineAdmits(self) ?? true) || liveCount - reserveLive >= configuration.maxConnections {
            reserve = true
        }
        guard let conn = reserve ? freeReserveConnections.popLast() : takeEntry() else {
            rejectOverCapacity(fd)
            return
        }
        io.tuneAccepted(fd: fd, options: configuration.socketOptions)
        let c = table + Int(conn)
        c.pointee.fd = fd
        c.pointee.phase = .http
        c.pointee.parser = HTTPRequestParser(limits: configuration.limits,
                                               reportsHeadBeforeBody: configuration.reportsHeadBeforeBody)
        c.pointee.headStartNanoseconds = nowNanoseconds
        c.pointee.lastActivityNanoseconds = nowNanoseconds
        // Reserve connections have their own gauge: the host-wide admission check sums the
        // ordinary ones, so a scraper on keep-alive must not lower the ordinary capacity.
        c.pointee.gauge = reserve ? .connectionsAdmin : .connectionsHTTP
        c.pointee.closeReason = .completed
        c.pointee.reserve = reserve
        if reserve { reserveLive += 1 } else { highWater = max(highWater, conn + 1) }
        liveCount += 1
        counters.add(c.pointee.gauge)
        watchOnTick(conn)
        armRecv(conn)
    }

    /// Every table entry that may be in use: the ordinary ones up to the high-water mark,
    /// then the admin reserve.
    @inline(__always) func forEachConnection(_ body: (Int32) -> Void) {
        var i: Int32 = 0
        while i < highWater { body(i); i += 1 }
        if reserveLive > 0 {
            var r = Int32(configuration.maxConnections)
            while r < Int32(tableCapacity) { body(r); r += 1 }
        }
    }

    func takeEntry() -> Int32? {
        if let conn = freeConnections.popLast() { return conn }
        guard initializedCount < configuration.maxConnections else { return nil }
        (table + initializedCount).initialize(to: Connection())
        initializedCount += 1
        return Int32(initializedCount - 1)
    }

    func rejectOverCapacity(_ fd: Int32) {
        counters.add(.disconnectOverCapacity)
        let body = ErrorBody.json(error: "over_capacity", detail: "the server is at its connection limit; retry later")
        let bytes = HTTPResponseWriter.json(status: 503, body: body, keepAlive: false,
                                            extraHeaders: [("Retry-After", "1")])
        bytes.withUnsafeBytes { io.sendNow(fd: fd, $0) }
        io.shutdown(fd: fd, how: 1)
        io.close(fd: fd)
    }

    @inline(__always) func userData(_ op: IOOperation, _ conn: Int32) -> UInt64 {
        UserData.pack(op, connection: UInt32(conn), generation: table[Int(conn)].generation)
    }

    func armRecv(_ conn: Int32) {
        let c = table + Int(conn)
        guard io.receiveMultishot(fd: c.pointee.fd, tag: userData(.recv, conn)) else {
            submissionQueueFull()
            c.pointee.recvArmed = false
            if !c.pointee.recvNeedsRearm {
                c.pointee.recvNeedsRearm = true   // retried at the end of the turn
                rearmList.append(conn)
                watchOnTick(conn)
            }
            return
        }
        c.pointee.recvArmed = true
        c.pointee.recvNeedsRearm = false
    }

    // MARK: - Receive

    func handleRecv(_ cqe: IOCompletion, _ ud: UserData) {
        let bufferID: Int32? = cqe.buffer >= 0 ? cqe.buffer : nil
        defer { if let bufferID { io.recycle(bufferID) } }
        let conn = Int32(bitPattern: ud.connection)
        guard conn >= 0, Int(conn) < tableCapacity else { return }
        let c = table + Int(conn)
        guard c.pointee.generation & UserData.generationMask == ud.generation, c.pointee.phase != .free else { return }
        if !cqe.more { c.pointee.recvArmed = false }
        if c.pointee.phase == .closing {
            // beginClose waits for the receive to end; whatever this completion carries (a
            // cancel, ENOBUFS, late bytes), the entry is freed once nothing else is pending.
            c.pointee.recvCancelPending = false
            finishCloseIfIdle(conn)
            return
        }
        if c.pointee.recvCancelPending && !c.pointee.recvArmed {
            // The receive cancelled to pause input has ended.
            c.pointee.recvCancelPending = false
            if cqe.result == -ECANCELED {
                let phase = c.pointee.phase
                if !c.pointee.paused && (phase == .http || phase == .stream || phase == .lingering) { armRecv(conn) }
                return
            }
        }
        if c.pointee.paused && c.pointee.phase == .http {
            // Bytes that arrive while input is paused wait unparsed (the receive is being
            // cancelled, so this is bounded by what the kernel had already completed).
            if cqe.result > 0, let bufferID {
                let bytes = UnsafeRawBufferPointer(start: io.receiveBuffer(bufferID), count: Int(cqe.result))
                c.pointee.stash.append(contentsOf: bytes)
                if c.pointee.recvArmed && !c.pointee.recvCancelPending { cancelRecv(conn) }
                return
            }
            if cqe.result == 0 { c.pointee.inputEnded = true; return }   // answered once the queue drains
            if cqe.result == -ENOBUFS {
                if !c.pointee.recvArmed { c.pointee.recvNeedsRearm = true; watchOnTick(conn) }
                return
            }
        }

        if cqe.result == -ENOBUFS {
            counters.add(.recvBuffersExhausted)
            if !c.pointee.recvNeedsRearm {
                c.pointee.recvNeedsRearm = true    // re-armed at the end of this turn, once buffers are back
                rearmList.append(conn)
                watchOnTick(conn)
            }
            return
        }
        if cqe.result <= 0 {
            // 0: the peer closed its side (FIN); negative: reset or cancelled.
            if c.pointee.phase == .closing {
                finishCloseIfIdle(conn)
            } else if c.pointee.phase == .lingering {
                beginClose(conn, reason: c.pointee.closeReason)
            } else if cqe.result == -ETIMEDOUT {
                beginClose(conn, reason: .halfOpen)   // keepalive or TCP_USER_TIMEOUT gave up
            } else if cqe.result == 0 && c.pointee.phase == .http
                        && (responseBytes(c) > 0 || c.pointee.sendInFlight || !c.pointee.held.isEmpty) {
                // A half-close after its requests (`nc -N`): answer what was read, then close
                // (an ingest's 201 says the event was appended; it must not be dropped).
                closeAfterFlush(conn, reason: .completed)
            } else {
                beginClose(conn, reason: cqe.result == 0 && c.pointee.phase == .http && c.pointee.parser?.isIdle == true
                    ? .completed : .peerClosed)
            }
            return
        }
        c.pointee.lastActivityNanoseconds = nowNanoseconds
        if !c.pointee.recvArmed && c.pointee.phase != .closing && !c.pointee.paused { armRecv(conn) }
        guard let bufferID else { return }
        let bytes = UnsafeRawBufferPointer(start: io.receiveBuffer(bufferID), count: Int(cqe.result))
        if c.pointee.phase == .http {
            feed(conn, bytes)
        } else if c.pointee.phase == .stream && c.pointee.wantsInput {
            delegate?.engine(self, streamInput: bytes, connection: conn)
        }
        // Otherwise (SSE streams, lingering) input is read and dropped: never buffered.
    }

    func feed(_ conn: Int32, _ bytes: UnsafeRawBufferPointer) {
        // The parser's arrays kept between the requests of these bytes go when they are parsed.
        defer { table[Int(conn)].parser?.releaseBuffers() }
        var offset = 0
        while offset < bytes.count {
            let c = table + Int(conn)
            guard c.pointee.phase == .http, c.pointee.parser != nil else { return }
            if c.pointee.bodyProgressNanoseconds != 0 {
                countBodyProgress(c, bytes: bytes.count - offset)
            } else if c.pointee.parser!.isIdle && overPipelineLimit(c) {
                // Backpressure: stop reading this connection until its answers are sent; the
                // kernel's receive window then stops the client.
                pauseInput(conn, UnsafeRawBufferPointer(rebasing: bytes[offset...]))
                return
            } else if c.pointee.headStartNanoseconds == 0 {
                c.pointee.headStartNanoseconds = nowNanoseconds
            }
            let (consumed, result) = c.pointee.parser!.parse(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += consumed
            switch result {
            case .needMore:
                if c.pointee.bodyChunked {
                    guard accountChunkedBody(conn) else { return }
                    countChunkProgress(c)
                }
                if c.pointee.parser!.awaitingContinue {
                    // curl and others wait for this before sending a body over 1 KiB.
                    c.pointee.parser!.markContinueSent()
                    respond(conn, HTTPResponseWriter.continueResponse)
                }
                return
            case .error(let error):
                countHTTPError(error.status)
                respondError(conn, status: error.status, error: error.code, detail: error.detail, close: true)
                return
            case .head(let request, let contentLength):
                guard headAccepted(conn, request, contentLength: contentLength) else { return }
            case .request(let request):
                c.pointee.headStartNanoseconds = 0
                releaseBody(c)
                counters.add(.requests)
                c.pointee.unsentAnswers += 1
                if !request.keepAlive { c.pointee.closeAfterFlush = true }
                if c.pointee.reserve && !configuration.adminPaths.contains(request.path) {
                    rejectOnReserve(conn)
                    return
                }
                c.pointee.requestJudged = c.pointee.headJudged
                c.pointee.headJudged = false
                dispatchingConnection = conn
                dispatchDeferred = false
                delegate?.engine(self, request: request, connection: conn)
                dispatchingConnection = -1
                c.pointee.requestJudged = false
                if consumed == 0 && offset < bytes.count { return }   // defensive: no progress
            }
        }
    }

    // MARK: - Responses

    /// Queues a response given as a head and a body, copied once into the send buffer.
    public func respond(_ conn: Int32, head: [UInt8], body: [UInt8]) {
        let c = table + Int(conn)
        guard c.pointee.phase == .http else { return }
        guard c.pointee.held.isEmpty else { return hold(c, head + body) }   // behind a deferred answer
        guard c.pointee.out == nil && c.pointee.queued.isEmpty else {
            // A pipelined response behind one in flight: append both parts to the queue (its
            // size is bounded by pausing the input, see `overPipelineLimit`).
            reserveQueue(c)
            c.pointee.queued.append(contentsOf: head)
            c.pointee.queued.append(contentsOf: body)
            c.pointee.answersQueued += 1
            syncResponseGauge(c)
            markDirty(conn)
            return
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: head.count + body.count, alignment: 1)
        head.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: head.count) }
        body.withUnsafeBytes { b in
            if b.count > 0 { (buffer.baseAddress! + head.count).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        }
        c.pointee.out = buffer
        c.pointee.outOffset = 0
        c.pointee.answersInOut += 1
        syncResponseGauge(c)
        markDirty(conn)
    }

    /// Queues a complete response. `close` ends the connection once it is sent.
    public func respond(_ conn: Int32, _ bytes: [UInt8], close: Bool = false) {
        let c = table + Int(conn)
        guard c.pointee.phase == .http else { return }
        if close { c.pointee.closeAfterFlush = true }
        guard c.pointee.held.isEmpty else { return hold(c, bytes) }   // behind a deferred answer, no copy
        bytes.withUnsafeBytes { respond(conn, bytes: $0) }
    }

    /// Queues a complete keep-alive response from bytes the caller owns (copied once): a handler
    /// that writes its answer into a stack buffer makes no array for it.
    public func respond(_ conn: Int32, bytes: UnsafeRawBufferPointer) {
        let c = table + Int(conn)
        guard c.pointee.phase == .http else { return }
        guard c.pointee.held.isEmpty else { return hold(c, Array(bytes)) }   // behind a deferred answer
        enqueue(c, bytes)
        syncResponseGauge(c)
        markDirty(conn)
    }

    /// Puts one answer into the connection's output: `out` when nothing is there, else behind it.
    @inline(__always) func enqueue(_ c: UnsafeMutablePointer<Connection>, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { enqueue(c, $0) }
    }

    @inline(__always) func enqueue(_ c: UnsafeMutablePointer<Connection>, _ bytes: UnsafeRawBufferPointer) {
        if c.pointee.out == nil && c.pointee.queued.isEmpty {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
            buffer.copyMemory(from: bytes)
            c.pointee.out = buffer
            c.pointee.outOffset = 0
            c.pointee.answersInOut += 1
        } else {
            reserveQueue(c)
            c.pointee.queued.append(contentsOf: bytes)
            c.pointee.answersQueued += 1
        }
    }

    /// Pipelined answers queue behind the one in flight: the queue starts at
    /// `queueKeptBytes`, so a burst of them does not regrow it answer by answer.
    @inline(__always) func reserveQueue(_ c: UnsafeMutablePointer<Connection>) {
        if c.pointee.queued.capacity == 0 { c.pointee.queued.reserveCapacity(HTTPEngine.queueKeptBytes) }
    }

    /// The queue keeps its buffer across sends up to this size (a pipelining client's next
    /// burst reuses it); a larger one is freed once sent.
    static let queueKeptBytes = 4096

    /// Sends an error response as JSON. With `close` (framing errors, timeouts) the connection
    /// ends afterwards, lingering so that the peer reads the response instead of a reset.
    public func respondError(_ conn: Int32, status: Int, error: String, detail: String,
                             extraHeaders: [(String, String)] = [], close closeNow: Bool = false) {
        let body = ErrorBody.json(error: error, detail: detail)
        let c = table + Int(conn)
        if closeNow {
            c.pointee.parser = nil   // nothing after a framing error can be trusted
            releaseBody(c)
            c.pointee.stash = []
            if status == 408 { c.pointee.closeReason = .headerTimeout }
        }
        let keepAlive = !closeNow && !c.pointee.closeAfterFlush
        respond(conn, HTTPResponseWriter.json(status: status, body: body, keepAlive: keepAlive,
                                              extraHeaders: extraHeaders), close: !keepAlive)
    }

    // MARK: - Streams

    /// Turns an HTTP connection into a stream: later requests are not parsed, input is read
    /// and discarded, and output goes through `streamWrite`. `head` is the response head.
    public func startStream(_ conn: Int32, gauge: LogCounter, wantsInput: Bool = false) {
        let c = table + Int(conn)
        precondition(c.pointee.phase == .http)
        precondition(c.pointee.held.isEmpty, "a connection with a deferred answer pending cannot become a stream")
        c.pointee.phase = .stream
        c.pointee.paused = false   // pipelining caps apply to HTTP answers only
        c.pointee.wantsInput = wantsInput
        c.pointee.parser = nil
        c.pointee.closeAfterFlush = false
        counters.subtract(c.pointee.gauge)
        counters.add(gauge)
        c.pointee.gauge = gauge
    }

    /// Free bytes in the stream's send buffer; takes a pooled buffer when it has none.
    /// Returns 0 when the pool is exhausted; the delegate then hears `streamWritable` later.
    public func streamSpace(_ conn: Int32) -> Int {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream else { return 0 }
        if c.pointee.streamBuffer < 0 {
            guard let b = sendPool.take() else {
                counters.add(.sendBufferExhausted)
                if !c.pointee.waitingForBuffer {
                    c.pointee.waitingForBuffer = true
                    bufferWaiters.append(conn)
                }
                return 0
            }
            counters.add(.sendBuffersInUse)
            markDirty(conn)   // given back at the end of the turn if nothing was written
            c.pointee.streamBuffer = b
            c.pointee.head = 0
            c.pointee.tail = 0
            if !c.pointee.heldPrelude.isEmpty {
                let n = c.pointee.heldPrelude.count
                c.pointee.heldPrelude.withUnsafeBytes { sendPool.pointer(b).copyMemory(from: $0.baseAddress!, byteCount: n) }
                c.pointee.tail = Int32(n)
                counters.add(.pendingSendBytes, UInt64(n))
                c.pointee.heldPrelude = []
            }
            c.pointee.inflightEnd = 0
        }
        compactIfPossible(c)
        if c.pointee.fixedLeft > 0 && !c.pointee.sendInFlight && c.pointee.tail == 0 {
            // A fixed or shared frame not yet handed to the kernel moves into the empty buffer
            // ahead of what is written now, so the stream's bytes leave in one send (a burst
            // after a broadcast's first event, an event after a heartbeat in the same turn)
            // and its shared slot is given back. Its bytes stay counted as pending.
            let n = Int(c.pointee.fixedLeft)
            sendPool.pointer(c.pointee.streamBuffer).copyMemory(from: c.pointee.fixedStart!, byteCount: n)
            c.pointee.tail = Int32(n)
            c.pointee.fixedStart = nil
            c.pointee.fixedLeft = 0
            releaseSharedSlot(c)
        }
        return sendPool.bufferBytes - Int(c.pointee.tail)
    }

    /// Writes into the stream's send buffer: `body` gets the free space and returns how many
    /// bytes it wrote (at most the space). Call `streamSpace` first.
    @inline(__always)
    public func streamWrite(_ conn: Int32, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream, c.pointee.streamBuffer >= 0 else { return 0 }
        let start = sendPool.pointer(c.pointee.streamBuffer) + Int(c.pointee.tail)
        let space = sendPool.bufferBytes - Int(c.pointee.tail)
        let n = body(UnsafeMutableRawBufferPointer(start: start, count: space))
        precondition(n >= 0 && n <= space)
        if n > 0 {
            c.pointee.tail += Int32(n)
            counters.add(.pendingSendBytes, UInt64(n))
            markDirty(conn)
        }
        return n
    }

    /// Copies bytes into the stream's buffer if they fit whole; false when they do not.
    @inline(__always)
    public func streamAppend(_ conn: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard streamSpace(conn) >= bytes.count else { return false }
        _ = streamWrite(conn) { dst in
            dst.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return bytes.count
        }
        return true
    }

    /// The most bytes of final frames a stream may hold outside its send buffer.
    public static let finalFrameBytesMax = 512

    /// The most bytes of a prelude a new stream may hold outside its send buffer.
    public static let preludeBytesMax = 4096

    /// Appends a new stream's first bytes. When the send-buffer pool is exhausted they wait
    /// (at most `preludeBytesMax`) for a buffer and go out before anything written after them;
    /// the stream is among the buffer waiters and hears `streamWritable`. False only when they
    /// do not fit that bound.
    public func streamAppendPrelude(_ conn: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        if streamAppend(conn, bytes) { return true }
        let c = table + Int(conn)
        guard c.pointee.phase == .stream, c.pointee.streamBuffer < 0, c.pointee.heldPrelude.isEmpty,
              bytes.count <= HTTPEngine.preludeBytesMax else { return false }
        c.pointee.heldPrelude = Array(bytes)
        return true
    }

    /// Appends one of a stream's last frames (a close notice, a WebSocket close frame), which
    /// must reach the peer even when the send-buffer pool is exhausted or the stream's buffer
    /// full: into the buffer when it fits and nothing final waits, else kept in order behind
    /// it (bounded by `finalFrameBytesMax`). False only when that bound is reached. Follow with
    /// `closeAfterFlush`.
    @discardableResult
    public func streamAppendFinal(_ conn: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream else { return false }
        if c.pointee.finalFrames.isEmpty && streamAppend(conn, bytes) { return true }
        guard c.pointee.finalFrames.count + bytes.count <= HTTPEngine.finalFrameBytesMax else { return false }
        c.pointee.finalFrames.append(contentsOf: bytes)
        markDirty(conn)
        return true
    }

    public func streamPendingBytes(_ conn: Int32) -> Int {
        let c = table + Int(conn)
        return Int(c.pointee.fixedLeft) + (c.pointee.streamBuffer < 0 ? 0 : Int(c.pointee.tail - c.pointee.head))
    }

    /// Keeps `bytes` for `streamSendFixed` (at most `fixedFrameBytesMax` in all).
    public func registerFixedFrame(_ bytes: [UInt8]) -> FixedFrame {
        precondition(fixedFramesUsed + bytes.count <= Self.fixedFrameBytesMax, "fixed frames are small")
        bytes.withUnsafeBytes { (fixedFrames + fixedFramesUsed).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        defer { fixedFramesUsed += bytes.count }
        return FixedFrame(offset: Int32(fixedFramesUsed), count: Int32(bytes.count))
    }

    /// Sends `frame` on a stream. A stream with nothing pending (an idle one, the common case
    /// for a heartbeat) sends it straight from the engine's copy: no pooled buffer is taken,
    /// touched and given back, so 100,000 idle streams' heartbeats cost no buffer memory or
    /// page faults. Otherwise it goes behind the pending bytes (`streamAppend`). False when
    /// it does not fit.
    public func streamSendFixed(_ conn: Int32, _ frame: FixedFrame) -> Bool {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream else { return false }
        let bytes = UnsafeRawBufferPointer(start: fixedFrames + Int(frame.offset), count: Int(frame.count))
        guard sendsFromOutside(c) else { return streamAppend(conn, bytes) }
        sendFromOutside(conn, bytes)
        return true
    }

    /// Keeps `bytes` once for a fan-out: a stream with nothing pending then sends them
    /// straight from the engine's copy (`streamSendShared`). Nil when they are larger than a
    /// slot, or every slot is held (counted): the caller copies per stream. Give it back with
    /// `endSharedFrame` once every stream was given it.
    public func makeSharedFrame(_ bytes: UnsafeRawBufferPointer) -> SharedFrame? {
        guard sharedFrames.capacity > 0, bytes.count <= sharedFrames.slotBytes else { return nil }
        guard let slot = sharedFrames.take(copying: bytes) else {
            counters.add(.sharedFramesExhausted)
            return nil
        }
        counters.add(.sharedFramesInUse)
        return SharedFrame(slot: slot, count: Int32(bytes.count))
    }

    /// Drops the fan-out's hold on `frame`; the streams still sending it keep it.
    public func endSharedFrame(_ frame: SharedFrame) {
        if sharedFrames.release(frame.slot) { counters.subtract(.sharedFramesInUse) }
    }

    /// Sends a shared frame on a stream: from the engine's copy when nothing is pending (the
    /// stream holds the slot until the send completes), else behind the pending bytes
    /// (`streamAppend`). False when it does not fit.
    public func streamSendShared(_ conn: Int32, _ frame: SharedFrame) -> Bool {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream else { return false }
        let bytes = UnsafeRawBufferPointer(start: sharedFrames.pointer(frame.slot), count: Int(frame.count))
        guard sendsFromOutside(c) else { return streamAppend(conn, bytes) }
        sharedFrames.hold(frame.slot)
        c.pointee.sharedSlot = frame.slot
        sendFromOutside(conn, bytes)
        return true
    }

    /// Whether the stream has nothing pending, so a frame may leave from memory the engine
    /// keeps (a fixed or shared frame) instead of the stream's buffer.
    @inline(__always) func sendsFromOutside(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        c.pointee.streamBuffer < 0 && !c.pointee.sendInFlight && c.pointee.fixedLeft == 0 && c.pointee.out == nil
            && c.pointee.heldPrelude.isEmpty && c.pointee.finalFrames.isEmpty && !c.pointee.closeAfterFlush
    }

    func sendFromOutside(_ conn: Int32, _ bytes: UnsafeRawBufferPointer) {
        let c = table + Int(conn)
        c.pointee.fixedStart = bytes.baseAddress!
        c.pointee.fixedLeft = Int32(bytes.count)
        counters.add(.pendingSendBytes, UInt64(bytes.count))
        markDirty(conn)
    }

    /// The stream's hold on a shared frame ends (its send completed, or the connection is freed).
    @inline(__always) func releaseSharedSlot(_ c: UnsafeMutablePointer<Connection>) {
        guard c.pointee.sharedSlot >= 0 else { return }
        if sharedFrames.release(c.pointee.sharedSlot) { counters.subtract(.sharedFramesInUse) }
        c.pointee.sharedSlot = -1
    }

    public func isOpenStream(_ conn: Int32) -> Bool { table[Int(conn)].phase == .stream }

    public func lastActivity(_ conn: Int32) -> UInt64 { table[Int(conn)].lastActivityNanoseconds }

    public func fd(_ conn: Int32) -> Int32 { table[Int(conn)].fd }

    /// Ends a stream after its pending bytes are sent (bounded by the linger time).
    public func closeAfterFlush(_ conn: Int32, reason: DisconnectReason) {
        let c = table + Int(conn)
        guard c.pointee.phase == .stream || c.pointee.phase == .http else { return }
        c.pointee.closeReason = reason
        c.pointee.closeAfterFlush = true
        c.pointee.lingerDeadlineNanoseconds = nowNanoseconds + configuration.lingerNanoseconds
        watchOnTick(conn)
        if !c.pointee.sendInFlight && streamPendingBytes(conn) == 0 && c.pointee.out == nil && c.pointee.queued.isEmpty
            && c.pointee.finalFrames.isEmpty && c.pointee.held.isEmpty {
            beginLinger(conn)
        } else {
            markDirty(conn)
        }
    }

    func compactIfPossible(_ c: UnsafeMutablePointer<Connection>) {
        guard !c.pointee.sendInFlight, c.pointee.head > 0 else { return }
        let p = sendPool.pointer(c.pointee.streamBuffer)
        let n = Int(c.pointee.tail - c.pointee.head)
        if n > 0 { memmove(p, p + Int(c.pointee.head), n) }
        c.pointee.head = 0
        c.pointee.tail = Int32(n)
        c.pointee.inflightEnd = 0
    }

    // MARK: - Send

    @inline(__always) func markDirty(_ conn: Int32) {
        let c = table + Int(conn)
        if !c.pointee.dirty {
            c.pointee.dirty = true
            dirtyList.append(conn)
        }
    }

    func flushDirty() {
        guard !dirtyList.isEmpty else { return }
        let list = dirtyList
        dirtyList.removeAll(keepingCapacity: true)
        for conn in list {
            table[Int(conn)].dirty = false
            submitSend(conn)
        }
    }

    func submitSend(_ conn: Int32) {
        let c = table + Int(conn)
        guard !c.pointee.sendInFlight, c.pointee.phase == .http || c.pointee.phase == .stream else { return }
        if !c.pointee.queued.isEmpty {
            // Pipelined responses answered in the same turn go out in one send: what is left
            // of `out` (nothing is in flight) and everything queued behind it, in order.
            let rest = c.pointee.out.map { $0.count - c.pointee.outOffset } ?? 0
            let queuedBytes = c.pointee.queued.count
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: rest + queuedBytes, alignment: 1)
            if let old = c.pointee.out {
                if rest > 0 { buffer.baseAddress!.copyMemory(from: old.baseAddress! + c.pointee.outOffset, byteCount: rest) }
                old.deallocate()
            }
            // Copied in place (no second reference), so the queue keeps its own buffer below.
            c.pointee.queued.withUnsafeBytes { (buffer.baseAddress! + rest).copyMemory(from: $0.baseAddress!, byteCount: queuedBytes) }
            c.pointee.out = buffer
            c.pointee.outOffset = 0
            c.pointee.queued.removeAll(keepingCapacity: c.pointee.queued.capacity <= HTTPEngine.queueKeptBytes)
            c.pointee.answersInOut += c.pointee.answersQueued
            c.pointee.answersQueued = 0
        }
        if let out = c.pointee.out {
            if io.send(fd: c.pointee.fd, out.baseAddress! + c.pointee.outOffset, out.count - c.pointee.outOffset,
                         tag: userData(.send, conn)) {
                c.pointee.sendInFlight = true
            } else {
                sendDeferred(conn)
            }
            return
        }
        if c.pointee.fixedLeft > 0, let start = c.pointee.fixedStart {
            if io.send(fd: c.pointee.fd, start, Int(c.pointee.fixedLeft), tag: userData(.send, conn)) {
                c.pointee.sendInFlight = true
            } else {
                sendDeferred(conn)
            }
            return
        }
        if c.pointee.streamBuffer >= 0 && c.pointee.tail > c.pointee.head {
            if io.send(fd: c.pointee.fd, sendPool.pointer(c.pointee.streamBuffer) + Int(c.pointee.head),
                         Int(c.pointee.tail - c.pointee.head), tag: userData(.send, conn)) {
                c.pointee.sendInFlight = true
                c.pointee.inflightEnd = c.pointee.tail
            } else {
                sendDeferred(conn)
            }
            return
        }
        if c.pointee.streamBuffer >= 0 { releaseStreamBuffer(c) }
        if c.pointee.phase == .stream && !c.pointee.finalFrames.isEmpty {
            // Everything before them was sent: they leave like a response (no pooled buffer).
            let n = c.pointee.finalFrames.count
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 1)
            c.pointee.finalFrames.withUnsafeBytes { buffer.copyMemory(from: $0) }
            c.pointee.finalFrames = []
            c.pointee.out = buffer
            c.pointee.outOffset = 0
            syncResponseGauge(c)
            submitSend(conn)
            return
        }
        // Answers still held behind a deferred one are sent before the close.
        if c.pointee.closeAfterFlush && c.pointee.held.isEmpty { beginLinger(conn) }
    }

    /// Continues sending after a send completed. Pipelined answers queued during this turn
    /// leave from `flushDirty`, after `engineTurnEnd`: with `--fsync always` the ingest's 201s
    /// must not go out before the turn's fdatasync.
    func sendNext(_ conn: Int32) {
        let c = table + Int(conn)
        if c.pointee.phase == .http && !c.pointee.queued.isEmpty {
            markDirty(conn)
        } else {
            submitSend(conn)
        }
    }

    /// The submission queue stayed full: the send is tried again on the next turn.
    func sendDeferred(_ conn: Int32) {
        submissionQueueFull()
        markDirty(conn)
    }

    func handleSend(_ cqe: IOCompletion, _ ud: UserData) {
        let conn = Int32(bitPattern: ud.connection)
        guard conn >= 0, Int(conn) < tableCapacity else { return }
        let c = table + Int(conn)
        guard c.pointee.generation & UserData.generationMask == ud.generation, c.pointee.phase != .free else { return }
        c.pointee.sendInFlight = false
        if c.pointee.phase == .closing {
            finishCloseIfIdle(conn)
            return
        }
        if cqe.result == -EAGAIN || cqe.result == -EINTR {
            sendNext(conn)
            return
        }
        guard cqe.result > 0 else {
            // ETIMEDOUT: TCP_USER_TIMEOUT gave up on a peer that acknowledged nothing.
            let reason: DisconnectReason = cqe.result == -ETIMEDOUT ? .halfOpen
                : c.pointee.phase == .stream ? .peerClosed : .completed
            beginClose(conn, reason: reason)
            return
        }
        let n = Int(cqe.result)
        c.pointee.lastActivityNanoseconds = nowNanoseconds
        c.pointee.watchProgress = true
        if !c.pointee.inProgressList {
            c.pointee.inProgressList = true
            progressList.append(conn)
        }
        if let out = c.pointee.out {
            c.pointee.outOffset += n
            if c.pointee.outOffset >= out.count {
                out.deallocate()
                c.pointee.out = nil
                c.pointee.outOffset = 0
                // Its answers are sent (an interim 100 Continue counts too: never below 0).
                c.pointee.unsentAnswers = max(0, c.pointee.unsentAnswers - c.pointee.answersInOut)
                c.pointee.answersInOut = 0
            }
            syncResponseGauge(c)
        } else if c.pointee.fixedLeft > 0 {
            // A fixed frame was in flight (it goes before the stream buffer, see submitSend).
            let sent = min(Int32(n), c.pointee.fixedLeft)
            c.pointee.fixedLeft -= sent
            c.pointee.fixedStart = c.pointee.fixedLeft == 0 ? nil : c.pointee.fixedStart! + Int(sent)
            counters.subtract(.pendingSendBytes, UInt64(sent))
            if c.pointee.fixedLeft == 0 { releaseSharedSlot(c) }
        } else if c.pointee.streamBuffer >= 0 {
            c.pointee.head += Int32(n)
            counters.subtract(.pendingSendBytes, UInt64(n))
            if c.pointee.head == c.pointee.tail {
                releaseStreamBuffer(c)
            }
        }
        sendNext(conn)
        if c.pointee.phase == .http && c.pointee.out == nil && c.pointee.queued.isEmpty && !c.pointee.sendInFlight {
            drained(conn)
            closeIfIdleWhileStopping(conn)
        }
        if c.pointee.phase == .stream && !c.pointee.closeAfterFlush {
            delegate?.engine(self, streamWritable: conn)
        }
    }

    func releaseStreamBuffer(_ c: UnsafeMutablePointer<Connection>) {
        guard c.pointee.streamBuffer >= 0 else { return }
        let pending = Int(c.pointee.tail - c.pointee.head)
        if pending > 0 { counters.subtract(.pendingSendBytes, UInt64(pending)) }
        sendPool.give(c.pointee.streamBuffer)
        counters.subtract(.sendBuffersInUse)
        c.pointee.streamBuffer = -1
        c.pointee.head = 0
        c.pointee.tail = 0
        c.pointee.inflightEnd = 0
        while let waiter = bufferWaiters.first {
            bufferWaiters.removeFirst()
            guard table[Int(waiter)].waitingForBuffer else { continue }
            table[Int(waiter)].waitingForBuffer = false
            if table[Int(waiter)].phase == .stream {
                // A new stream's held prelude takes the buffer first (see streamAppendPrelude).
                if !table[Int(waiter)].heldPrelude.isEmpty { _ = streamSpace(waiter) }
                delegate?.engine(self, streamWritable: waiter)
                break
            }
        }
    }

    // MARK: - Close

    /// Half-closes after the last response, then waits (bounded) for the peer's FIN, so the
    /// peer reads the response instead of a reset.
    func beginLinger(_ conn: Int32) {
        let c = table + Int(conn)
        guard c.pointee.phase == .http || c.pointee.phase == .stream else { return }
        // The close reason is counted when the lingering ends (FIN or deadline) in beginClose.
        c.pointee.phase = .lingering
        watchOnTick(conn)
        c.pointee.paused = false   // a lingering connection reads (and drops) until the FIN
        c.pointee.parser = nil
        releaseBody(c)
        c.pointee.stash = []
        c.pointee.lingerDeadlineNanoseconds = nowNanoseconds + configuration.lingerNanoseconds
        io.shutdown(fd: c.pointee.fd, how: 1)
        // A receive being cancelled re-arms itself when the cancel completes.
        if !c.pointee.recvArmed && !c.pointee.recvCancelPending { armRecv(conn) }
    }

    /// Closes the connection now: shuts the socket down so pending operations complete, and
    /// frees the table entry once none is left.
    public func beginClose(_ conn: Int32, reason: DisconnectReason) {
        let c = table + Int(conn)
        guard c.pointee.phase != .free && c.pointee.phase != .closing else { return }
        let wasStream = c.pointee.gauge != .connectionsHTTP && c.pointee.gauge != .connectionsAdmin
        var finalReason = reason
        if c.pointee.phase == .lingering || c.pointee.closeAfterFlush { finalReason = c.pointee.closeReason }
        c.pointee.phase = .closing
        dropHeld(c)
        if let counter = finalReason.counter { counters.add(counter) }
        io.shutdown(fd: c.pointee.fd, how: 2)
        if c.pointee.recvArmed || c.pointee.sendInFlight {
            _ = io.cancelAll(fd: c.pointee.fd, tag: UserData.pack(.cancel))
        }
        if wasStream { delegate?.engine(self, streamClosed: conn) }
        finishCloseIfIdle(conn)
    }

    func finishCloseIfIdle(_ conn: Int32) {
        let c = table + Int(conn)
        guard c.pointee.phase == .closing, !c.pointee.recvArmed, !c.pointee.sendInFlight else { return }
        io.close(fd: c.pointee.fd)
        if let out = c.pointee.out { out.deallocate() }
        c.pointee.out = nil
        c.pointee.queued = []
        syncResponseGauge(c)
        releaseBody(c)
        releaseStreamBuffer(c)
        if c.pointee.fixedLeft > 0 { counters.subtract(.pendingSendBytes, UInt64(c.pointee.fixedLeft)) }
        releaseSharedSlot(c)   // no send is in flight: the kernel reads the slot no more
        counters.subtract(c.pointee.gauge)
        let generation = (c.pointee.generation &+ 1) & UserData.generationMask
        let reserve = c.pointee.reserve
        let lists = (c.pointee.inTickList, c.pointee.inProgressList)
        c.pointee = Connection()
        c.pointee.generation = generation
        (c.pointee.inTickList, c.pointee.inProgressList) = lists
        if reserve {
            freeReserveConnections.append(conn)
            reserveLive -= 1
        } else {
            freeConnections.append(conn)
        }
        liveCount -= 1
    }

    // MARK: - Timers

    func tick() {
        let now = nowNanoseconds
        counters.set(.heartbeatNanoseconds, now)
        let headerTimeout = configuration.headerTimeoutNanoseconds
        let bodyTimeout = configuration.bodyTimeoutNanoseconds
        swap(&tickList, &timerScratch)
        for i in timerScratch {
            let c = table + Int(i)
            switch c.pointee.phase {
            case .http:
                if c.pointee.recvNeedsRearm && !c.pointee.recvArmed && !c.pointee.paused { armRecv(i) }
                if c.pointee.out == nil && c.pointee.queued.isEmpty && !c.pointee.sendInFlight && c.pointee.held.isEmpty {
                    if c.pointee.bodyProgressNanoseconds != 0 && now &- c.pointee.bodyProgressNanoseconds > bodyTimeout {
                        countHTTPError(408)   // respondError(close:) releases the body
                        respondError(i, status: 408, error: "request_timeout",
                                     detail: "the request body made no progress within the body timeout (\(bodyTimeout / 1_000_000) ms; progress is at least \(configuration.bodyProgressMinBytes) bytes or the rest of the body)", close: true)
                        c.pointee.closeReason = .bodyTimeout
                    } else if c.pointee.headStartNanoseconds != 0 && now &- c.pointee.headStartNanoseconds > headerTimeout {
                        c.pointee.headStartNanoseconds = 0
                        countHTTPError(408)
                        respondError(i, status: 408, error: "request_timeout",
                                     detail: "the request head was not complete within the header timeout", close: true)
                    } else if c.pointee.headStartNanoseconds == 0 && c.pointee.bodyProgressNanoseconds == 0
                                && now &- c.pointee.lastActivityNanoseconds > configuration.keepAliveIdleNanoseconds {
                        beginClose(i, reason: .completed)
                    }
                }
            case .stream:
                if c.pointee.recvNeedsRearm && !c.pointee.recvArmed { armRecv(i) }
                if c.pointee.closeAfterFlush && now > c.pointee.lingerDeadlineNanoseconds {
                    beginClose(i, reason: c.pointee.closeReason)
                }
            case .lingering:
                if now > c.pointee.lingerDeadlineNanoseconds { beginClose(i, reason: c.pointee.closeReason) }
            case .free, .closing:
                break
            }
            keepOnTick(i)
        }
        timerScratch.removeAll(keepingCapacity: true)
        if !acceptArmed && !stopping && acceptResumeNanoseconds != 0 && now >= acceptResumeNanoseconds {
            acceptResumeNanoseconds = 0
            armAccept()
        }
        logAcceptErrorsIfDue()
        reopenReserveFDIfLost()
        if now &- lastTrim >= 1_000_000_000 {
            lastTrim = now
            sendPool.trim(keep: 32)
        }
        if now &- lastProgressCheck >= configuration.progressCheckNanoseconds {
            lastProgressCheck = now
            checkSendProgress(now: now)
        }
        delegate?.engineTick(self, nowNanoseconds: now)
    }

    /// Puts `conn` on the tick's list (it is not, or may stop being, a steady stream).
    @inline(__always) func watchOnTick(_ conn: Int32) {
        let c = table + Int(conn)
        guard !c.pointee.inTickList else { return }
        c.pointee.inTickList = true
        tickList.append(conn)
    }

    /// After the tick looked at `conn`: it stays on the list unless it is free, closing, or a
    /// stream with nothing for the tick to do (no receive to re-arm, no close pending); those
    /// are put back by `watchOnTick` when that changes.
    @inline(__always) func keepOnTick(_ conn: Int32) {
        let c = table + Int(conn)
        let keep = switch c.pointee.phase {
        case .http, .lingering: true
        case .stream: c.pointee.recvNeedsRearm || c.pointee.closeAfterFlush
        case .free, .closing: false
        }
        if keep { tickList.append(conn) } else { c.pointee.inTickList = false }
    }

    /// Closes connections whose peers acknowledge nothing while data waits for them. Runs on
    /// the loop's timer, so a send that never completes cannot hold it up.
    func checkSendProgress(now: UInt64) {
        swap(&progressList, &timerScratch)
        for i in timerScratch {
            checkSendProgress(i, now: now)
            let c = table + Int(i)
            if c.pointee.watchProgress && c.pointee.phase != .free && c.pointee.phase != .closing {
                progressList.append(i)
            } else {
                c.pointee.inProgressList = false
            }
        }
        timerScratch.removeAll(keepingCapacity: true)
    }

    func checkSendProgress(_ i: Int32, now: UInt64) {
        let c = table + Int(i)
        guard c.pointee.watchProgress, c.pointee.phase == .stream || c.pointee.phase == .http
            || c.pointee.phase == .lingering else { return }
        let fd = c.pointee.fd
        guard let info = io.tcpProgress(fd: fd) else { return }
        let queued = info.drained ? 0 : io.kernelQueuedBytes(fd: fd)   // one syscall for a healthy peer
        // What the server still holds decides only whether to keep watching; whether the
        // peer stalls is the policy's call from the kernel's counters.
        let pending = responseBytes(c) + streamPendingBytes(i) + c.pointee.finalFrames.count
        let sample = SendProgress.Sample(bytesAcked: info.bytesAcked, unackedSegments: info.unackedSegments,
                                         kernelQueuedBytes: queued,
                                         established: info.established || c.pointee.phase == .lingering)
        switch c.pointee.progress.observe(sample, nowNanoseconds: now,
                                          timeoutNanoseconds: configuration.sendTimeoutNanoseconds) {
        case .healthy:
            if queued == 0 && pending == 0 { c.pointee.watchProgress = false }
        case .sendTimeout:
            forceClose(i, reason: .sendTimeout)
        case .halfOpen:
            forceClose(i, reason: .halfOpen)
        }
    }

    /// Ends a connection whatever it was doing (a lingering close or a pending flush included).
    func forceClose(_ conn: Int32, reason: DisconnectReason) {
        let c = table + Int(conn)
        c.pointee.closeAfterFlush = false
        if c.pointee.phase == .lingering { c.pointee.phase = .http }
        c.pointee.closeReason = reason
        beginClose(conn, reason: reason)
    }

    /// Closes keep-alive connections that are between requests (for shutdown).
    public func closeIdleHTTP() {
        forEachConnection { i in
            let c = table[Int(i)]
            if c.phase == .http && c.out == nil && c.queued.isEmpty && !c.sendInFlight && c.held.isEmpty {
                beginClose(i, reason: .shutdown)
            }
        }
    }

    /// While stopping, a connection that was busy when `closeIdleHTTP` ran (an answer in
    /// flight, a deferred one pending) is closed once it is idle, so the stop need not wait
    /// out its grace period for keep-alive connections.
    func closeIfIdleWhileStopping(_ conn: Int32) {
        let c = table + Int(conn)
        guard stopping, c.pointee.phase == .http, c.pointee.held.isEmpty, c.pointee.out == nil,
              c.pointee.queued.isEmpty, !c.pointee.sendInFlight, !c.pointee.paused,
              c.pointee.parser?.isIdle == true else { return }
        // Lingering (shut the write side, read until FIN): a close with the client's next
        // pipelined request unread would reset the connection and could drop the answer
        // just sent.
        closeAfterFlush(conn, reason: .shutdown)
    }

    /// Calls `body` for each open stream connection.
    public func forEachStream(_ body: (Int32) -> Void) {
        var i: Int32 = 0
        while i < highWater {
            if table[Int(i)].phase == .stream { body(i) }
            i += 1
        }
    }
}


