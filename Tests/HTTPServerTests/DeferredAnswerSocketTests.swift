import CRinggateSys
import Glibc
import Logging
import RingLog
import Testing
import WireProtocol
@testable import HTTPServer
import IO

/// Deferred answers over a real loopback socket and io_uring: pipelined requests, the deferred
/// ones answered in reverse order on a later tick, read back by a blocking client in request order.
@Suite struct DeferredAnswerSocketTests {
    final class Deferring: HTTPEngineDelegate {
        var tickets: [(path: String, ticket: DeferredAnswer)] = []
        var deferredSeen = 0
        var answered = false
        func engine(_ engine: HTTPEngine, request: HTTPRequest, connection: Int32) {
            guard request.path.hasPrefix("/defer") else {
                engine.respond(connection, Deferring.bytes(request.path))
                return
            }
            tickets.append((request.path, engine.deferAnswer(connection)!))
            deferredSeen += 1
        }
        static func bytes(_ path: String) -> [UInt8] {
            HTTPResponseWriter.json(status: 200, body: Array(#"{"path":"\#(path)"}"#.utf8), keepAlive: true, extraHeaders: [])
        }
        func engineTick(_ engine: HTTPEngine, nowNanoseconds: UInt64) {
            // Both deferred requests were read (the immediate one between them too): answer the
            // later one first, on a loop turn of its own.
            guard deferredSeen == 2, !answered else { return }
            answered = true
            for (path, ticket) in tickets.reversed() { #expect(engine.answer(ticket, Deferring.bytes(path))) }
        }
        func engine(_ engine: HTTPEngine, streamWritable connection: Int32) {}
        func engine(_ engine: HTTPEngine, streamClosed connection: Int32) {}
        func engineWake(_ engine: HTTPEngine) {}
        func engineTurnEnd(_ engine: HTTPEngine) {}
    }

    /// Sends every request in one write, then reads until `expected` bodies ended (`}`) or EOF.
    final class PipeliningClient: @unchecked Sendable {
        let port: Int32
        let request: [UInt8]
        let expected: Int
        private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private var _received: [UInt8] = []
        private var _finished = false
        private var thread = pthread_t()

        init(port: Int32, request: [UInt8], expected: Int) {
            self.port = port
            self.request = request
            self.expected = expected
            pthread_mutex_init(lock, nil)
        }

        var received: [UInt8] { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return _received }
        var finished: Bool { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return _finished }

        func start() {
            let box = Unmanaged.passRetained(self).toOpaque()
            pthread_create(&thread, nil, { arg in
                Unmanaged<PipeliningClient>.fromOpaque(arg!).takeRetainedValue().body()
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
            guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
            else { return }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while received.filter({ $0 == UInt8(ascii: "}") }).count < expected {
                let n = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { return }
                pthread_mutex_lock(lock); _received += buffer[0..<n]; pthread_mutex_unlock(lock)
            }
        }
    }

    @Test func pipelinedAnswersGivenInReverseLeaveInRequestOrder() throws {
        let log = HeapLog()
        let counters = CounterBlock(region: log.region, process: ProcessBlock.ingest)
        let listenFD = rg_listen_tcp("127.0.0.1", 0, 16, 0)
        #expect(listenFD >= 0)
        defer { _ = rg_close(listenFD) }
        var config = HTTPEngine.Configuration(maxConnections: 4, headerTimeoutNanoseconds: 5_000_000_000,
                                              limits: HTTPLimits(maxBodyBytes: 0), sendBufferBytes: 4096,
                                              sendBufferCount: 4)
        config.tickNanoseconds = 5_000_000
        var io = IOBackendConfiguration()
        io.entries = 64
        io.receiveBufferCount = 8
        let engine = HTTPEngine(configuration: config, io: try UringBackend(configuration: io), listenFD: listenFD,
                                wakeFD: -1, counters: counters, logger: Logger(label: "test"))
        let delegate = Deferring()
        engine.delegate = delegate
        let paths = ["/defer/1", "/now/2", "/defer/3"]
        let request = paths.flatMap { Array("GET \($0) HTTP/1.1\r\nHost: t\r\n\r\n".utf8) }
        let client = PipeliningClient(port: rg_local_port(listenFD), request: request, expected: 3)
        client.start()
        let deadline = rg_monotonic_ns() + 10_000_000_000
        engine.run { client.finished || rg_monotonic_ns() > deadline }
        client.join()
        let text = String(decoding: client.received, as: UTF8.self)
        let order = paths.map { text.range(of: #""path":"\#($0)""#)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil }, "received: \(text)")
        if let a = order[0], let b = order[1], let c = order[2] { #expect(a < b && b < c, "received: \(text)") }
        #expect(engine.deferredAnswers == 0)
    }
}
