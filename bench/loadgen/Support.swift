// Helpers of the load generator: clocks, /proc readers, URLs, blocking sockets, HTTP responses,
// a log-bucket latency histogram.
import CRinggateSys
import Foundation
@preconcurrency import Glibc

@inline(__always) func nowNs() -> UInt64 { rg_monotonic_ns() }

func die(_ msg: String) -> Never {
    FileHandle.standardError.write(("ringgate-bench: " + msg + "\n").data(using: .utf8)!)
    exit(2)
}

func note(_ msg: String) {
    FileHandle.standardError.write(("ringgate-bench: " + msg + "\n").data(using: .utf8)!)
}

// MARK: - URLs

struct HTTPURL {
    var host: String
    var port: Int
    var path: String  // path + query

    init(_ s: String) {
        guard s.hasPrefix("http://") else { die("only http:// URLs: \(s)") }
        let rest = s.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let hostPort = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard let colon = hostPort.lastIndex(of: ":"), let p = Int(hostPort[hostPort.index(after: colon)...]) else {
            die("URL needs host:port: \(s)")
        }
        host = String(hostPort[..<colon])
        port = p
    }

    func with(slot: String) -> HTTPURL {
        var u = self
        u.path = u.path.replacingOccurrences(of: "{slot}", with: slot)
        return u
    }
}

// MARK: - /proc

func readSmallFile(_ path: String, cap: Int = 1 << 16) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buf = [UInt8](repeating: 0, count: cap)
    var total = 0
    while total < cap {
        let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, cap - total) }
        if n <= 0 { break }
        total += n
    }
    return String(decoding: buf[0..<total], as: UTF8.self)
}

/// Fields after the ")" of /proc/PID/stat; index 0 is field 3 (state).
func statFields(_ pid: Int32) -> [Substring]? {
    guard let s = readSmallFile("/proc/\(pid)/stat", cap: 4096), let close = s.lastIndex(of: ")") else { return nil }
    return s[s.index(after: close)...].split(separator: " ")
}

/// `root` and every descendant of it, from the ppid field of /proc/*/stat.
func pidTree(_ root: Int32) -> [Int32] {
    var parent: [Int32: Int32] = [:]
    if let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
        for n in names {
            guard let pid = Int32(n), let f = statFields(pid), f.count > 2, let pp = Int32(f[1]) else { continue }
            parent[pid] = pp
        }
    }
    var result: [Int32] = [root]
    var frontier: Set<Int32> = [root]
    for _ in 0..<8 where !frontier.isEmpty {
        var next = Set<Int32>()
        for (pid, pp) in parent where frontier.contains(pp) { next.insert(pid); result.append(pid) }
        frontier = next
    }
    return result
}

/// utime and stime of one process, in seconds (zeros when it is gone).
func processCPUSeconds(_ pid: Int32) -> (user: Double, system: Double) {
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    guard let f = statFields(pid), f.count > 13, let u = Double(f[11]), let s = Double(f[12]) else { return (0, 0) }
    return (u / hz, s / hz)
}

struct ServerPids {
    var fixed: [Int32] = []
    var trees: [Int32] = []
    var isEmpty: Bool { fixed.isEmpty && trees.isEmpty }
    func current() -> [Int32] {
        var s = Set(fixed)
        for r in trees { for p in pidTree(r) { s.insert(p) } }
        return s.sorted()
    }
    /// utime + stime of every server process, in seconds.
    func cpuSeconds() -> Double {
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        var ticks = 0.0
        for p in current() {
            guard let f = statFields(p), f.count > 13, let u = Double(f[11]), let s = Double(f[12]) else { continue }
            ticks += u + s
        }
        return ticks / hz
    }
    /// Pss summed over every server process, in bytes.
    func pssBytes() -> Int {
        var kb = 0
        for p in current() {
            guard let s = readSmallFile("/proc/\(p)/smaps_rollup") else { continue }
            for line in s.split(separator: "\n") where line.hasPrefix("Pss:") {
                kb += Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            }
        }
        return kb * 1024
    }
}

func clientCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(RUSAGE_SELF.rawValue, &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
        + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

// MARK: - Sockets (blocking connect at setup time; loopback only)

/// `--bind ADDR`: the source address of subscriber sockets (127.0.0.2, …: each source address
/// has its own ephemeral ports, so several load processes can open 100,000 connections).
nonisolated(unsafe) var sourceAddress: String? = nil

func connectTCP(_ url: HTTPURL, rcvbuf: Int32 = 0, bind source: String? = nil) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { die("socket: \(String(cString: strerror(errno))) (ulimit -n?)") }
    if let source {
        // IP_BIND_ADDRESS_NO_PORT (24): the port is picked at connect(), per destination;
        // a bind to port 0 would search for a port free for every destination, which slows
        // down with every socket already bound (quadratic over 10,000s of connections).
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_IP), 24, &on, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, source, &local.sin_addr) == 1 else { die("--bind must be an IPv4 literal: \(source)") }
        let rc = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { die("bind \(source): \(String(cString: strerror(errno)))") }
    }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    if rcvbuf > 0 {
        var v = rcvbuf
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(url.port).bigEndian)
    guard inet_pton(AF_INET, url.host, &addr.sin_addr) == 1 else { die("host must be an IPv4 literal: \(url.host)") }
    for attempt in 0..<50 {
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc == 0 { return fd }
        if errno == EINTR || errno == EAGAIN { usleep(useconds_t(1000 * (attempt + 1))); continue }
        die("connect \(url.host):\(url.port): \(String(cString: strerror(errno)))")
    }
    die("connect \(url.host):\(url.port): gave up")
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, bytes.count - off) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { die("write: \(String(cString: strerror(errno)))") }
        off += n
    }
}

// MARK: - HTTP responses

@inline(__always) func lower(_ c: UInt8) -> UInt8 { (c >= 65 && c <= 90) ? c | 0x20 : c }

/// Index just past "\r\n\r\n" in p[0..<n], or nil.
func headEnd(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int? {
    if n < 4 { return nil }
    var i = 0
    while i + 3 < n {
        if p[i] == 13 && p[i + 1] == 10 && p[i + 2] == 13 && p[i + 3] == 10 { return i + 4 }
        i += 1
    }
    return nil
}

struct ResponseHead {
    var status = 0
    var contentLength = -1
    var chunked = false
}

func parseHead(_ p: UnsafePointer<UInt8>, _ n: Int) -> ResponseHead {
    var h = ResponseHead()
    // "HTTP/1.1 200 ..."
    if n > 12 { h.status = Int(p[9] &- 48) * 100 + Int(p[10] &- 48) * 10 + Int(p[11] &- 48) }
    var i = 0
    while i < n {
        // start of a line
        var j = i
        while j < n && p[j] != 10 { j += 1 }
        let len = j - i
        if len > 15 {
            let name = String(decoding: UnsafeBufferPointer(start: p + i, count: min(len, 40)).map(lower), as: UTF8.self)
            if name.hasPrefix("content-length:") {
                var k = i + 15, v = 0
                while k < j && (p[k] == 32 || p[k] == 9) { k += 1 }
                while k < j && p[k] >= 48 && p[k] <= 57 { v = v * 10 + Int(p[k] - 48); k += 1 }
                h.contentLength = v
            } else if name.hasPrefix("transfer-encoding:") {
                let line = String(decoding: UnsafeBufferPointer(start: p + i, count: len).map(lower), as: UTF8.self)
                if line.contains("chunked") { h.chunked = true }
            }
        }
        i = j + 1
    }
    return h
}

/// Parses one complete response at p[0..<n]. Returns nil when incomplete, else the bytes it
/// used, its status and (when `wantBody`) its decoded body.
func parseResponse(_ p: UnsafePointer<UInt8>, _ n: Int, wantBody: Bool) -> (consumed: Int, status: Int, body: [UInt8])? {
    guard let he = headEnd(p, n) else { return nil }
    let h = parseHead(p, he)
    if h.chunked {
        var i = he
        var body: [UInt8] = []
        while true {
            var size = 0
            var k = i
            while k < n {
                let c = p[k]
                if c >= 48 && c <= 57 { size = size * 16 + Int(c - 48) }
                else if c >= 97 && c <= 102 { size = size * 16 + Int(c - 87) }
                else if c >= 65 && c <= 70 { size = size * 16 + Int(c - 55) }
                else { break }
                k += 1
            }
            while k < n && p[k] != 10 { k += 1 }
            guard k < n else { return nil }
            k += 1
            if size == 0 {
                // trailers: expect the final CRLF
                guard k + 1 < n + 1 else { return nil }
                while k < n && p[k] != 10 { k += 1 }
                guard k < n else { return nil }
                return (k + 1, h.status, body)
            }
            guard k + size + 2 <= n else { return nil }
            if wantBody { body.append(contentsOf: UnsafeBufferPointer(start: p + k, count: size)) }
            i = k + size + 2
        }
    }
    let len = max(h.contentLength, 0)
    guard he + len <= n else { return nil }
    let body = wantBody ? Array(UnsafeBufferPointer(start: p + he, count: len)) : []
    return (he + len, h.status, body)
}

/// A blocking HTTP/1.1 keep-alive client, for setup and for the history scenario.
final class BlockingClient {
    let url: HTTPURL
    var fd: Int32
    var acc: [UInt8] = []
    init(_ url: HTTPURL) {
        self.url = url
        fd = connectTCP(url)
        acc.reserveCapacity(1 << 20)
    }
    deinit { close(fd) }

    func request(_ method: String, _ path: String, body: [UInt8] = [], contentType: String = "text/plain") -> (status: Int, body: [UInt8]) {
        var req = Array("\(method) \(path) HTTP/1.1\r\nHost: \(url.host)\r\n".utf8)
        if method != "GET" { req += Array("Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n".utf8) }
        req += Array("\r\n".utf8)
        req += body
        writeAll(fd, req)
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if let r = acc.withUnsafeBufferPointer({ parseResponse($0.baseAddress!, $0.count, wantBody: true) }) {
                acc.removeFirst(r.consumed)
                return (r.status, r.body)
            }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { die("\(method) \(path): connection closed") }
            acc.append(contentsOf: chunk[0..<n])
        }
    }
}

