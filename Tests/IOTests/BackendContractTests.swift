import CRinggateSys
import Glibc
import Testing
import IO

/// The backend contract on real sockets: io_uring and epoll must produce the same completions
/// for the same operations, since the engine's one state machine runs on either.
@Suite struct BackendContractTests {
    static let kernelBackends: [IOBackendKind] = [.ioUring, .epoll]

    @Test(arguments: kernelBackends)
    func acceptMultishotReportsEachConnectionAndStaysArmed(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let listener = rg_listen_tcp("127.0.0.1", 0, 16, 0)
        try #require(listener >= 0)
        defer { _ = rg_close(listener) }
        let port = rg_local_port(listener)
        #expect(io.acceptMultishot(listener: listener, tag: 7))
        var clients: [Int32] = []
        defer { for fd in clients { _ = rg_close(fd) } }
        for _ in 0..<3 { clients.append(rg_connect_tcp("127.0.0.1", port)) }
        let got = collect(io, count: 3)
        #expect(got.count == 3)
        for c in got {
            #expect(c.tag == 7)
            #expect(c.result >= 0)
            #expect(c.more)
            if c.result >= 0 { io.close(fd: c.result) }
        }
        // Still armed: a fourth connection is accepted without a new submission.
        clients.append(rg_connect_tcp("127.0.0.1", port))
        let fourth = collect(io, count: 1)
        #expect(fourth.count == 1 && fourth.first?.result ?? -1 >= 0 && fourth.first?.more == true)
        if let fd = fourth.first?.result, fd >= 0 { io.close(fd: fd) }
    }

