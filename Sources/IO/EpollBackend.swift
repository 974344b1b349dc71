import CRinggateSys
import Glibc

/// `IOBackend` on epoll, for hosts that refuse io_uring (seccomp, `kernel.io_uring_disabled`).
/// It gives the engine io_uring's completion semantics: multishot accept and receive into a
/// pooled buffer, `-ENOBUFS` when the pool is empty, one completion per send (a short count is
/// normal), `-ECANCELED` for what a cancel ended, `-ETIME` for a timeout. Completions are only
/// ever handed out by `wait`, never from inside a submission.
///
/// Edge-triggered: each descriptor is registered once (one `epoll_ctl` per connection, at its
/// first operation) for reading, writing and the peer's FIN, and the backend keeps a
/// "readable"/"writable" flag per descriptor, cleared only when a call says EAGAIN or comes
/// back short. Level-triggered would need an `epoll_ctl` each time a send starts or ends waiting
/// for EPOLLOUT (or wake the loop for every writable socket on every turn), and would report a
/// socket whose receive is disarmed (pool empty, input paused) on every wait.
/// Descriptors with something to do sit in a ready queue; each `wait` serves every queued
/// descriptor at most once (one receive, up to `acceptBatchMax` accepts), so a busy connection
/// cannot starve the others.
public final class EpollBackend: IOBackend, KernelSocketCalls {
    public var kind: IOBackendKind { .epoll }
    public let completions: UnsafeMutablePointer<IOCompletion>
    public let receiveBufferBytes: Int

    /// Accepts per listener per `wait`.
    public static let acceptBatchMax = 64
    /// Descriptor-table entries allocated up front (it grows past them on demand).
    static let initialTableEntries = 1024
    /// Timeouts pending at once (the engine keeps one tick armed).
    public static let timeoutsMax = 64

    let epollFD: Int32
    let timerFD: Int32
    let completionBatch: Int
    /// Per-descriptor state, indexed by the descriptor. It grows (doubling) with the highest
    /// descriptor used, up to RLIMIT_NOFILE, so a high limit costs nothing until connections
    /// come: a million-descriptor limit would otherwise touch ~60 MB per process at start.
    var table: UnsafeMutablePointer<EpollDescriptor>
    var tableCapacity: Int
    let tableLimit: Int
    /// Each descriptor is in it at most once (`queued`), so it grows with the table.
    let ready: FixedQueue<Int32>
    /// Completions decided inside a submission (a cancel, an immediate error), handed out by
    /// the next `wait`. Its capacity is the configured queue size, like io_uring's queue.
    let pending: FixedQueue<IOCompletion>
    let events: UnsafeMutablePointer<rg_epoll_ready>
    let eventsMax = 256
    let bufferBase: UnsafeMutableRawPointer
    var freeBuffers: [Int32]
    /// The caller held every buffer when this `wait` began (it recycles only between waits):
    /// only then is an empty pool worth `-ENOBUFS`.
    var poolEmptyAtWaitStart = false
    var timeouts: [(deadline: UInt64, tag: UInt64)] = []
    var timerArmedAt: UInt64 = 0
    var injectedFull: UInt32 = 0
    var injectedRegistrationErrno: Int32 = 0
    var injectedRegistrationCount: UInt32 = 0

    public init(configuration: IOBackendConfiguration) throws(IOSelection.Failure) {
        let ep = rg_epoll_create()
        guard ep >= 0 else { throw IOSelection.Failure("epoll_create1 failed (errno \(-ep): \(String(cString: strerror(-ep))))") }
        let tf = rg_timerfd_create()
        guard tf >= 0 else {
            _ = rg_close(ep)
            throw IOSelection.Failure("timerfd_create failed (errno \(-tf): \(String(cString: strerror(-tf))))")
        }
        epollFD = ep
        timerFD = tf
        completionBatch = max(1, configuration.completionBatch)
        completions = .allocate(capacity: completionBatch)
        tableLimit = max(Int(rg_nofile_limit()), Int(tf) + 1)
        tableCapacity = min(tableLimit, max(EpollBackend.initialTableEntries, (Int(tf) + 1).nextPowerOfTwo))
        table = .allocate(capacity: tableCapacity)
        table.initialize(repeating: EpollDescriptor(), count: tableCapacity)
        ready = FixedQueue(capacity: tableCapacity)
        pending = FixedQueue(capacity: max(64, configuration.entries))
        events = .allocate(capacity: eventsMax)
        receiveBufferBytes = configuration.receiveBufferBytes
        let count = max(1, configuration.receiveBufferCount)
        bufferBase = .allocate(byteCount: count * configuration.receiveBufferBytes, alignment: 64)
        freeBuffers = (0..<Int32(count)).reversed().map { $0 }
        timeouts.reserveCapacity(EpollBackend.timeoutsMax)
        guard rg_epoll_add_edge(epollFD, timerFD) == 0 else {
            throw IOSelection.Failure("epoll_ctl on the timer failed")
        }
        table[Int(timerFD)].registered = true
    }

