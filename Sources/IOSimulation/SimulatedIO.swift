import Glibc
import IO

/// A seeded, deterministic fake kernel for the simulation tests: fake descriptors, simulated
/// peers the test drives, a manual clock, and faults drawn from one PRNG. No sockets, no real
/// time, no threads: the same seed gives the same schedule, byte for byte.
///
/// Completion semantics follow io_uring's: multishot accept and receive (`more` while armed),
/// `-ENOBUFS` ending a receive when the pool is empty, one completion per send (short or
/// pending while the peer's window is full), `-ECANCELED` for what a cancel ended, `-ETIME`
/// for a timeout. `shutdown` completes what is pending the way the kernel does (a receive gets
/// 0, a send `-EPIPE`).
public final class SimulatedIO: IOBackend {
    /// Faults, each a chance in a thousand per opportunity.
    public struct Faults: Sendable, Equatable {
        public var shortSendPerMille = 0
        public var sendEAGAINPerMille = 0
        public var sendEINTRPerMille = 0
        public var submissionQueueFullPerMille = 0
        public var acceptEMFILEPerMille = 0
        /// Per turn: the clock jumps by up to `clockJumpMaxNanoseconds`.
        public var clockJumpPerMille = 0
        public var clockJumpMaxNanoseconds: UInt64 = 30_000_000_000
        /// Per turn the clock also moves by up to this much (time spent in the loop).
        public var turnJitterMaxNanoseconds: UInt64 = 2_000_000
        public init() {}

        /// Every fault at a rate that still lets schedules make progress.
        public static var mixed: Faults {
            var f = Faults()
            f.shortSendPerMille = 200
            f.sendEAGAINPerMille = 20
            f.sendEINTRPerMille = 20
            f.submissionQueueFullPerMille = 15
            f.acceptEMFILEPerMille = 30
            f.clockJumpPerMille = 5
            return f
        }

        /// Faults often enough that nearly every operation meets one.
        public static var harsh: Faults {
            var f = Faults()
            f.shortSendPerMille = 600
            f.sendEAGAINPerMille = 100
            f.sendEINTRPerMille = 100
            f.submissionQueueFullPerMille = 150
            f.acceptEMFILEPerMille = 150
            f.clockJumpPerMille = 30
            f.clockJumpMaxNanoseconds = 5_000_000_000
            return f
        }
    }

    public struct Violation: Sendable, CustomStringConvertible {
        public let turn: Int
        public let message: String
        public var description: String { "turn \(turn): \(message)" }
    }

    enum FileKind { case listener, wake, reserve, connection(SimPeer) }
    enum OperationKind {
        case accept
        case receive
        case send(UnsafeRawPointer, Int)
        case readWake(UnsafeMutableRawPointer)
        case timeout(deadline: UInt64)
    }
    struct Operation {
        var fd: Int32
        var tag: UInt64
        var kind: OperationKind
    }
    struct Cancel {
        var fd: Int32
        var target: UInt64?
        var tag: UInt64
    }

    public var kind: IOBackendKind { .simulated }
    public let seed: UInt64
    public var faults: Faults
    public private(set) var random: SimRandom
    public private(set) var clockNanoseconds: UInt64
    public private(set) var turn = 0
    /// Timeouts that completed: the loop's ticks, so a test can give the loop a number of
    /// chances to act that a clock jump cannot compress into one turn.
    public private(set) var timersFired = 0
    /// Submissions refused as if the queue were full: each may cost the loop a turn.
    public private(set) var submissionsRefused = 0
    /// Called at the start of every `wait`: the test moves its peers and checks invariants.
    public var onTurn: ((SimulatedIO) -> Void)?
    /// Every completion handed out, in order (for the replay check); only when enabled.
    public var recordsTranscript = false
    public private(set) var transcript: [String] = []
    /// A running hash of every completion and clock value.
    public private(set) var transcriptHash: UInt64 = 0xcbf2_9ce4_8422_2325
    /// Misuses of the backend seen (a close with an operation pending, a recycle of a free buffer).
    public private(set) var violations: [Violation] = []

