import Glibc

/// Frames that many streams send at once (one fan-out's event), each kept once: a stream with
/// nothing pending sends straight from here instead of copying the frame into a pooled buffer
/// of its own, so a broadcast to 100,000 idle streams takes no send buffer, page fault or copy
/// per stream.
///
/// Fixed-size slots, each with a count of its holders (the fan-out that made it, and every
/// stream whose send of it has not completed), so a stream that stops reading pins one slot,
/// never the pool. `capacity` bounds the total; `take()` returns nil when every slot is held
/// and the caller copies per stream as before. One anonymous mapping reserved up front
/// (`MAP_NORESERVE`); slots are reused last-freed first, so only as many pages are resident as
/// were ever held at once.
final class SharedFramePool {
    public let slotBytes: Int
    public let capacity: Int
    let base: UnsafeMutableRawPointer?
    var holders: [Int32]
    var freeStack: [Int32]
    public private(set) var inUse = 0

    public init(capacity: Int, slotBytes: Int) {
        precondition(capacity >= 0 && slotBytes > 0)
        self.capacity = capacity
        self.slotBytes = slotBytes
        if capacity > 0 {
            let bytes = capacity * slotBytes
            let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else { fatalError("shared frame pool: mmap of \(bytes) bytes failed") }
            base = p
        } else {
            base = nil
        }
        holders = [Int32](repeating: 0, count: capacity)
        freeStack = (0..<Int32(capacity)).reversed().map { $0 }
    }

    deinit { if let base { munmap(base, capacity * slotBytes) } }

    /// A free slot with `bytes` copied in and one holder (the caller); nil when `bytes` is
    /// larger than a slot or every slot is held.
    public func take(copying bytes: UnsafeRawBufferPointer) -> Int32? {
        guard bytes.count <= slotBytes, let i = freeStack.popLast() else { return nil }
        holders[Int(i)] = 1
        inUse += 1
        if bytes.count > 0 { pointer(i).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        return i
    }

    @inline(__always) public func hold(_ slot: Int32) {
        precondition(holders[Int(slot)] > 0, "shared frame slot \(slot) held after it was freed")
        holders[Int(slot)] += 1
    }

    /// Drops one holder; true when that was the last and the slot is free again.
    @discardableResult
    @inline(__always) public func release(_ slot: Int32) -> Bool {
        precondition(holders[Int(slot)] > 0, "shared frame slot \(slot) released more often than held")
        holders[Int(slot)] -= 1
        guard holders[Int(slot)] == 0 else { return false }
        freeStack.append(slot)
        inUse -= 1
        return true
    }

    public func holderCount(_ slot: Int32) -> Int { Int(holders[Int(slot)]) }

    @inline(__always) public func pointer(_ slot: Int32) -> UnsafeMutableRawPointer {
        base! + Int(slot) * slotBytes
    }
}