    deinit {
        _ = rg_close(timerFD)
        _ = rg_close(epollFD)
        table.deinitialize(count: tableCapacity)
        table.deallocate()
        completions.deallocate()
        events.deallocate()
        bufferBase.deallocate()
    }

    // MARK: Submissions

    public func acceptMultishot(listener: Int32, tag: UInt64) -> Bool {
        armRead(fd: listener, .accept, tag: tag, scratch: nil)
    }

    public func receiveMultishot(fd: Int32, tag: UInt64) -> Bool {
        armRead(fd: fd, .receive, tag: tag, scratch: nil)
    }

    public func readWake(fd: Int32, into scratch: UnsafeMutableRawPointer, tag: UInt64) -> Bool {
        armRead(fd: fd, .wake, tag: tag, scratch: scratch)
    }

    public func send(fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int, tag: UInt64) -> Bool {
        guard takeSubmission(), pending.free >= 1 else { return false }
        let failure = prepare(fd)
        if failure != 0 {
            pending.push(IOCompletion(tag: tag, result: failure))
            return true
        }
        guard table[Int(fd)].sendBytes == nil else { return false }
        let d = table + Int(fd)
        d.pointee.sendBytes = bytes
        d.pointee.sendCount = count
        d.pointee.sendTag = tag
        enqueueIfReady(fd)
        return true
    }

    public func timeout(nanoseconds: UInt64, tag: UInt64) -> Bool {
        guard takeSubmission(), timeouts.count < EpollBackend.timeoutsMax else { return false }
        timeouts.append((now() &+ nanoseconds, tag))
        armTimer()
        return true
    }

    public func cancelAll(fd: Int32, tag: UInt64) -> Bool {
        // Room for what it may end (a read and a send) and its own completion.
        guard takeSubmission(), pending.free >= 3 else { return false }
        var ended: Int32 = 0
        if fd >= 0 && Int(fd) < tableCapacity {
            let d = table + Int(fd)
            if d.pointee.readOp != .none {
                pending.push(IOCompletion(tag: d.pointee.readTag, result: -ECANCELED))
                d.pointee.readOp = .none
                ended += 1
            }
            if d.pointee.sendBytes != nil {
                pending.push(IOCompletion(tag: d.pointee.sendTag, result: -ECANCELED))
                d.pointee.sendBytes = nil
                ended += 1
            }
        }
        // io_uring's IORING_ASYNC_CANCEL_ALL: how many it ended, or -ENOENT.
        pending.push(IOCompletion(tag: tag, result: ended > 0 ? ended : -ENOENT))
        return true
    }

    public func cancel(fd: Int32, target: UInt64, tag: UInt64) -> Bool {
        guard takeSubmission(), pending.free >= 2 else { return false }
        var found = false
        if fd >= 0 && Int(fd) < tableCapacity {
            let d = table + Int(fd)
            if d.pointee.readOp != .none && d.pointee.readTag == target {
                d.pointee.readOp = .none
                found = true
            } else if d.pointee.sendBytes != nil && d.pointee.sendTag == target {
                d.pointee.sendBytes = nil
                found = true
            }
        }
        if found { pending.push(IOCompletion(tag: target, result: -ECANCELED)) }
        pending.push(IOCompletion(tag: tag, result: found ? 0 : -ENOENT))
        return true
    }

    public func injectSubmissionQueueFull(count: UInt32) { injectedFull = count }

    /// Tests: the next `count` registrations with epoll fail with `errno` (ENOSPC at
    /// `fs.epoll.max_user_watches`, ENOMEM), as `epoll_ctl` would.
    public func injectRegistrationFailure(errno: Int32, count: UInt32 = 1) {
        injectedRegistrationErrno = errno
        injectedRegistrationCount = count
    }