    var files: [Int32: FileKind] = [:]
    var wakeCounters: [Int32: UInt64] = [:]
    var shutRead: Set<Int32> = []
    var shutWrite: Set<Int32> = []
    var operations: [Operation] = []
    var cancels: [Cancel] = []
    var ready: [IOCompletion] = []
    var backlog: [SimPeer] = []
    public private(set) var peers: [SimPeer] = []
    var injectedQueueFull: UInt32 = 0

    public let completions: UnsafeMutablePointer<IOCompletion>
    let completionBatch: Int
    public let receiveBufferBytes: Int
    let receiveBufferCount: Int
    let bufferMemory: UnsafeMutableRawPointer
    var freeBuffers: [Int32]
    var bufferOut: [Bool]

    public init(seed: UInt64, faults: Faults = Faults(), configuration: IOBackendConfiguration = IOBackendConfiguration(),
                startNanoseconds: UInt64 = 1_000_000_000_000) {
        self.seed = seed
        self.faults = faults
        random = SimRandom(seed: seed)
        clockNanoseconds = startNanoseconds
        completionBatch = max(1, configuration.completionBatch)
        completions = .allocate(capacity: completionBatch)
        receiveBufferBytes = configuration.receiveBufferBytes
        receiveBufferCount = configuration.receiveBufferCount
        bufferMemory = .allocate(byteCount: receiveBufferBytes * receiveBufferCount, alignment: 64)
        freeBuffers = (0..<Int32(receiveBufferCount)).reversed().map { $0 }
        bufferOut = Array(repeating: false, count: receiveBufferCount)
    }

    deinit {
        completions.deallocate()
        bufferMemory.deallocate()
    }

    // MARK: - Descriptors the test creates

    public func makeListener() -> Int32 { allocate(.listener) }

    public func makeWakeDescriptor() -> Int32 {
        let fd = allocate(.wake)
        wakeCounters[fd] = 0
        return fd
    }

    /// Signals an eventfd (what the ingest does after appending).
    public func signal(wake fd: Int32) { wakeCounters[fd, default: 0] += 1 }

    func allocate(_ kind: FileKind) -> Int32 {
        var fd: Int32 = 10
        while files[fd] != nil { fd += 1 }   // like the kernel: the lowest free number
        files[fd] = kind
        return fd
    }

    func peer(_ fd: Int32) -> SimPeer? {
        if case .connection(let p)? = files[fd] { return p }
        return nil
    }

    // MARK: - Peers the test drives

    /// A client connecting: it waits in the listen backlog until accepted.
    public func connect(sendBufferBytes: Int = 16 << 10, readBytesPerTurn: Int = 1 << 20) -> SimPeer {
        let p = SimPeer(id: peers.count, sendBufferBytes: sendBufferBytes, readBytesPerTurn: readBytesPerTurn)
        peers.append(p)
        backlog.append(p)
        return p
    }

    public func write(_ p: SimPeer, _ bytes: [UInt8]) {
        guard !p.finSent, !p.resetSent, !p.vanished, !p.serverClosed else { return }
        p.toServer.append(contentsOf: bytes)
    }

    /// Half-close: the peer sends FIN after what it wrote.
    public func finish(_ p: SimPeer) { p.finSent = true }

    /// The peer resets: ECONNRESET on the server's next receive or send; nothing more is read.
    public func reset(_ p: SimPeer) {
        guard !p.serverClosed else { return }
        p.resetSent = true
        p.toServer.removeAll()
        p.toServerOffset = 0
        p.dropUnread()
    }

    /// The peer's host vanishes (half-open): no more reads, no acknowledgements, no FIN.
    public func vanish(_ p: SimPeer) {
        p.vanished = true
        p.readBytesPerTurn = 0
    }

    public var receiveBuffersInUse: Int { receiveBufferCount - freeBuffers.count }
    public var pendingOperationCount: Int { operations.count }
    /// Descriptors open besides the listener, wake and reserve ones: the connections.
    public var openConnectionDescriptors: Int {
        files.values.reduce(0) { n, k in if case .connection = k { return n + 1 } else { return n } }
    }

