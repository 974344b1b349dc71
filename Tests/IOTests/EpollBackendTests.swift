import CRinggateSys
import Glibc
import Testing
import IO

/// What only the epoll backend promises on top of the contract: fairness between descriptors,
/// one send in flight per descriptor, completions only from `wait`.
@Suite struct EpollBackendTests {
    @Test func eachWaitServesAReadableConnectionOnceSoABusyOneCannotStarveTheOthers() throws {
        let io = try makeBackend(.epoll, receiveBufferCount: 16, receiveBufferBytes: 64)
        let (a, aPeer) = try socketPair()
        let (b, bPeer) = try socketPair()
        defer { for fd in [a, aPeer, b, bPeer] { _ = rg_close(fd) } }
        #expect(io.receiveMultishot(fd: a, tag: 1))
        #expect(io.receiveMultishot(fd: b, tag: 2))
        write(aPeer, String(repeating: "a", count: 64 * 3))   // three buffers' worth each
        write(bPeer, String(repeating: "b", count: 64 * 3))
        var rounds: [[UInt64]] = []
        while rounds.count < 3 {
            let n = io.wait(timeoutNanoseconds: 1_000_000_000)
            try #require(n > 0)
            rounds.append((0..<n).map { io.completions[$0].tag }.sorted())
            for i in 0..<n where io.completions[i].buffer >= 0 { io.recycle(io.completions[i].buffer) }
        }
        #expect(rounds == [[1, 2], [1, 2], [1, 2]])
    }

    /// The descriptor table starts small and grows with the descriptors used (a high
    /// RLIMIT_NOFILE must not cost memory up front): a descriptor far above it still works,
    /// and one queued before the growth is still served after it.
    @Test(.enabled(if: rg_nofile_limit() > 4200))
    func aDescriptorAboveTheInitialTableGrowsItAndWorks() throws {
        let io = try makeBackend(.epoll, receiveBufferCount: 4, receiveBufferBytes: 64)
        let (low, lowPeer) = try socketPair()
        let (b, bPeer) = try socketPair()
        let high = dup2(b, 4100)
        try #require(high == 4100)
        _ = rg_close(b)
        defer { for fd in [low, lowPeer, high, bPeer] { _ = rg_close(fd) } }
        write(lowPeer, "low")
        #expect(io.receiveMultishot(fd: low, tag: 1))     // queued (readable) before the growth
        write(bPeer, "high")
        #expect(io.receiveMultishot(fd: high, tag: 2))
        var tags: [UInt64: Int32] = [:]
        let deadline = rg_monotonic_ns() + 2_000_000_000
        while tags.count < 2 && rg_monotonic_ns() < deadline {
            let n = io.wait(timeoutNanoseconds: 100_000_000)
            for i in 0..<n {
                tags[io.completions[i].tag] = io.completions[i].result
                if io.completions[i].buffer >= 0 { io.recycle(io.completions[i].buffer) }
            }
        }
        #expect(tags == [1: 3, 2: 4])
    }

