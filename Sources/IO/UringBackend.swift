import CRinggateSys
import Glibc

/// `IOBackend` on io_uring: multishot accept and receive, a provided-buffer ring, one issuer.
public final class UringBackend: IOBackend, KernelSocketCalls {
    public let ring: Ring
    let buffers: ProvidedBuffers
    public let completions: UnsafeMutablePointer<IOCompletion>

    public var kind: IOBackendKind { .ioUring }

    public init(configuration: IOBackendConfiguration) throws(Ring.SetupError) {
        ring = try Ring(entries: UInt32(max(8, configuration.entries.nextPowerOfTwo)),
                        completionBatch: configuration.completionBatch)
        buffers = try ProvidedBuffers(ring: ring, group: 1, count: configuration.receiveBufferCount,
                                      bufferBytes: configuration.receiveBufferBytes)
        completions = .allocate(capacity: configuration.completionBatch)
    }

    deinit { completions.deallocate() }

    @inline(__always) public func acceptMultishot(listener: Int32, tag: UInt64) -> Bool {
        ring.multishotAccept(fd: listener, userData: tag)
    }
    @inline(__always) public func receiveMultishot(fd: Int32, tag: UInt64) -> Bool {
        ring.recvMultishot(fd: fd, group: buffers.group, userData: tag)
    }
    @inline(__always) public func send(fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int, tag: UInt64) -> Bool {
        ring.send(fd: fd, bytes, count, userData: tag)
    }
    public func readWake(fd: Int32, into scratch: UnsafeMutableRawPointer, tag: UInt64) -> Bool {
        ring.read(fd: fd, scratch, 8, userData: tag)
    }
    public func timeout(nanoseconds: UInt64, tag: UInt64) -> Bool {
        ring.timeout(nanoseconds: nanoseconds, userData: tag)
    }
    public func cancelAll(fd: Int32, tag: UInt64) -> Bool { ring.cancel(fd: fd, userData: tag) }
    public func cancel(fd: Int32, target: UInt64, tag: UInt64) -> Bool {
        ring.cancel(request: target, userData: tag)
    }

    public func wait(timeoutNanoseconds: UInt64) -> Int {
        let n = ring.submitAndWait(timeoutNanoseconds: timeoutNanoseconds)
        let raw = ring.completions
        for i in 0..<n {
            let cqe = raw[i]
            let buffer: Int32 = cqe.flags & RG_CQE_F_BUFFER != 0
                ? Int32(UInt16(truncatingIfNeeded: cqe.flags >> RG_CQE_BUFFER_SHIFT)) : -1
            completions[i] = IOCompletion(tag: cqe.user_data, result: cqe.res, buffer: buffer,
                                          more: cqe.flags & RG_CQE_F_MORE != 0)
        }
        return n
    }

    public var receiveBufferBytes: Int { buffers.bufferBytes }
    @inline(__always) public func receiveBuffer(_ id: Int32) -> UnsafeMutableRawPointer {
        buffers.buffer(UInt16(truncatingIfNeeded: id))
    }
    @inline(__always) public func recycle(_ id: Int32) { buffers.recycle(UInt16(truncatingIfNeeded: id)) }

    public func close(fd: Int32) { _ = rg_close(fd) }

    public func injectSubmissionQueueFull(count: UInt32) { ring.injectSubmissionQueueFull(count: count) }
}

extension Int {
    public var nextPowerOfTwo: Int {
        var v = 1
        while v < self { v <<= 1 }
        return v
    }
}
