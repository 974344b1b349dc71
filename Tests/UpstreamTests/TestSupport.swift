import Foundation
import Glibc
import RingLog
@testable import Upstream

/// A formatted log on the heap, for a counter block the link can write.
final class HeapCounters {
    let base: UnsafeMutableRawPointer
    let region: LogRegion
    let block: CounterBlock

    init() {
        let geometry = try! LogGeometry(capacityBytes: 4096, maxSlots: 8)
        base = UnsafeMutableRawPointer.allocate(byteCount: geometry.totalBytes, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: geometry.totalBytes)
        region = try! LogRegion.format(base: base, length: geometry.totalBytes, geometry: geometry, epoch: 1)
        block = CounterBlock(region: region, process: ProcessBlock.ingest)
    }

    deinit { base.deallocate() }
}

/// A real redis-server on a free loopback port, without persistence, in its own temp dir;
/// killed (and the dir removed) by `stop()` or deinit.
final class RedisServer {
    let port: Int
    let directory: URL
    private var process: Process?
    private let extraArguments: [String]

    init(port: Int? = nil, arguments: [String] = []) throws {
        self.port = port ?? RedisServer.freePort()
        extraArguments = arguments
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rg-redis-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    func start() throws {
        precondition(process == nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", directory.path, "--logfile", directory.appendingPathComponent("redis.log").path] + extraArguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Bounded wait for the port to accept.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if RedisServer.canConnect(port: port) { return }
            usleep(20_000)
        }
        stop()
        throw TestFailure("redis-server on port \(port) did not start within 10 s")
    }

    /// SIGKILL, then wait for it to exit (the port is free again after).
    func stop() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    var url: UpstreamURL {
        UpstreamURL(host: "127.0.0.1", port: port, db: 0, user: nil, password: nil, key: "rg-test")
    }

    func connection(password: String? = nil) throws -> RedisConnection {
        var u = url
        u.password = password
        return try RedisConnection(url: u, timeoutNanoseconds: 2_000_000_000, name: "test")
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Polls `condition` until true or the bound passes; the bound is a limit, not a measured speed.
func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}
