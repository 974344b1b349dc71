import Glibc

/// Fixed-size send buffers, taken by a connection while it has bytes pending and given back
/// when it drains, so an idle subscriber holds no buffer at all.
///
/// One anonymous mapping reserved up front (`MAP_NORESERVE`): only pages that were written to
/// use memory. `capacity` bounds the total; `take()` returns nil when all are in use.
public final class SendBufferPool {
    public let bufferBytes: Int
    public let capacity: Int
    let base: UnsafeMutableRawPointer
    var freeStack: [Int32]
    /// Whether a buffer's pages may be resident (it was handed out since it was last trimmed).
    var touched: [Bool]
    public private(set) var inUse = 0

    public init(capacity: Int, bufferBytes: Int) {
        precondition(capacity > 0 && bufferBytes >= 4096)
        self.capacity = capacity
        self.bufferBytes = bufferBytes
        let bytes = capacity * bufferBytes
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { fatalError("send buffer pool: mmap of \(bytes) bytes failed") }
        base = p
        freeStack = (0..<Int32(capacity)).reversed().map { $0 }
        touched = [Bool](repeating: false, count: capacity)
    }

    deinit { munmap(base, capacity * bufferBytes) }

    @inline(__always) public func take() -> Int32? {
        guard let i = freeStack.popLast() else { return nil }
        inUse += 1
        touched[Int(i)] = true
        return i
    }

    @inline(__always) public func give(_ index: Int32) {
        freeStack.append(index)
        inUse -= 1
    }

    /// Gives the memory of free buffers back to the kernel, except the `keep` most recently
    /// freed (the ones `take()` hands out next). A burst of connections touches many buffers
    /// once; without this their pages would stay resident for good. Only `keep`, not the
    /// recent peak: keeping what the last period (or the last two) needed left a broadcast's
    /// buffers resident for a second or two more, and the warm-up broadcasts of 100,000 idle
    /// streams looked like a steady load (1,596 B per idle connection against 381 B). Idle
    /// streams' heartbeats take no buffer (`streamSendFixed`), so a steady cost here is a live
    /// fan-out's: one `madvise` and one page fault per buffer beyond `keep` a period. Returns
    /// buffers trimmed.
    @discardableResult
    public func trim(keep: Int) -> Int {
        var trimmed = 0
        var k = freeStack.count - keep - 1
        while k >= 0 {
            let i = Int(freeStack[k])
            if touched[i] {
                madvise(base + i * bufferBytes, bufferBytes, MADV_DONTNEED)
                touched[i] = false
                trimmed += 1
            }
            k -= 1
        }
        return trimmed
    }

    @inline(__always) public func pointer(_ index: Int32) -> UnsafeMutableRawPointer {
        base + Int(index) * bufferBytes
    }
}