    // MARK: Receive buffers

    @inline(__always) public func receiveBuffer(_ id: Int32) -> UnsafeMutableRawPointer {
        bufferBase + Int(id) * receiveBufferBytes
    }

    @inline(__always) public func recycle(_ id: Int32) { freeBuffers.append(id) }

    // MARK: Descriptors

    /// Forgets the descriptor's state and closes it (the kernel drops it from the epoll set).
    /// Its place in the ready queue, if any, stays: a reused number is then served once it has
    /// something to do, and never queued twice.
    public func close(fd: Int32) {
        if fd >= 0 && Int(fd) < tableCapacity && fd != timerFD {
            let queued = table[Int(fd)].queued
            table[Int(fd)] = EpollDescriptor()
            table[Int(fd)].queued = queued
        }
        _ = rg_close(fd)
    }

    // MARK: Internals

    @inline(__always) func takeSubmission() -> Bool {
        if injectedFull > 0 {
            injectedFull -= 1
            return false
        }
        return true
    }

    /// 0 when `fd` can take an operation, else the -errno the operation completes with. A
    /// descriptor the table cannot hold or epoll refuses is a permanent error, not a full
    /// queue: io_uring would take the operation and fail it, and a refusal would make the
    /// engine retry forever and never close the connection.
    @inline(__always) func prepare(_ fd: Int32) -> Int32 {
        guard fd >= 0, fd != timerFD else { return -EBADF }
        if Int(fd) >= tableCapacity { growTable(toHold: fd) }
        guard Int(fd) < tableCapacity else { return -EBADF }
        return register(fd)
    }

    /// Doubles the descriptor table (and the ready queue) until it holds `fd`, up to the limit.
    func growTable(toHold fd: Int32) {
        guard Int(fd) < tableLimit else { return }
        let capacity = min(tableLimit, (Int(fd) + 1).nextPowerOfTwo)
        let grown = UnsafeMutablePointer<EpollDescriptor>.allocate(capacity: capacity)
        grown.moveInitialize(from: table, count: tableCapacity)
        (grown + tableCapacity).initialize(repeating: EpollDescriptor(), count: capacity - tableCapacity)
        table.deallocate()
        table = grown
        tableCapacity = capacity
        ready.grow(capacity: capacity)
    }

    func armRead(fd: Int32, _ op: EpollDescriptor.ReadOperation, tag: UInt64,
                 scratch: UnsafeMutableRawPointer?) -> Bool {
        guard takeSubmission(), pending.free >= 1 else { return false }
        let failure = prepare(fd)
        if failure != 0 {
            pending.push(IOCompletion(tag: tag, result: failure))
            return true
        }
        guard table[Int(fd)].readOp == .none else { return false }
        if op != .receive && !table[Int(fd)].nonBlocking {
            // accept and the eventfd read have no MSG_DONTWAIT: a read after a stale readiness
            // flag (the listener is shared with the other workers) must not block the loop.
            _ = rg_set_nonblocking(fd, 1)
            table[Int(fd)].nonBlocking = true
        }
        let d = table + Int(fd)
        d.pointee.readOp = op
        d.pointee.readTag = tag
        d.pointee.scratch = scratch
        enqueueIfReady(fd)
        return true
    }

    /// Adds the descriptor to the epoll set the first time an operation needs it (0, or
    /// -errno). The kernel reports its current readiness at once (edge-triggered ADD queues an
    /// event when ready).
    @inline(__always) func register(_ fd: Int32) -> Int32 {
        if table[Int(fd)].registered { return 0 }
        if injectedRegistrationCount > 0 {
            injectedRegistrationCount -= 1
            return -injectedRegistrationErrno
        }
        let rc = rg_epoll_add_edge(epollFD, fd)
        guard rc == 0 else { return rc }
        table[Int(fd)].registered = true
        return 0
    }

    @inline(__always) func enqueueIfReady(_ fd: Int32) {
        let d = table + Int(fd)
        if !d.pointee.queued && d.pointee.hasWork {
            d.pointee.queued = true
            ready.push(fd)
        }
    }

    func armTimer() {
        var earliest: UInt64 = 0
        for t in timeouts where earliest == 0 || t.deadline < earliest { earliest = t.deadline }
        if earliest != timerArmedAt {
            _ = rg_timerfd_arm_at(timerFD, earliest)
            timerArmedAt = earliest
        }
    }