// MARK: - Histogram: 64 sub-buckets per power of two (≤ 1.6 % error), values in ns.

struct Histogram {
    var counts = [UInt64](repeating: 0, count: 59 * 64)
    var n: UInt64 = 0
    var maxValue: UInt64 = 0
    var sum: Double = 0

    @inline(__always) static func index(_ v: UInt64) -> Int {
        if v < 64 { return Int(v) }
        let e = 63 - v.leadingZeroBitCount
        return (e - 5) * 64 + Int((v >> UInt64(e - 6)) & 63)
    }
    static func midValue(_ idx: Int) -> UInt64 {
        if idx < 64 { return UInt64(idx) }
        let e = idx / 64 + 5, m = UInt64(idx % 64)
        let low = (64 + m) << UInt64(e - 6)
        return low + (UInt64(1) << UInt64(e - 6)) / 2
    }
    @inline(__always) mutating func record(_ v: UInt64) {
        counts[Histogram.index(v)] &+= 1
        n &+= 1
        sum += Double(v)
        if v > maxValue { maxValue = v }
    }
    mutating func merge(_ o: Histogram) {
        for i in 0..<counts.count { counts[i] += o.counts[i] }
        n += o.n; sum += o.sum; maxValue = max(maxValue, o.maxValue)
    }
    /// The raw buckets, for another process to merge (`latency --procs K`): the nonzero
    /// buckets as [index, count] pairs, the sample count, the largest value and the sum.
    func exported() -> [String: Any] {
        var b: [[Int]] = []
        for (i, c) in counts.enumerated() where c > 0 { b.append([i, Int(c)]) }
        return ["n": Int(n), "max": Int(maxValue), "sum": sum, "buckets": b]
    }
    func percentile(_ q: Double) -> UInt64 {
        guard n > 0 else { return 0 }
        let want = UInt64((q * Double(n)).rounded(.up))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= want { return min(Histogram.midValue(i), maxValue) }
        }
        return maxValue
    }
    func summaryUs() -> [String: Any] {
        [
            "samples": Int(n),
            "p50_us": Double(percentile(0.50)) / 1000,
            "p90_us": Double(percentile(0.90)) / 1000,
            "p99_us": Double(percentile(0.99)) / 1000,
            "p999_us": Double(percentile(0.999)) / 1000,
            "max_us": Double(maxValue) / 1000,
            "mean_us": n > 0 ? sum / Double(n) / 1000 : 0,
        ]
    }
}

extension Histogram {
    /// The inverse of `exported()`; nil when `d` is not one. (An extension: `Histogram()` stays.)
    init?(exported d: Any?) {
        guard let d = d as? [String: Any], let b = d["buckets"] as? [Any] else { return nil }
        for pair in b {
            guard let p = pair as? [Any], p.count == 2, let i = jsonInt(p[0]), let c = jsonInt(p[1]),
                  i >= 0, i < counts.count, c >= 0 else { return nil }
            counts[i] += UInt64(c)
        }
        n = UInt64(max(0, jsonInt(d["n"]) ?? 0))
        maxValue = UInt64(max(0, jsonInt(d["max"]) ?? 0))
        sum = jsonDouble(d["sum"]) ?? 0
    }
}

// MARK: - ASCII integers into raw buffers

