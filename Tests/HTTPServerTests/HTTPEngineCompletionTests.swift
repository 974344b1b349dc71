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

        init(maxPendingBodyBytes: Int = 1 << 20) throws {
            counters = CounterBlock(region: log.region, process: ProcessBlock.worker(0))
            listenFD = rg_listen_tcp("127.0.0.1", 0, 16, 0)
            var config = HTTPEngine.Configuration(maxConnections: 4, headerTimeoutNanoseconds: 5_000_000_000,
                                                  limits: HTTPLimits(maxBodyBytes: 1 << 20), sendBufferBytes: 4096,
                                                  sendBufferCount: 4)
            config.maxPendingBodyBytes = maxPendingBodyBytes
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