    var timeoutDue: Bool {
        timerArmedAt != 0 && timerArmedAt <= now()
    }

    // MARK: Wait

    public func wait(timeoutNanoseconds: UInt64) -> Int {
        poolEmptyAtWaitStart = freeBuffers.isEmpty
        var out = 0
        while out < completionBatch, let c = pending.pop() {
            completions[out] = c
            out += 1
        }
        let deadline = timeoutNanoseconds == 0 ? 0 : now() &+ timeoutNanoseconds
        while true {
            let idle = out == 0 && ready.isEmpty && pending.isEmpty && !timeoutDue
            var limit: Int64 = 0
            if idle {
                if deadline == 0 {
                    limit = -1
                } else {
                    let t = now()
                    limit = t >= deadline ? 0 : Int64(deadline - t)
                }
            }
            poll(timeoutNanoseconds: limit)
            out = expireTimeouts(out)
            out = serveReady(out)
            if out > 0 { return out }
            if !pending.isEmpty { continue }
            if deadline != 0 && now() >= deadline { return 0 }
        }
    }

    /// One `epoll_wait`: records readiness and queues the descriptors that can progress.
    func poll(timeoutNanoseconds: Int64) {
        let n = rg_epoll_wait(epollFD, events, Int32(eventsMax), timeoutNanoseconds)
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            let fd = events[i].fd
            let bits = events[i].ready
            guard fd >= 0, Int(fd) < tableCapacity else { continue }
            if fd == timerFD {
                var expirations: UInt64 = 0
                _ = rg_read_nb(timerFD, &expirations, 8)   // clears it, so the next expiry is a new edge
                continue
            }
            let d = table + Int(fd)
            if bits & UInt32(RG_READY_READ) != 0 { d.pointee.readable = true }
            if bits & UInt32(RG_READY_WRITE) != 0 { d.pointee.writable = true }
            if bits & UInt32(RG_READY_HANGUP) != 0 { d.pointee.hungUp = true }
            if bits & UInt32(RG_READY_URGENT) != 0 { d.pointee.urgent = true }
            enqueueIfReady(fd)
        }
    }

    func expireTimeouts(_ start: Int) -> Int {
        guard timeoutDue else { return start }
        var out = start
        let t = now()
        var i = 0
        while i < timeouts.count && out < completionBatch {
            if timeouts[i].deadline <= t {
                completions[out] = IOCompletion(tag: timeouts[i].tag, result: -ETIME)
                out += 1
                timeouts.remove(at: i)
            } else {
                i += 1
            }
        }
        armTimer()
        return out
    }

    /// Serves each descriptor queued before this call once; those that can still progress go
    /// to the back of the queue for the next `wait`.
    func serveReady(_ start: Int) -> Int {
        var out = start
        var turns = ready.count
        while turns > 0 && out < completionBatch, let fd = ready.pop() {
            turns -= 1
            let d = table + Int(fd)
            d.pointee.queued = false
            out = serve(d, fd, out)
            enqueueIfReady(fd)
        }
        return out
    }

    @inline(__always) func emit(_ out: inout Int, _ c: IOCompletion) {
        completions[out] = c
        out += 1
    }

    func serve(_ d: UnsafeMutablePointer<EpollDescriptor>, _ fd: Int32, _ start: Int) -> Int {
        var out = start
        if d.pointee.readOp != .none && d.pointee.readable {
            let tag = d.pointee.readTag
            switch d.pointee.readOp {
            case .accept:
                var accepted = 0
                while accepted < EpollBackend.acceptBatchMax && out < completionBatch {
                    let r = rg_accept_nb(fd)
                    if r >= 0 {
                        emit(&out, IOCompletion(tag: tag, result: r, more: true))
                        accepted += 1
                    } else if r == -EAGAIN {
                        d.pointee.readable = false
                        break
                    } else if r != -EINTR {
                        // Like io_uring's multishot accept: an error ends it (EMFILE backs off).
                        emit(&out, IOCompletion(tag: tag, result: r))
                        d.pointee.readOp = .none
                        break
                    }
                }
            case .receive:
                guard let id = freeBuffers.popLast() else {
                    // Used up by this wait's own receives (the batch is larger than the pool):
                    // they come back before the next wait, which serves this descriptor (it
                    // stays readable, so it is queued again). Only a pool the caller holds
                    // ends the receive, like io_uring's.
                    if poolEmptyAtWaitStart {
                        emit(&out, IOCompletion(tag: tag, result: -ENOBUFS))
                        d.pointee.readOp = .none
                    }
                    break
                }
                let r = rg_recv_nb(fd, receiveBuffer(id), receiveBufferBytes)
                if r > 0 {
                    emit(&out, IOCompletion(tag: tag, result: Int32(r), buffer: id, more: true))
                    // A short read emptied the queue; what arrives later is a new edge. After
                    // the FIN (hung up) no edge comes: keep reading until recv says 0. TCP also
                    // ends a read at the urgent mark with more queued and no new edge: once a
                    // peer sent urgent data, read on until recv says EAGAIN (one extra recv
                    // per short read, for such peers only).
                    if r < receiveBufferBytes && !d.pointee.hungUp && !d.pointee.urgent { d.pointee.readable = false }
                } else {
                    freeBuffers.append(id)
                    if r == -EAGAIN {
                        d.pointee.readable = false
                    } else if r != -EINTR {
                        emit(&out, IOCompletion(tag: tag, result: Int32(r)))   // 0 = FIN, or -errno
                        d.pointee.readOp = .none
                    }
                }
            case .wake:
                let r = rg_read_nb(fd, d.pointee.scratch!, 8)
                if r == -EAGAIN {
                    d.pointee.readable = false
                } else if r != -EINTR {
                    emit(&out, IOCompletion(tag: tag, result: Int32(r)))
                    d.pointee.readOp = .none
                    d.pointee.readable = false   // the read took the whole counter
                }
            case .none:
                break
            }
        }
        if let bytes = d.pointee.sendBytes, d.pointee.writable && out < completionBatch {
            let count = d.pointee.sendCount
            let r = count == 0 ? 0 : rg_send_nb(fd, bytes, count)
            if r == -EAGAIN {
                d.pointee.writable = false
            } else if r != -EINTR {
                emit(&out, IOCompletion(tag: d.pointee.sendTag, result: Int32(r)))
                d.pointee.sendBytes = nil
                if r >= 0 && r < count { d.pointee.writable = false }   // the socket buffer is full
            }
        }
        return out
    }
}

