import CRinggateSys
import Glibc
import Logging
import RingLog
import Testing
import WireProtocol
@testable import HTTPServer
import IO

/// The engine's completion handling driven by synthetic completions (no kernel in the loop):
/// a connection on one end of a socket pair, the engine's `handle` fed exactly the completions
/// a fault would produce.
@Suite struct HTTPEngineCompletionTests {
    final class Fixture {
        let log = HeapLog()
        let counters: CounterBlock
        let engine: HTTPEngine
        let listenFD: Int32
        var peers: [Int32] = []

        init(maxPendingBodyBytes: Int = 1 << 20, sharedFrames: Int = 0) throws {
            counters = CounterBlock(region: log.region, process: ProcessBlock.worker(0))
            listenFD = rg_listen_tcp("127.0.0.1", 0, 16, 0)
            var config = HTTPEngine.Configuration(maxConnections: 4, headerTimeoutNanoseconds: 5_000_000_000,
                                                  limits: HTTPLimits(maxBodyBytes: 1 << 20), sendBufferBytes: 4096,
                                                  sendBufferCount: 4)
            config.maxPendingBodyBytes = maxPendingBodyBytes
            config.sharedFrameCount = sharedFrames
            config.sharedFrameBytes = 256
            var io = IOBackendConfiguration()
            io.entries = 64
            io.receiveBufferCount = 8
            engine = HTTPEngine(configuration: config, io: try UringBackend(configuration: io), listenFD: listenFD,
                                wakeFD: -1, counters: counters, logger: Logger(label: "test"))
        }

        deinit {
            for fd in peers { _ = rg_close(fd) }
            _ = rg_close(listenFD)
        }

        /// Admits the server end of a fresh socket pair; returns its table index.
        func connect() -> Int32 {
            var fds: [Int32] = [-1, -1]
            precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
            peers.append(fds[1])
            engine.admit(fds[0])
            let conn = Int32(engine.liveCount - 1)
            precondition(engine.table[Int(conn)].fd == fds[0] && engine.table[Int(conn)].recvArmed)
            return conn
        }

        func complete(_ op: IOOperation, _ conn: Int32, res: Int32, more: Bool = false) {
            let ud = UserData.pack(op, connection: UInt32(conn), generation: engine.table[Int(conn)].generation)
            engine.handle(IOCompletion(tag: ud, result: res, more: more))
        }
    }

    @Test func aClosingConnectionWhoseReceiveEndsWithENOBUFSIsFreed() throws {
        let f = try Fixture()
        let gaugeBefore = f.counters.get(.connectionsHTTP)
        let conn = f.connect()
        #expect(f.engine.reserveBody(conn, bytes: 1000))
        f.engine.beginClose(conn, reason: .peerClosed)
        #expect(f.engine.connectionCount == 1, "waits for its receive to end")
        f.complete(.recv, conn, res: -ENOBUFS)
        #expect(f.engine.connectionCount == 0)
        #expect(f.engine.pendingBodyBytes == 0)
        #expect(f.counters.get(.connectionsHTTP) == gaugeBefore)
        #expect(f.engine.table[Int(conn)].phase == .free)
    }

    @Test func aClosingConnectionWhosePauseCancelCompletesIsFreed() throws {
        let f = try Fixture()
        let gaugeBefore = f.counters.get(.connectionsHTTP)
        let conn = f.connect()
        #expect(f.engine.reserveBody(conn, bytes: 1000))
        // Input was paused (pipelining cap) and the receive is being cancelled when it closes.
        f.engine.table[Int(conn)].paused = true
        f.engine.cancelRecv(conn)
        #expect(f.engine.table[Int(conn)].recvCancelPending)
        f.engine.beginClose(conn, reason: .peerClosed)
        f.complete(.recv, conn, res: -ECANCELED)
        #expect(f.engine.connectionCount == 0)
        #expect(f.engine.pendingBodyBytes == 0)
        #expect(f.counters.get(.connectionsHTTP) == gaugeBefore)
    }