@inline(__always) func putUInt(_ v: UInt64, _ p: UnsafeMutablePointer<UInt8>) -> Int {
    var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)
    return withUnsafeMutableBytes(of: &tmp) { t -> Int in
        let d = t.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var x = v, n = 0
        repeat { d[n] = UInt8(48 + x % 10); x /= 10; n += 1 } while x > 0
        for i in 0..<n { p[i] = d[n - 1 - i] }
        return n
    }
}

/// (busy, total) jiffies of the whole machine from /proc/stat.
func machineJiffies() -> (Double, Double) {
    guard let s = readSmallFile("/proc/stat", cap: 8192), let line = s.split(separator: "\n").first else { return (0, 0) }
    let v = line.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard v.count >= 5 else { return (0, 0) }
    let total = v.reduce(0, +)
    let idle = v[3] + v[4]
    return (total - idle, total)
}

// MARK: - Several load processes (`latency --procs K`)

/// A number out of a JSONSerialization result (NSNumber, or Int / Double).
func jsonInt(_ v: Any?) -> Int? {
    if let n = v as? NSNumber { return n.intValue }
    if let i = v as? Int { return i }
    if let d = v as? Double { return Int(d) }
    return nil
}
func jsonDouble(_ v: Any?) -> Double? {
    if let n = v as? NSNumber { return n.doubleValue }
    if let d = v as? Double { return d }
    if let i = v as? Int { return Double(i) }
    return nil
}

/// One JSON object on one line of stdout, flushed (the pipe to process 0 of `--procs`).
func sendLine(_ d: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
}

/// Complete lines from a non-blocking descriptor (a pipe); `eof` once the writer closed it.
final class LineReader {
    let fd: Int32
    var pending: [UInt8] = []
    var eof = false
    init(fd: Int32) {
        self.fd = fd
        _ = rg_set_nonblocking(fd, 1)
    }
    /// Whatever whole lines have arrived since the last call.
    func poll() -> [String] {
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while !eof {
            let r = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if r > 0 { pending.append(contentsOf: chunk[0..<r]); continue }
            if r == 0 { eof = true; break }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { break }
            eof = true
        }
        var lines: [String] = []
        var start = 0
        for k in pending.indices where pending[k] == 10 {
            lines.append(String(decoding: pending[start..<k], as: UTF8.self))
            start = k + 1
        }
        if start > 0 { pending.removeFirst(start) }
        return lines
    }
}

/// This binary again (/proc/self/exe) with `args` (argv[0] first), its stdin and stdout on
/// pipes: returns its pid, the write end of its stdin and the read end of its stdout. Its
/// stderr is ours.
func spawnSelf(_ args: [String]) -> (pid: pid_t, toChild: Int32, fromChild: Int32) {
    var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
    guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { die("pipe: \(String(cString: strerror(errno)))") }
    // The child keeps only its dup2'ed ends (dup2 clears FD_CLOEXEC on the copy).
    for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
    posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
    let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ)
    guard rc == 0 else { die("posix_spawn /proc/self/exe: \(String(cString: strerror(rc)))") }
    close(toChild[0])
    close(fromChild[1])
    return (pid, toChild[1], fromChild[0])
}

/// `--taskset-cpus`: "0,1" or "0-3,6" → [0, 1] / [0, 1, 2, 3, 6].
func parseCPUList(_ s: String) -> [Int]? {
    var cpus: [Int] = []
    for part in s.split(separator: ",") {
        let ends = part.split(separator: "-", omittingEmptySubsequences: false)
        if ends.count == 1, let c = Int(ends[0]), c >= 0 { cpus.append(c); continue }
        guard ends.count == 2, let a = Int(ends[0]), let b = Int(ends[1]), a >= 0, a <= b else { return nil }
        cpus += Array(a...b)
    }
    return cpus.isEmpty ? nil : cpus
}

/// Pins this process to one CPU (sched_setaffinity, which Glibc's Swift module leaves out:
/// looked up at run time); false when that fails.
func pinToCPU(_ cpu: Int) -> Bool {
    typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    guard cpu >= 0, cpu < MemoryLayout<cpu_set_t>.size * 8, let sym = dlsym(nil, "sched_setaffinity") else { return false }
    var set = cpu_set_t()
    withUnsafeMutableBytes(of: &set) { b in
        b.storeBytes(of: b.load(fromByteOffset: cpu / 64 * 8, as: UInt64.self) | (UInt64(1) << UInt64(cpu % 64)),
                     toByteOffset: cpu / 64 * 8, as: UInt64.self)
    }
    let setAffinity = unsafeBitCast(sym, to: SetAffinity.self)
    return withUnsafeBytes(of: &set) { setAffinity(0, $0.count, $0.baseAddress!) } == 0
}
