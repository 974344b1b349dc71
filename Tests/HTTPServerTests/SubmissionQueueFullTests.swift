import CRinggateSys
import Glibc
import Logging
import RingLog
import Testing
import WireProtocol
@testable import HTTPServer
import IO

/// A full io_uring submission queue (the queue stays full even after a submit) is something the
/// loop defers, counts and retries; it must never crash the process.
@Suite struct SubmissionQueueFullTests {
    @Test func aPrepThatFindsTheQueueFullReportsItInsteadOfCrashing() throws {
        let ring = try Ring(entries: 8)
        ring.injectSubmissionQueueFull(count: 2)
        #expect(!ring.timeout(nanoseconds: 1_000_000, userData: 1))
        #expect(!ring.cancel(fd: 0, userData: 2))
        #expect(ring.timeout(nanoseconds: 1_000_000, userData: 3))
    }

    @Test func theEngineDefersEveryKindOfSubmissionAndStillAnswers() throws {
        let log = HeapLog()
        let counters = CounterBlock(region: log.region, process: ProcessBlock.worker(0))
        let listenFD = rg_listen_tcp("127.0.0.1", 0, 16, 0)
        #expect(listenFD >= 0)
        defer { _ = rg_close(listenFD) }
        let port = rg_local_port(listenFD)
        var config = HTTPEngine.Configuration(maxConnections: 8, headerTimeoutNanoseconds: 5_000_000_000,
                                              limits: HTTPLimits(maxBodyBytes: 0), sendBufferBytes: 4096,
                                              sendBufferCount: 4)
        config.tickNanoseconds = 5_000_000
        var io = IOBackendConfiguration()
        io.entries = 16
        io.receiveBufferCount = 8
        let engine = HTTPEngine(configuration: config, io: try UringBackend(configuration: io), listenFD: listenFD,
                                wakeFD: -1, counters: counters, logger: Logger(label: "test"))
        let delegate = Answering()
        engine.delegate = delegate

        // A client on its own thread: three requests on one connection, each answered.
        let client = Client(port: port)
        client.start()
        var turns = 0
        let deadline = rg_monotonic_ns() + 10_000_000_000
        engine.run {
            turns += 1
            // The first preparation of every turn finds the queue full: accept, receive, send
            // and the tick timer each get deferred at some point.
            engine.io.injectSubmissionQueueFull(count: 1)
            return client.finished || rg_monotonic_ns() > deadline
        }
        client.join()
        #expect(client.answers == 3, "answers: \(client.answers), turns: \(turns)")
        #expect(counters.get(.submissionQueueFull) > 0)
        #expect(delegate.requests == 3)
    }
}

final class Answering: HTTPEngineDelegate {
    var requests = 0
    func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32) {
        requests += 1
        engine.respond(connection, HTTPResponseWriter.json(status: 200, body: Array(#"{"ok":true}"#.utf8),
                                                           keepAlive: true, extraHeaders: []))
    }
    func engine(_ engine: HTTPEngine, streamWritable connection: Int32) {}
    func engine(_ engine: HTTPEngine, streamClosed connection: Int32) {}
    func engineWake(_ engine: HTTPEngine) {}
    func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64) {}
    func engineTurnEnd(_ engine: HTTPEngine) {}
}

/// A blocking loopback client on a pthread: sends one request at a time, counts 200 answers.
final class Client: @unchecked Sendable {
    let port: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var _answers = 0
    private var _finished = false
    private var thread = pthread_t()

    init(port: Int32) {
        self.port = port
        pthread_mutex_init(lock, nil)
    }

    var answers: Int { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return _answers }
    var finished: Bool { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return _finished }

    func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { arg in
            let me = Unmanaged<Client>.fromOpaque(arg!).takeRetainedValue()
            me.body()
            return nil
        }, box)
    }

    func join() { pthread_join(thread, nil) }

    private func body() {
        defer { pthread_mutex_lock(lock); _finished = true; pthread_mutex_unlock(lock) }
        let fd = rg_connect_tcp("127.0.0.1", port)
        guard fd >= 0 else { return }
        defer { _ = rg_close(fd) }
        _ = rg_set_recv_timeout_ms(fd, 5000)
        let request = Array("GET /x HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<3 {
            guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
            else { return }
            var got: [UInt8] = []
            while !got.contains(UInt8(ascii: "}")) {
                let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return }
                got += buffer[0..<n]
            }
            guard got.starts(with: Array("HTTP/1.1 200".utf8)) else { return }
            pthread_mutex_lock(lock); _answers += 1; pthread_mutex_unlock(lock)
        }
    }
}