/// What the epoll backend knows about one descriptor.
struct EpollDescriptor {
    enum ReadOperation: UInt8 { case none, accept, receive, wake }
    var registered = false
    var nonBlocking = false
    var readable = false
    var writable = false
    /// The peer's FIN (or an error) was reported: no further edge will say so again.
    var hungUp = false
    /// The peer sent urgent data (EPOLLPRI): a short read no longer means the queue is empty.
    var urgent = false
    var queued = false
    var readOp = ReadOperation.none
    var readTag: UInt64 = 0
    var scratch: UnsafeMutableRawPointer? = nil
    /// The one send in flight; nil when none.
    var sendBytes: UnsafeRawPointer? = nil
    var sendCount = 0
    var sendTag: UInt64 = 0

    @inline(__always) var hasWork: Bool {
        (readOp != .none && readable) || (sendBytes != nil && writable)
    }
}

/// A first-in first-out queue of fixed capacity; `push` past it is the caller's bug.
final class FixedQueue<Element> {
    private var storage: UnsafeMutablePointer<Element?>
    private(set) var capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        storage = .allocate(capacity: self.capacity)
        storage.initialize(repeating: nil, count: self.capacity)
    }

    deinit {
        storage.deinitialize(count: capacity)
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }
    var free: Int { capacity - count }

    @inline(__always) func push(_ element: Element) {
        precondition(count < capacity, "FixedQueue overflow")
        storage[(head + count) % capacity] = element
        count += 1
    }

    /// Keeps the elements in order in a larger storage.
    func grow(capacity newCapacity: Int) {
        guard newCapacity > capacity else { return }
        let grown = UnsafeMutablePointer<Element?>.allocate(capacity: newCapacity)
        grown.initialize(repeating: nil, count: newCapacity)
        for i in 0..<count { grown[i] = storage[(head + i) % capacity] }
        storage.deinitialize(count: capacity)
        storage.deallocate()
        storage = grown
        capacity = newCapacity
        head = 0
    }

    @inline(__always) func pop() -> Element? {
        guard count > 0 else { return nil }
        let e = storage[head]
        storage[head] = nil
        head = (head + 1) % capacity
        count -= 1
        return e
    }
}