    @Test func queuedPipelinedAnswersLeaveOnlyFromTheTurnEndFlush() throws {
        let f = try Fixture()
        let conn = f.connect()
        let first = HTTPResponseWriter.json(status: 201, body: Array("{}".utf8), keepAlive: true, extraHeaders: [])
        f.engine.respond(conn, first)
        f.engine.flushDirty()
        #expect(f.engine.table[Int(conn)].sendInFlight)
        f.engine.respond(conn, first)   // a pipelined answer, queued behind the one in flight
        f.engine.flushDirty()           // nothing can be sent while a send is in flight
        // The first send completes during the next turn's completion handling: the queued
        // answer must wait for the turn end (where the ingest's fdatasync runs).
        f.complete(.send, conn, res: Int32(first.count))
        #expect(!f.engine.table[Int(conn)].sendInFlight, "sent before the turn ended")
        #expect(f.engine.table[Int(conn)].dirty)
        f.engine.flushDirty()
        #expect(f.engine.table[Int(conn)].sendInFlight)
    }
}

@Suite struct HTTPEngineReserveDescriptorTests {
    @Test func aReserveDescriptorThatCouldNotBeReopenedIsRetriedFromTheTick() throws {
        let f = try HTTPEngineCompletionTests.Fixture()
        #expect(f.engine.reserveFD >= 0)
        // As after a shed whose reopen failed with ENFILE.
        _ = rg_close(f.engine.reserveFD)
        f.engine.reserveFD = -1
        f.engine.tick()
        #expect(f.engine.reserveFD >= 0, "shedding at EMFILE stays off for the life of the process")
    }
}

@Suite struct HTTPEnginePipeliningCountTests {
    /// `--max-pipelined-requests` counts answers not yet sent: a client that keeps two
    /// requests in flight, so the output is never completely empty, is never paused.
    @Test func aClientPipeliningTwoDeepIsNeverPaused() throws {
        let f = try HTTPEngineCompletionTests.Fixture()
        let delegate = Answering()
        f.engine.delegate = delegate
        let conn = f.connect()
        let request = Array("GET /x HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        func feed() { request.withUnsafeBytes { f.engine.feed(conn, $0) } }
        feed()
        f.engine.flushDirty()            // answer 1 in flight
        for _ in 0..<100 {
            feed()                       // the next request arrives while the previous answer is being sent
            #expect(!f.engine.table[Int(conn)].paused)
            let inFlight = f.engine.table[Int(conn)].out!.count
            f.complete(.send, conn, res: Int32(inFlight))
            f.engine.flushDirty()        // the turn ends: the queued answer goes out
            #expect(f.engine.table[Int(conn)].sendInFlight)
        }
        #expect(delegate.requests == 101)
        #expect(!f.engine.table[Int(conn)].paused)
    }
}

@Suite struct HTTPEngineSharedFrameTests {
    typealias Fixture = HTTPEngineCompletionTests.Fixture

    func stream(_ f: Fixture) -> Int32 {
        let conn = f.connect()
        f.engine.startStream(conn, gauge: .connectionsSSE)
        return conn
    }

    /// One fan-out's frame to three streams: the two with nothing pending send it from the
    /// engine's one copy and hold it until their sends complete (a partial send keeps it); the
    /// one with bytes pending gets it copied behind them. Freed once the last holder is done.
    @Test func aSharedFrameIsHeldByEachStreamUntilItsSendCompletes() throws {
        let f = try Fixture(sharedFrames: 2)
        let (a, b, c) = (stream(f), stream(f), stream(f))
        let pending: [UInt8] = [58, 10]   // ":\n", a comment already waiting on b
        #expect(pending.withUnsafeBytes { f.engine.streamAppend(b, $0) })
        let bytes = Array("id: 1\ndata: x\n\n".utf8)
        let frame = try #require(bytes.withUnsafeBytes { f.engine.makeSharedFrame($0) })
        #expect(f.counters.get(.sharedFramesInUse) == 1)
        for conn in [a, b, c] { #expect(f.engine.streamSendShared(conn, frame)) }
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 3, "the fan-out, a and c")
        #expect(f.engine.table[Int(b)].sharedSlot == -1)
        #expect(f.engine.table[Int(b)].tail == Int32(pending.count + bytes.count), "b's copy is behind its pending bytes")
        let sent = UnsafeRawBufferPointer(start: f.engine.sendPool.pointer(f.engine.table[Int(b)].streamBuffer), count: pending.count + bytes.count)
        #expect(Array(sent) == pending + bytes)
        f.engine.endSharedFrame(frame)
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 2)
        f.engine.flushDirty()
        #expect(f.engine.table[Int(a)].sendInFlight && f.engine.table[Int(c)].sendInFlight)