    /// The operations pending on `fd`, for failure messages.
    public func describeOperations(fd: Int32) -> String {
        let list = operations.filter { $0.fd == fd }.map { op -> String in
            let what: String
            switch op.kind {
            case .accept: what = "accept"
            case .receive: what = "receive"
            case .send(_, let n): what = "send(\(n))"
            case .readWake: what = "readWake"
            case .timeout: what = "timeout"
            }
            return "\(what) tag=\(String(op.tag, radix: 16))"
        }
        return "[\(list.joined(separator: ", "))]"
    }

    // MARK: - Submissions

    func submissionAllowed() -> Bool {
        if injectedQueueFull > 0 {
            injectedQueueFull -= 1
            submissionsRefused += 1
            return false
        }
        if random.chance(faults.submissionQueueFullPerMille) {
            submissionsRefused += 1
            return false
        }
        return true
    }

    func submit(_ op: Operation) -> Bool {
        guard submissionAllowed() else { return false }
        operations.append(op)
        return true
    }

    public func acceptMultishot(listener: Int32, tag: UInt64) -> Bool {
        submit(Operation(fd: listener, tag: tag, kind: .accept))
    }
    public func receiveMultishot(fd: Int32, tag: UInt64) -> Bool {
        submit(Operation(fd: fd, tag: tag, kind: .receive))
    }
    public func send(fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int, tag: UInt64) -> Bool {
        submit(Operation(fd: fd, tag: tag, kind: .send(bytes, count)))
    }
    public func readWake(fd: Int32, into scratch: UnsafeMutableRawPointer, tag: UInt64) -> Bool {
        submit(Operation(fd: fd, tag: tag, kind: .readWake(scratch)))
    }
    public func timeout(nanoseconds: UInt64, tag: UInt64) -> Bool {
        submit(Operation(fd: -1, tag: tag, kind: .timeout(deadline: clockNanoseconds &+ nanoseconds)))
    }
    public func cancelAll(fd: Int32, tag: UInt64) -> Bool {
        guard submissionAllowed() else { return false }
        cancels.append(Cancel(fd: fd, target: nil, tag: tag))
        return true
    }
    public func cancel(fd: Int32, target: UInt64, tag: UInt64) -> Bool {
        guard submissionAllowed() else { return false }
        cancels.append(Cancel(fd: fd, target: target, tag: tag))
        return true
    }
    public func injectSubmissionQueueFull(count: UInt32) { injectedQueueFull = count }

    // MARK: - The turn

    public func wait(timeoutNanoseconds: UInt64) -> Int {
        turn += 1
        onTurn?(self)
        clockNanoseconds &+= faults.turnJitterMaxNanoseconds == 0 ? 0
            : random.next() % (faults.turnJitterMaxNanoseconds + 1)
        if random.chance(faults.clockJumpPerMille) {
            clockNanoseconds &+= random.next() % (faults.clockJumpMaxNanoseconds + 1)
        }
        for p in peers where !p.vanished && p.readBytesPerTurn > 0 { p.read(p.readBytesPerTurn) }
        if ready.isEmpty { collect() }
        if ready.isEmpty {
            // Nothing is ready: time passes to the next timer (or the wait's own timeout).
            var next: UInt64? = nil
            for op in operations {
                if case .timeout(let d) = op.kind { next = min(next ?? d, d) }
            }
            if let next { clockNanoseconds = max(clockNanoseconds, next) }
            else { clockNanoseconds &+= max(timeoutNanoseconds, 1_000_000) }
            collect()
        }
        let n = min(ready.count, completionBatch)
        for i in 0..<n {
            let c = ready[i]
            completions[i] = c
            note(c)
        }
        ready.removeFirst(n)
        return n
    }

    func note(_ c: IOCompletion) {
        for v in [c.tag, UInt64(bitPattern: Int64(c.result)), UInt64(bitPattern: Int64(c.buffer)),
                  c.more ? 1 : 0, clockNanoseconds] {
            transcriptHash = (transcriptHash ^ v) &* 0x100_0000_01b3
        }
        if recordsTranscript {
            transcript.append("t=\(turn) clock=\(clockNanoseconds) tag=\(String(c.tag, radix: 16)) res=\(c.result) buf=\(c.buffer) more=\(c.more)")
        }
    }