    @Test func aSecondSendOnTheSameDescriptorIsRefusedUntilTheFirstCompletes() throws {
        let io = try makeBackend(.epoll)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer) }
        let bytes: [UInt8] = Array("hello".utf8)
        try bytes.withUnsafeBytes { p in
            #expect(io.send(fd: local, p.baseAddress!, p.count, tag: 5))
            #expect(!io.send(fd: local, p.baseAddress!, p.count, tag: 6))
            let got = collect(io, count: 1)
            try #require(got.count == 1)
            #expect(got[0].tag == 5 && got[0].result == 5)
            #expect(io.send(fd: local, p.baseAddress!, p.count, tag: 7))
            #expect(collect(io, count: 1).map(\.tag) == [7])
        }
    }

    @Test func aCancelCompletesFromTheNextWaitNotInsideTheCall() throws {
        let io = try makeBackend(.epoll)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer) }
        #expect(io.receiveMultishot(fd: local, tag: 8))
        #expect(io.cancelAll(fd: local, tag: 9))
        let n = io.wait(timeoutNanoseconds: 1_000_000_000)
        let got = (0..<n).map { io.completions[$0] }
        #expect(got.contains(IOCompletion(tag: 8, result: -ECANCELED)))
        #expect(got.contains(IOCompletion(tag: 9, result: 1)))
        // Nothing is left to cancel: the cancel says so, like io_uring's.
        #expect(io.cancelAll(fd: local, tag: 10))
        #expect(collect(io, count: 1).first == IOCompletion(tag: 10, result: -ENOENT))
    }

    @Test func closeForgetsTheDescriptorSoItsNumberCanBeUsedAgain() throws {
        let io = try makeBackend(.epoll)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(peer) }
        #expect(io.receiveMultishot(fd: local, tag: 11))
        #expect(io.cancelAll(fd: local, tag: 12))
        _ = collect(io, count: 2)
        io.close(fd: local)
        // The next socket pair likely reuses the number; its receive starts clean.
        let (again, againPeer) = try socketPair()
        defer { _ = rg_close(again); _ = rg_close(againPeer) }
        #expect(io.receiveMultishot(fd: again, tag: 13))
        write(againPeer, "fresh")
        let got = collect(io, count: 1)
        try #require(got.count == 1)
        #expect(got[0].tag == 13 && got[0].result == 5)
    }

    /// A descriptor the table can never hold is a permanent error, not a full queue: the
    /// submission is taken and completes with -EBADF (the engine then closes the connection
    /// instead of retrying forever).
    @Test func aDescriptorPastTheTableLimitCompletesWithEBADFInsteadOfRefusing() throws {
        let io = try makeBackend(.epoll)
        let beyond = Int32(truncatingIfNeeded: rg_nofile_limit() + 16)
        let bytes: [UInt8] = Array("x".utf8)
        try bytes.withUnsafeBytes { p in
            #expect(io.receiveMultishot(fd: beyond, tag: 81))
            #expect(io.send(fd: beyond, p.baseAddress!, p.count, tag: 82))
            let got = collect(io, count: 2)
            try #require(got.count == 2)
            #expect(Set(got.map(\.tag)) == [81, 82])
            for c in got { #expect(c.result == -EBADF && !c.more) }
        }
    }

    /// epoll_ctl refusing a descriptor (ENOSPC at fs.epoll.max_user_watches) fails the
    /// operation with that error from the next `wait`; it does not look like a full queue.
    @Test func aRefusedRegistrationCompletesReceiveAndSendWithItsError() throws {
        let backend = try EpollBackend(configuration: IOBackendConfiguration())
        let io: any IOBackend = backend
        let (a, aPeer) = try socketPair()
        let (b, bPeer) = try socketPair()
        defer { for fd in [a, aPeer, b, bPeer] { _ = rg_close(fd) } }
        let bytes: [UInt8] = Array("hello".utf8)
        try bytes.withUnsafeBytes { p in
            backend.injectRegistrationFailure(errno: ENOSPC)
            #expect(io.receiveMultishot(fd: a, tag: 91))
            backend.injectRegistrationFailure(errno: ENOMEM)
            #expect(io.send(fd: b, p.baseAddress!, p.count, tag: 92))
            let got = collect(io, count: 2)
            try #require(got.count == 2)
            #expect(got.contains(IOCompletion(tag: 91, result: -ENOSPC)))
            #expect(got.contains(IOCompletion(tag: 92, result: -ENOMEM)))
            // Nothing was registered: once epoll accepts the descriptor, it works.
            #expect(io.send(fd: b, p.baseAddress!, p.count, tag: 93))
            #expect(collect(io, count: 1) == [IOCompletion(tag: 93, result: 5)])
        }
    }

    /// More readable sockets than receive buffers in one `wait`, every buffer given back after
    /// each `wait`: no buffer is really held, so no receive may end with -ENOBUFS; the sockets
    /// the pool could not serve this time are served by the next `wait`.
    @Test func aWaitWithMoreReadableSocketsThanBuffersDefersTheRestInsteadOfENOBUFS() throws {
        var configuration = IOBackendConfiguration()
        configuration.entries = 64
        configuration.receiveBufferCount = 256
        configuration.receiveBufferBytes = 64
        configuration.completionBatch = 512
        let io = try IOSelection.make(.epoll, configuration: configuration)
        let sockets = 300
        var pairs: [(Int32, Int32)] = []
        defer { for (a, b) in pairs { _ = rg_close(a); _ = rg_close(b) } }
        for _ in 0..<sockets { pairs.append(try socketPair()) }
        // Two buffers' worth each, so a served socket stays readable and is queued again
        // alongside the ones the first epoll_wait (256 events) did not report.
        let message = String(repeating: "m", count: 128)
        for (i, (local, peer)) in pairs.enumerated() {
            write(peer, message)
            #expect(io.receiveMultishot(fd: local, tag: UInt64(i)))
        }
        var received = [Int](repeating: 0, count: sockets)
        var noBuffers = 0
        let deadline = io.now() + 5_000_000_000
        while received.reduce(0, +) < sockets * 128 && io.now() < deadline {
            let n = io.wait(timeoutNanoseconds: 20_000_000)
            for i in 0..<n {
                let c = io.completions[i]
                if c.result == -ENOBUFS { noBuffers += 1 }
                if c.result > 0 && Int(c.tag) < sockets { received[Int(c.tag)] += Int(c.result) }
                if c.buffer >= 0 { io.recycle(c.buffer) }
                // An ended receive is armed again, as the engine does.
                if !c.more && Int(c.tag) < sockets { _ = io.receiveMultishot(fd: pairs[Int(c.tag)].0, tag: c.tag) }
            }
        }
        #expect(noBuffers == 0)
        #expect(received.allSatisfy { $0 == 128 })
    }
}
