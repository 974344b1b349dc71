import CRinggateSys
import Glibc

/// Which kernel interface a loop runs on.
public enum IOBackendKind: String, Sendable, CaseIterable {
    case ioUring = "io_uring"
    case epoll = "epoll"
    /// The deterministic fake kernel of the simulation tests.
    case simulated = "simulated"
}

/// One finished operation, in the shape of an io_uring completion: the tag it was submitted
/// with, its result (a byte count, a descriptor, or `-errno`), the receive buffer it filled,
/// and whether a multishot operation stays armed.
public struct IOCompletion: Sendable, Equatable {
    public var tag: UInt64
    public var result: Int32
    /// The pooled receive buffer holding the bytes (`receiveBuffer(_:)`), or -1.
    public var buffer: Int32
    /// A multishot accept or receive goes on producing completions; false when it ended.
    public var more: Bool

    @inline(__always)
    public init(tag: UInt64, result: Int32, buffer: Int32 = -1, more: Bool = false) {
        self.tag = tag
        self.result = result
        self.buffer = buffer
        self.more = more
    }
}

/// The kernel's view of a TCP connection's sending side (TCP_INFO).
public struct TCPProgressReading: Sendable, Equatable {
    public var bytesAcked: UInt64
    public var unackedSegments: UInt32
    /// TCP_ESTABLISHED.
    public var established: Bool
    /// Nothing in flight and nothing waiting to be sent: the kernel queues no byte (then
    /// `kernelQueuedBytes` need not be asked). False when unknown.
    public var drained: Bool
    public init(bytesAcked: UInt64, unackedSegments: UInt32, established: Bool, drained: Bool = false) {
        self.bytesAcked = bytesAcked
        self.unackedSegments = unackedSegments
        self.established = established
        self.drained = drained
    }
}

/// Socket options set on each accepted connection.
public struct AcceptedSocketOptions: Sendable, Equatable {
    public var userTimeoutMilliseconds: UInt32 = 0
    public var keepaliveIdleSeconds: Int32 = 0
    public var keepaliveIntervalSeconds: Int32 = 0
    public var keepaliveCount: Int32 = 0
    public init() {}
}

/// What a single-threaded loop asks of the kernel: asynchronous accept, receive into pooled
/// buffers, send, an eventfd read and a timer, each reported as an `IOCompletion`; and the
/// synchronous socket calls and clock the loop uses around them. Completion semantics follow
/// io_uring's (multishot accept and receive, `-ENOBUFS` when the receive pool is empty, one
/// completion per send, `-ECANCELED` for what a cancel ended), whichever backend provides them.
///
/// Submissions return false when the operation could not be queued now (a full submission
/// queue); the caller counts that and retries later. Nothing is performed before `wait`.
/// Called from one thread only.
public protocol IOBackend: AnyObject {
    var kind: IOBackendKind { get }

    // MARK: Asynchronous operations
    /// Accepts on `listener` until cancelled or an error ends it.
    func acceptMultishot(listener: Int32, tag: UInt64) -> Bool
    /// Receives into pooled buffers until the peer closes, an error, or a cancel ends it.
    func receiveMultishot(fd: Int32, tag: UInt64) -> Bool
    /// Sends up to `count` bytes from `bytes` (which stay valid until the completion).
    func send(fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int, tag: UInt64) -> Bool
    /// Reads the 8-byte counter of an eventfd once it is signalled.
    func readWake(fd: Int32, into scratch: UnsafeMutableRawPointer, tag: UInt64) -> Bool
    /// Completes with `-ETIME` after `nanoseconds`.
    func timeout(nanoseconds: UInt64, tag: UInt64) -> Bool
    /// Ends every operation on `fd` (each completes with `-ECANCELED` unless it finished).
    func cancelAll(fd: Int32, tag: UInt64) -> Bool
    /// Ends the one operation submitted on `fd` with tag `target`.
    func cancel(fd: Int32, target: UInt64, tag: UInt64) -> Bool

    /// Submits what was queued and waits up to `timeoutNanoseconds` (0 = until something
    /// completes) for completions; returns how many are in `completions`.
    func wait(timeoutNanoseconds: UInt64) -> Int
    var completions: UnsafeMutablePointer<IOCompletion> { get }

    // MARK: Receive buffers
    var receiveBufferBytes: Int { get }
    func receiveBuffer(_ id: Int32) -> UnsafeMutableRawPointer
    /// Gives a buffer a receive completion carried back to the pool.
    func recycle(_ id: Int32)

    // MARK: Synchronous socket calls
    func tuneAccepted(fd: Int32, options: AcceptedSocketOptions)
    /// 0 = reading side, 1 = writing side, 2 = both.
    func shutdown(fd: Int32, how: Int32)
    /// Closes a descriptor no operation is pending on.
    func close(fd: Int32)
    /// One non-blocking accept (shedding the backlog at the descriptor limit); fd or -1.
    func acceptNow(listener: Int32) -> Int32
    /// One non-blocking send, outside the loop's bookkeeping (a 503 before closing).
    func sendNow(fd: Int32, _ bytes: UnsafeRawBufferPointer)
    /// A spare descriptor held to be closed when accept fails with EMFILE; -1 if none.
    func openReserveDescriptor() -> Int32
    func tcpProgress(fd: Int32) -> TCPProgressReading?
    /// SIOCOUTQ: bytes the kernel holds unsent or unacknowledged.
    func kernelQueuedBytes(fd: Int32) -> Int

    // MARK: Clock
    /// Monotonic nanoseconds.
    func now() -> UInt64

    // MARK: Tests
    /// The next `count` submissions fail as if the submission queue stayed full.
    func injectSubmissionQueueFull(count: UInt32)
}

/// The synchronous calls on real sockets, shared by the kernel backends.
public protocol KernelSocketCalls: IOBackend {}

extension KernelSocketCalls {
    public func tuneAccepted(fd: Int32, options o: AcceptedSocketOptions) {
        _ = rg_tune_accepted(fd, 1, o.userTimeoutMilliseconds, o.keepaliveIdleSeconds,
                             o.keepaliveIntervalSeconds, o.keepaliveCount)
    }
    public func shutdown(fd: Int32, how: Int32) { _ = rg_shutdown(fd, how) }
    public func acceptNow(listener: Int32) -> Int32 { rg_accept_nonblock(listener) }
    public func sendNow(fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        _ = rg_set_nonblocking(fd, 1)
        _ = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
    }
    public func openReserveDescriptor() -> Int32 { rg_open_reserve_fd() }
    public func tcpProgress(fd: Int32) -> TCPProgressReading? {
        var info = rg_tcp_progress()
        guard rg_tcp_progress_read(fd, &info) == 0 else { return nil }
        return TCPProgressReading(bytesAcked: info.bytes_acked, unackedSegments: info.unacked,
                                  established: info.state == 1, drained: info.unacked == 0 && info.notsent == 0)
    }
    public func kernelQueuedBytes(fd: Int32) -> Int { Int(max(0, rg_outq_bytes(fd))) }
    @inline(__always) public func now() -> UInt64 { rg_monotonic_ns() }
}

/// Sizes of what a backend allocates up front.
public struct IOBackendConfiguration: Sendable, Equatable {
    /// Submission-queue entries (io_uring; a power of two).
    public var entries: Int = 4096
    public var receiveBufferCount: Int = 256
    public var receiveBufferBytes: Int = 4096
    /// Completions handed back per `wait`.
    public var completionBatch: Int = 512
    public init() {}
}