    /// Moves every operation that can finish now to `ready`, in submission order.
    func collect() {
        for c in cancels { performCancel(c) }
        cancels.removeAll()
        var kept: [Operation] = []
        kept.reserveCapacity(operations.count)
        for op in operations {
            if !perform(op) { kept.append(op) }
        }
        // Operations submitted while performing (none today) keep their order behind these.
        operations = kept
    }

    func performCancel(_ c: Cancel) {
        var matched: Int32 = 0
        operations.removeAll { op in
            guard op.fd == c.fd, c.target == nil || c.target == op.tag else { return false }
            if case .timeout = op.kind { return false }
            ready.append(IOCompletion(tag: op.tag, result: -ECANCELED))
            matched += 1
            return true
        }
        ready.append(IOCompletion(tag: c.tag, result: matched > 0 ? 0 : -ENOENT))
    }

    /// Whether `op` finished (its completion is in `ready`); a multishot that produced a
    /// completion and stays armed is kept by returning false.
    func perform(_ op: Operation) -> Bool {
        switch op.kind {
        case .timeout(let deadline):
            guard clockNanoseconds >= deadline else { return false }
            timersFired += 1
            ready.append(IOCompletion(tag: op.tag, result: -ETIME))
            return true
        case .readWake(let scratch):
            guard let count = wakeCounters[op.fd], count > 0 else { return false }
            scratch.storeBytes(of: count, as: UInt64.self)
            wakeCounters[op.fd] = 0
            ready.append(IOCompletion(tag: op.tag, result: 8))
            return true
        case .accept:
            return performAccept(op)
        case .receive:
            return performReceive(op)
        case .send(let bytes, let count):
            return performSend(op, bytes, count)
        }
    }

    func performAccept(_ op: Operation) -> Bool {
        var taken = 0
        let most = random.within(1...4)
        while !backlog.isEmpty && taken < most {
            if random.chance(faults.acceptEMFILEPerMille) {
                ready.append(IOCompletion(tag: op.tag, result: -EMFILE, more: false))
                return true   // an error ends a multishot accept
            }
            let p = backlog.removeFirst()
            let fd = allocate(.connection(p))
            p.serverFD = fd
            ready.append(IOCompletion(tag: op.tag, result: fd, more: true))
            taken += 1
        }
        return false
    }

    func performReceive(_ op: Operation) -> Bool {
        guard let p = peer(op.fd) else {
            ready.append(IOCompletion(tag: op.tag, result: -EBADF))
            return true
        }
        if p.resetSent {
            ready.append(IOCompletion(tag: op.tag, result: -ECONNRESET))
            return true
        }
        if shutRead.contains(op.fd) {
            ready.append(IOCompletion(tag: op.tag, result: 0))
            return true
        }
        var chunks = random.within(1...3)
        while chunks > 0 && p.pendingToServer > 0 {
            chunks -= 1
            guard let buffer = freeBuffers.popLast() else {
                ready.append(IOCompletion(tag: op.tag, result: -ENOBUFS))
                return true   // the pool is empty: the multishot receive ends
            }
            bufferOut[Int(buffer)] = true
            let most = min(p.pendingToServer, receiveBufferBytes)
            // Split at random points: a third of the time a short piece.
            let n = random.chance(333) ? random.within(1...most) : most
            let slice = p.takeToServer(n)
            slice.withUnsafeBytes { src in
                receiveBuffer(buffer).copyMemory(from: src.baseAddress!, byteCount: n)
            }
            ready.append(IOCompletion(tag: op.tag, result: Int32(n), buffer: buffer, more: true))
        }
        if p.pendingToServer == 0 && p.finSent && chunks > 0 {
            ready.append(IOCompletion(tag: op.tag, result: 0))
            return true
        }
        return false
    }