    @Test(arguments: kernelBackends)
    func receiveMultishotDeliversIntoRecycledBuffers(kind: IOBackendKind) throws {
        let io = try makeBackend(kind, receiveBufferCount: 2, receiveBufferBytes: 64)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer) }
        #expect(io.receiveMultishot(fd: local, tag: 11))
        // Five messages through a pool of two: each buffer must come back to be used again.
        for i in 0..<5 {
            let message = "message \(i)"
            write(peer, message)
            let got = collect(io, count: 1)
            try #require(got.count == 1)
            #expect(got[0].tag == 11)
            #expect(got[0].more)
            #expect(got[0].buffer >= 0)
            #expect(got[0].result == Int32(message.utf8.count))
            if got[0].buffer >= 0 && got[0].result > 0 {
                let bytes = UnsafeRawBufferPointer(start: io.receiveBuffer(got[0].buffer), count: Int(got[0].result))
                #expect(String(decoding: bytes, as: UTF8.self) == message)
                io.recycle(got[0].buffer)
            }
        }
    }

    @Test(arguments: kernelBackends)
    func anEmptyPoolEndsTheReceiveWithENOBUFS(kind: IOBackendKind) throws {
        let io = try makeBackend(kind, receiveBufferCount: 2, receiveBufferBytes: 64)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer) }
        #expect(io.receiveMultishot(fd: local, tag: 12))
        var held: [Int32] = []
        for i in 0..<2 {
            write(peer, "held \(i)")
            let got = collect(io, count: 1)
            try #require(got.count == 1)
            #expect(got[0].result > 0 && got[0].more)
            held.append(got[0].buffer)
        }
        write(peer, "no room")
        let got = collect(io, count: 1)
        try #require(got.count == 1)
        #expect(got[0].tag == 12)
        #expect(got[0].result == -ENOBUFS)
        #expect(!got[0].more)
        // With the buffers back, a new receive gets the bytes that waited.
        for id in held { io.recycle(id) }
        #expect(io.receiveMultishot(fd: local, tag: 13))
        let again = collect(io, count: 1)
        try #require(again.count == 1)
        #expect(again[0].tag == 13 && again[0].result == Int32("no room".utf8.count))
        if again[0].buffer >= 0 { io.recycle(again[0].buffer) }
    }

    @Test(arguments: kernelBackends)
    func thePeersFINCompletesTheReceiveWithZero(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local) }
        #expect(io.receiveMultishot(fd: local, tag: 14))
        write(peer, "last words")
        _ = rg_close(peer)
        var got = collect(io, count: 2)
        for c in got where c.buffer >= 0 { io.recycle(c.buffer) }
        // The bytes may arrive in the same completion batch as the FIN or before it.
        got.removeAll { $0.result > 0 }
        try #require(got.count == 1)
        #expect(got[0].tag == 14 && got[0].result == 0 && !got[0].more)
    }

    @Test(arguments: kernelBackends)
    func aSendToAPeerThatStopsReadingCompletesOnceItReads(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let (local, peer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer) }
        let total = 4 << 20   // far more than a socket pair's buffers hold
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 1)
        defer { bytes.deallocate() }
        for i in 0..<total { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        #expect(io.send(fd: local, bytes.baseAddress!, total, tag: 21))
        // The peer does not read: the send waits, or completes short (the engine sends the rest).
        let stalled = collect(io, count: 1, withinNanoseconds: 200_000_000)
        var sent = 0
        var inFlight = true
        if let first = stalled.first {
            #expect(first.tag == 21)
            #expect(first.result > 0 && Int(first.result) < total)
            sent += Int(max(0, first.result))
            inFlight = false
        }
        // Now the peer reads: every byte arrives, in order, and each send completes.
        var received = 0
        var intact = true
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 1)
        defer { scratch.deallocate() }
        let deadline = io.now() + 10_000_000_000
        while received < total && io.now() < deadline {
            if !inFlight && sent < total {
                #expect(io.send(fd: local, bytes.baseAddress! + sent, total - sent, tag: 22))
                inFlight = true
            }
            let n = recv(peer, scratch.baseAddress, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                for i in 0..<n where scratch[i] != UInt8(truncatingIfNeeded: (received + i) &* 31) { intact = false }
                received += n
            }
            let done = io.wait(timeoutNanoseconds: 1_000_000)
            for i in 0..<done {
                let c = io.completions[i]
                #expect(c.result > 0)
                sent += Int(max(0, c.result))
                inFlight = false
            }
        }
        #expect(received == total)
        #expect(sent == total)
        #expect(intact)
    }

    @Test(arguments: kernelBackends)
    func aCancelEndsTheOperationWithECANCELED(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let (local, peer) = try socketPair()
        let (other, otherPeer) = try socketPair()
        defer { _ = rg_close(local); _ = rg_close(peer); _ = rg_close(other); _ = rg_close(otherPeer) }
        #expect(io.receiveMultishot(fd: local, tag: 31))
        #expect(io.receiveMultishot(fd: other, tag: 33))
        _ = io.wait(timeoutNanoseconds: 1_000_000)   // both armed, nothing to read
        #expect(io.cancel(fd: local, target: 31, tag: 32))
        #expect(io.cancelAll(fd: other, tag: 34))
        let got = collect(io, count: 4)
        let ended = got.filter { $0.tag == 31 || $0.tag == 33 }
        #expect(ended.count == 2)
        for c in ended { #expect(c.result == -ECANCELED && !c.more) }
        // The cancels' own completions (which the engine ignores) say they found their target.
        #expect(got.filter { ($0.tag == 32 || $0.tag == 34) && $0.result >= 0 }.count == 2)
        // Nothing is delivered to a cancelled receive.
        write(peer, "too late")
        #expect(collect(io, count: 1, withinNanoseconds: 50_000_000).isEmpty)
    }

    @Test(arguments: kernelBackends)
    func aTimeoutFiresWithETIMEAfterItsDelay(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let start = io.now()
        #expect(io.timeout(nanoseconds: 20_000_000, tag: 41))
        let got = collect(io, count: 1)
        try #require(got.count == 1)
        #expect(got[0].tag == 41 && got[0].result == -ETIME)
        #expect(io.now() - start >= 20_000_000)
    }

    @Test(arguments: kernelBackends)
    func aWakeFiresOncePerSignal(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let wake = rg_eventfd(0, 1)
        try #require(wake >= 0)
        defer { _ = rg_close(wake) }
        let scratch = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { scratch.deallocate() }
        for round in 0..<2 {
            scratch.pointee = 0
            #expect(io.readWake(fd: wake, into: scratch, tag: 51))
            #expect(collect(io, count: 1, withinNanoseconds: 30_000_000).isEmpty, "round \(round): woke unsignalled")
            _ = rg_eventfd_signal(wake)
            let got = collect(io, count: 1)
            try #require(got.count == 1)
            #expect(got[0].tag == 51 && got[0].result == 8)
            #expect(scratch.pointee == 1)
        }
    }

    /// TCP ends a read at the urgent mark (MSG_OOB) although more bytes are queued; the rest
    /// must still arrive without the peer sending anything else.
    @Test(arguments: kernelBackends)
    func bytesAfterAnUrgentByteArriveWithoutANewEdge(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        let listener = rg_listen_tcp("127.0.0.1", 0, 4, 0)
        try #require(listener >= 0)
        defer { _ = rg_close(listener) }
        let client = rg_connect_tcp("127.0.0.1", rg_local_port(listener))
        try #require(client >= 0)
        defer { _ = rg_close(client) }
        let server = accept(listener, nil, nil)
        try #require(server >= 0)
        defer { _ = rg_close(server) }
        // All three are queued before the first receive: the urgent byte sits mid-stream.
        write(client, "GET /healthz HTTP/1.1\r\n")
        var urgent = UInt8(ascii: "X")
        #expect(Glibc.send(client, &urgent, 1, Int32(MSG_OOB) | Int32(MSG_NOSIGNAL)) == 1)
        write(client, "Host: a\r\n\r\n")
        let expected = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"   // the urgent byte is out of band
        var text = ""
        #expect(io.receiveMultishot(fd: server, tag: 71))
        let deadline = io.now() + 2_000_000_000
        while text.utf8.count < expected.utf8.count && io.now() < deadline {
            let n = io.wait(timeoutNanoseconds: 20_000_000)
            for i in 0..<n {
                let c = io.completions[i]
                #expect(c.tag == 71 && c.result > 0 && c.more)
                guard c.buffer >= 0 else { continue }
                text += String(decoding: UnsafeRawBufferPointer(start: io.receiveBuffer(c.buffer), count: Int(max(0, c.result))), as: UTF8.self)
                io.recycle(c.buffer)
            }
        }
        #expect(text == expected)
    }

    @Test(arguments: kernelBackends)
    func aSubmissionThatFindsTheQueueFullReturnsFalse(kind: IOBackendKind) throws {
        let io = try makeBackend(kind)
        io.injectSubmissionQueueFull(count: 2)
        #expect(!io.timeout(nanoseconds: 1_000_000, tag: 61))
        #expect(!io.cancelAll(fd: 0, tag: 62))
        #expect(io.timeout(nanoseconds: 1_000_000, tag: 63))
        let got = collect(io, count: 1)
        #expect(got.map(\.tag) == [63])
    }
}

// MARK: - Helpers

func makeBackend(_ kind: IOBackendKind, receiveBufferCount: Int = 8, receiveBufferBytes: Int = 4096) throws -> any IOBackend {
    var configuration = IOBackendConfiguration()
    configuration.entries = 64
    configuration.receiveBufferCount = receiveBufferCount
    configuration.receiveBufferBytes = receiveBufferBytes
    configuration.completionBatch = 64
    return try IOSelection.make(kind, configuration: configuration)
}

/// Waits (bounded) until `count` completions arrived; returns what came.
func collect(_ io: any IOBackend, count: Int, withinNanoseconds: UInt64 = 2_000_000_000) -> [IOCompletion] {
    var got: [IOCompletion] = []
    let deadline = io.now() + withinNanoseconds
    while got.count < count && io.now() < deadline {
        let n = io.wait(timeoutNanoseconds: min(20_000_000, max(1, deadline &- io.now())))
        for i in 0..<n { got.append(io.completions[i]) }
    }
    return got
}

func socketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
}

func write(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    _ = Glibc.send(fd, &bytes, bytes.count, Int32(MSG_NOSIGNAL))
}