        f.complete(.send, a, res: 4)                        // part of it: a still sends from the copy
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 2)
        #expect(f.engine.table[Int(a)].fixedLeft == Int32(bytes.count - 4))
        f.engine.flushDirty()
        f.complete(.send, a, res: Int32(bytes.count - 4))
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 1, "a is done with it")
        #expect(f.engine.table[Int(a)].sharedSlot == -1 && f.engine.table[Int(a)].streamBuffer == -1,
                "a took no send buffer")

        // c closes while its send is in flight: the slot is kept until the kernel is done with it.
        f.engine.beginClose(c, reason: .peerClosed)
        f.complete(.recv, c, res: -ECANCELED)
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 1, "freed while the send could still read it")
        f.complete(.send, c, res: -ECANCELED)
        #expect(f.engine.table[Int(c)].phase == .free)
        #expect(f.engine.sharedFrames.inUse == 0)
        #expect(f.counters.get(.sharedFramesInUse) == 0)
    }

    /// More bytes for a stream before its shared frame was handed to the kernel (the next
    /// events of a burst): the frame moves into the stream's buffer ahead of them, the slot is
    /// given back, and everything leaves in one send, as without shared frames.
    @Test func bytesWrittenBeforeTheSendTakeTheFrameIntoTheBufferAhead() throws {
        let f = try Fixture(sharedFrames: 2)
        let a = stream(f)
        let first = Array("id: 1\ndata: x\n\n".utf8), second = Array("id: 2\ndata: y\n\n".utf8)
        let frame = try #require(first.withUnsafeBytes { f.engine.makeSharedFrame($0) })
        #expect(f.engine.streamSendShared(a, frame))
        f.engine.endSharedFrame(frame)
        #expect(f.engine.sharedFrames.holderCount(frame.slot) == 1)
        #expect(second.withUnsafeBytes { f.engine.streamAppend(a, $0) })
        #expect(f.engine.sharedFrames.inUse == 0, "the slot is given back")
        #expect(f.engine.table[Int(a)].fixedLeft == 0 && f.engine.table[Int(a)].sharedSlot == -1)
        let c = f.engine.table[Int(a)]
        #expect(Array(UnsafeRawBufferPointer(start: f.engine.sendPool.pointer(c.streamBuffer), count: Int(c.tail))) == first + second)
        #expect(f.engine.streamPendingBytes(a) == first.count + second.count)
        #expect(f.counters.get(.pendingSendBytes) == UInt64(first.count + second.count))
        f.engine.flushDirty()
        f.complete(.send, a, res: Int32(first.count + second.count))
        #expect(f.engine.streamPendingBytes(a) == 0 && f.counters.get(.pendingSendBytes) == 0)
        #expect(f.counters.get(.sharedFramesInUse) == 0)
    }

    /// The pool is bounded: with every slot held (a stream that stopped reading holds only its
    /// own), a fan-out gets nil and is counted, and frames larger than a slot are never kept.
    @Test func everySlotHeldOrAFrameTooLargeMeansACopyPerStream() throws {
        let f = try Fixture(sharedFrames: 1)
        let a = stream(f)
        let small = Array("data: x\n\n".utf8)
        let frame = try #require(small.withUnsafeBytes { f.engine.makeSharedFrame($0) })
        #expect(f.engine.streamSendShared(a, frame))
        f.engine.endSharedFrame(frame)
        f.engine.flushDirty()                               // a's send never completes
        #expect(small.withUnsafeBytes { f.engine.makeSharedFrame($0) } == nil)
        #expect(f.counters.get(.sharedFramesExhausted) == 1)
        let large = [UInt8](repeating: 65, count: 257)
        f.complete(.send, a, res: Int32(small.count))
        #expect(f.engine.sharedFrames.inUse == 0)
        #expect(large.withUnsafeBytes { f.engine.makeSharedFrame($0) } == nil, "larger than a slot")
        #expect(f.counters.get(.sharedFramesExhausted) == 1, "too large is not exhaustion")
        let off = try Fixture(sharedFrames: 0)
        #expect(small.withUnsafeBytes { off.engine.makeSharedFrame($0) } == nil)
        #expect(off.counters.get(.sharedFramesExhausted) == 0)
    }
}