    func performSend(_ op: Operation, _ bytes: UnsafeRawPointer, _ count: Int) -> Bool {
        guard let p = peer(op.fd) else {
            ready.append(IOCompletion(tag: op.tag, result: -EBADF))
            return true
        }
        if p.resetSent {
            ready.append(IOCompletion(tag: op.tag, result: -ECONNRESET))
            return true
        }
        if shutWrite.contains(op.fd) {
            ready.append(IOCompletion(tag: op.tag, result: -EPIPE))
            return true
        }
        if count == 0 {
            ready.append(IOCompletion(tag: op.tag, result: 0))
            return true
        }
        if random.chance(faults.sendEAGAINPerMille) {
            ready.append(IOCompletion(tag: op.tag, result: -EAGAIN))
            return true
        }
        if random.chance(faults.sendEINTRPerMille) {
            ready.append(IOCompletion(tag: op.tag, result: -EINTR))
            return true
        }
        let space = p.sendBufferBytes - p.unreadBytes
        guard space > 0 else { return false }   // the peer's window is shut: the send waits
        var n = min(count, space)
        if random.chance(faults.shortSendPerMille) { n = random.within(1...n) }
        p.unread.append(contentsOf: UnsafeRawBufferPointer(start: bytes, count: n))
        ready.append(IOCompletion(tag: op.tag, result: Int32(n)))
        return true
    }

    // MARK: - Receive buffers

    public func receiveBuffer(_ id: Int32) -> UnsafeMutableRawPointer {
        bufferMemory + Int(id) * receiveBufferBytes
    }

    public func recycle(_ id: Int32) {
        guard id >= 0, Int(id) < receiveBufferCount, bufferOut[Int(id)] else {
            violate("recycle of receive buffer \(id), which is not out")
            return
        }
        bufferOut[Int(id)] = false
        freeBuffers.append(id)
    }

    // MARK: - Synchronous socket calls

    public func tuneAccepted(fd: Int32, options: AcceptedSocketOptions) {}

    public func shutdown(fd: Int32, how: Int32) {
        guard let p = peer(fd) else { return }
        if how == 0 || how == 2 { shutRead.insert(fd) }
        if how == 1 || how == 2 {
            shutWrite.insert(fd)
            p.serverFIN = true
        }
    }

    public func close(fd: Int32) {
        guard let kind = files[fd] else {
            violate("close of fd \(fd), which is not open")
            return
        }
        if operations.contains(where: { $0.fd == fd }) {
            violate("close of fd \(fd) with an operation pending on it")
            operations.removeAll { $0.fd == fd }
        }
        files[fd] = nil
        wakeCounters[fd] = nil
        shutRead.remove(fd)
        shutWrite.remove(fd)
        if case .connection(let p) = kind {
            p.serverClosed = true
            p.closedAtNanoseconds = clockNanoseconds
            if p.pendingToServer > 0 && !p.resetSent {
                // Unread input at close: the kernel answers with a reset, dropping what the
                // peer had not read yet.
                p.resetByServer = true
                p.dropUnread()
            }
        }
    }

    public func acceptNow(listener: Int32) -> Int32 {
        guard !backlog.isEmpty else { return -1 }
        let p = backlog.removeFirst()
        let fd = allocate(.connection(p))
        p.serverFD = fd
        return fd
    }

    public func sendNow(fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let p = peer(fd), !p.resetSent, !shutWrite.contains(fd) else { return }
        let n = min(bytes.count, p.sendBufferBytes - p.unreadBytes)
        if n > 0 { p.unread.append(contentsOf: bytes.prefix(n)) }
    }

    public func openReserveDescriptor() -> Int32 { allocate(.reserve) }

    public func tcpProgress(fd: Int32) -> TCPProgressReading? {
        guard let p = peer(fd) else { return nil }
        // A peer that stopped reading acknowledged what fills its window (nothing in flight);
        // a vanished one acknowledges nothing, so what it has not read is in flight.
        let inFlight = p.vanished && p.unreadBytes > 0 ? UInt32((p.unreadBytes + 1447) / 1448) : 0
        return TCPProgressReading(bytesAcked: p.consumedBytes, unackedSegments: inFlight,
                                  established: !p.resetSent && !p.finSent)
    }

    public func kernelQueuedBytes(fd: Int32) -> Int { peer(fd)?.unreadBytes ?? 0 }

    public func now() -> UInt64 { clockNanoseconds }

    /// Moves the manual clock (the test's own passage of time).
    public func advance(nanoseconds: UInt64) { clockNanoseconds &+= nanoseconds }

    func violate(_ message: String) { violations.append(Violation(turn: turn, message: message)) }
}
