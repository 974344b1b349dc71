import CRinggateSys
import Glibc

/// The io_uring of one thread: submission helpers, a completion batch, a provided-buffer ring.
public final class Ring {
    public struct SetupError: Error, CustomStringConvertible {
        public let errno: Int32
        /// The call that failed: `io_uring_setup` (the ring) or `io_uring_register` (the
        /// provided-buffer ring), so the operator can tell a blocked ring from a missing feature.
        public let syscall: String
        public init(errno: Int32, syscall: String = "io_uring_setup") {
            self.errno = errno
            self.syscall = syscall
        }
        public var description: String {
            let cause: String
            switch errno {
            case EPERM:
                cause = "io_uring is not permitted: a seccomp profile blocks it (Docker's default does), or kernel.io_uring_disabled=2"
            case ENOSYS:
                cause = "io_uring is not available: the kernel is too old (need ≥ 6.1) or built without it"
            case EINVAL where syscall == "io_uring_register":
                cause = "the kernel's io_uring lacks provided-buffer rings (need ≥ 6.1)"
            case ENOMEM:
                cause = "not enough locked memory for io_uring (raise RLIMIT_MEMLOCK)"
            default:
                cause = "io_uring setup failed"
            }
            return "\(cause) (\(syscall): errno \(errno): \(String(cString: strerror(errno))))"
        }
    }

    let raw: OpaquePointer
    public let completions: UnsafeMutablePointer<rg_cqe>
    public let completionBatch: Int

    public init(entries: UInt32, completionBatch: Int = 512) throws(SetupError) {
        var err: Int32 = 0
        guard let r = rg_ring_create(entries, &err) else { throw SetupError(errno: -err) }
        raw = r
        self.completionBatch = completionBatch
        completions = .allocate(capacity: completionBatch)
    }

    deinit {
        completions.deallocate()
        rg_ring_destroy(raw)
    }

    public static func disabledBySysctl() -> Bool {
        let fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var byte: UInt8 = 0
        return Glibc.read(fd, &byte, 1) == 1 && byte == UInt8(ascii: "2")
    }

    // Each prep returns false when the submission queue stayed full even after submitting
    // what was queued (`rg_prep_*` submits and retries once). The caller defers or gives up
    // that one operation; nothing a peer does can turn this into a crash.
    @discardableResult @inline(__always)
    public func multishotAccept(fd: Int32, userData: UInt64) -> Bool {
        check(rg_prep_multishot_accept(raw, fd, userData))
    }
    @discardableResult @inline(__always)
    public func recvMultishot(fd: Int32, group: UInt16, userData: UInt64) -> Bool {
        check(rg_prep_recv_multishot(raw, fd, group, userData))
    }
    @discardableResult @inline(__always)
    public func send(fd: Int32, _ p: UnsafeRawPointer, _ n: Int, userData: UInt64) -> Bool {
        check(rg_prep_send(raw, fd, p, UInt32(n), userData))
    }
    @discardableResult @inline(__always)
    public func read(fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, userData: UInt64) -> Bool {
        check(rg_prep_read(raw, fd, p, UInt32(n), userData))
    }
    @discardableResult @inline(__always)
    public func timeout(nanoseconds: UInt64, userData: UInt64) -> Bool {
        check(rg_prep_timeout(raw, nanoseconds, userData))
    }
    @discardableResult @inline(__always)
    public func cancel(fd: Int32, userData: UInt64) -> Bool {
        check(rg_prep_cancel_fd(raw, fd, userData))
    }
    /// Cancels the one request submitted with `target` as its user data.
    @discardableResult @inline(__always)
    public func cancel(request target: UInt64, userData: UInt64) -> Bool {
        check(rg_prep_cancel_user_data(raw, target, userData))
    }

    /// Tests: the next `count` preps fail as if the submission queue stayed full.
    public func injectSubmissionQueueFull(count: UInt32) { rg_ring_inject_sq_full(raw, count) }

    /// Submits and waits for at least one completion (or the timeout); returns how many
    /// completions are now in `completions`.
    public func submitAndWait(timeoutNanoseconds: UInt64) -> Int {
        let rc = rg_submit_and_wait(raw, 1, timeoutNanoseconds)
        if rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY {
            fatalError("io_uring_submit_and_wait failed: \(rc)")
        }
        return Int(rg_drain_cqes(raw, completions, UInt32(completionBatch)))
    }

    public func submit() { _ = rg_submit(raw) }

    /// The engine counts what the caller defers (`submission_queue_full_total`).
    @inline(__always) private func check(_ rc: Int32) -> Bool { rc == 0 }
}

/// A provided-buffer ring: the kernel picks a free buffer for each receive.
public final class ProvidedBuffers {
    let ring: Ring
    let raw: OpaquePointer
    public let group: UInt16
    public let count: Int
    public let bufferBytes: Int

    public init(ring: Ring, group: UInt16, count: Int, bufferBytes: Int) throws(Ring.SetupError) {
        var err: Int32 = 0
        guard let b = rg_buf_ring_create(ring.raw, group, UInt32(count), UInt32(bufferBytes), &err) else {
            throw Ring.SetupError(errno: -err, syscall: "io_uring_register")
        }
        self.ring = ring
        raw = b
        self.group = group
        self.count = count
        self.bufferBytes = bufferBytes
    }

    deinit { rg_buf_ring_destroy(ring.raw, raw) }

    @inline(__always) public func buffer(_ id: UInt16) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(rg_buf_ring_buffer(raw, id))
    }

    @inline(__always) public func recycle(_ id: UInt16) { rg_buf_ring_recycle(raw, id) }
}
