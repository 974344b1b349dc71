import ArgumentParser
import CRinggateSys
@preconcurrency import Glibc
import Foundation
import WireProtocol

/// A base URL `http://HOST:PORT` (no TLS: both listeners speak plain HTTP).
struct BaseURL {
    let host: String
    let port: Int

    init(_ s: String) throws {
        var rest = Substring(s)
        guard rest.hasPrefix("http://") else { throw ValidationError("--url \(s): expected http://HOST:PORT") }
        rest = rest.dropFirst("http://".count)
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
            throw ValidationError("--url \(s): expected http://HOST:PORT")
        }
        var h = String(rest[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        host = h == "localhost" ? "127.0.0.1" : h
        self.port = port
    }

    /// A blocking connection; with `timeoutNanoseconds`, one that gives up after that long
    /// (a host that drops SYNs would otherwise hold `health` for the kernel's minutes of retries).
    func connect(timeoutNanoseconds: UInt64? = nil) throws -> Int32 {
        let ms = timeoutNanoseconds.map { Int32(clamping: max(1, $0 / 1_000_000)) } ?? 0
        let fd = rg_connect_tcp_timeout(host, Int32(port), ms)
        guard fd >= 0 else {
            // Not CleanExit: that exits 0, and `ringgate health` must fail when nothing listens.
            fputs("ringgate: cannot connect to \(host):\(port): \(String(cString: strerror(errno)))\n", stderr)
            throw ExitCode(1)
        }
        return fd
    }

    /// One request on a new connection (`Connection: close`), its answer read to the end or
    /// `limit` bytes. A connection that fails, or closes before an answer, exits 1.
    func exchange(_ request: [UInt8], limit: Int, timeoutNanoseconds: UInt64? = nil) throws -> HTTPAnswer {
        let fd = try connect(timeoutNanoseconds: timeoutNanoseconds)
        defer { close(fd) }
        if let ns = timeoutNanoseconds {
            var tv = timeval(tv_sec: Int(ns / 1_000_000_000), tv_usec: Int((ns % 1_000_000_000) / 1000))
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        guard writeAll(fd, request) else { fail("the connection to \(host):\(port) closed while sending") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while response.count < limit {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        // "\r\n" is one Character in Swift: search for the string, not for "\r".
        guard let split = text.range(of: "\r\n\r\n") else { fail("no answer from \(host):\(port)") }
        let statusLine = text[..<(text.range(of: "\r\n")?.lowerBound ?? split.lowerBound)]
        let parts = statusLine.split(separator: " ")
        return HTTPAnswer(status: parts.count > 1 ? Int(parts[1]) ?? 0 : 0, statusLine: String(statusLine),
                          body: String(text[split.upperBound...]))
    }

    private func fail(_ message: String) -> Never {
        fputs("ringgate: \(message)\n", stderr)
        Foundation.exit(1)
    }
}

/// A whole HTTP/1.1 answer as the client commands read it.
struct HTTPAnswer {
    let status: Int
    let statusLine: String
    let body: String
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"), UInt8(ascii: ":"):
            out.unicodeScalars.append(UnicodeScalar(b))
        default:
            let hex = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
        }
    }
    return out
}

struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish one event; data from standard input when DATA is absent.")
    @Argument(help: "Slot name.") var slot: String
    @Argument(help: "Event data (UTF-8). Read from standard input when absent.") var data: String?
    @Option(help: "Event type.") var type: String?
    @Option(help: "Publish listener.") var url: String = ServeOptions.env("PUBLISH_URL") ?? "http://127.0.0.1:8081"
    @Option(help: "Publish token (or RINGGATE_PUBLISH_TOKEN).") var token: String?

    func run() throws {
        let base = try BaseURL(url)
        var body: [UInt8]
        if let data {
            body = Array(data.utf8)
        } else {
            body = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(0, &chunk, chunk.count)
                if n <= 0 { break }
                body += chunk[0..<n]
            }
        }
        var target = "/v1/slots/\(percentEncode(slot))/events"
        if let type { target += "?type=\(percentEncode(type))" }
        var head = "POST \(target) HTTP/1.1\r\nHost: \(base.host):\(base.port)\r\nContent-Type: text/plain; charset=utf-8\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n"
        if let token = token ?? ServeOptions.env("PUBLISH_TOKEN") { head += "Authorization: Bearer \(token)\r\n" }
        head += "\r\n"
        let answer = try base.exchange(Array(head.utf8) + body, limit: 1 << 20)
        let (status, statusLine, responseBody) = (answer.status, answer.statusLine, answer.body)
        if status == 201, let idRange = responseBody.range(of: #""id":""#) {
            let rest = responseBody[idRange.upperBound...]
            print(rest.prefix { $0 != "\"" })
        } else {
            var err = "ringgate: publish failed: \(statusLine) \(responseBody)\n"
            fputs(err, stderr)
            err.removeAll()
            throw ExitCode(1)
        }
    }
}

struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a slot's events as they arrive: ID TYPE DATA per line.")
    @Argument(help: "Slot name.") var slot: String
    @Option(help: "Start after this event id.") var after: String?
    @Option(help: "Subscriber listener.") var url: String = ServeOptions.env("URL") ?? "http://127.0.0.1:8080"

    func run() throws {
        let base = try BaseURL(url)
        var lastID = after
        var retryMilliseconds = 1000
        while true {
            let fd = try base.connect()
            var head = "GET /v1/slots/\(percentEncode(slot))/stream HTTP/1.1\r\nHost: \(base.host):\(base.port)\r\nAccept: text/event-stream\r\n"
            if let lastID { head += "Last-Event-ID: \(lastID)\r\n" }
            head += "\r\n"
            guard writeAll(fd, Array(head.utf8)) else { close(fd); continue }
            var parser = SSELineReader()
            var buffer = [UInt8](repeating: 0, count: 65536)
            var sawHead = false
            var pending: [UInt8] = []
            readLoop: while true {
                let n = read(fd, &buffer, buffer.count)
                if n <= 0 { break }
                var bytes = Array(buffer[0..<n])
                if !sawHead {
                    pending += bytes
                    guard let end = findHeadEnd(pending) else { continue }
                    let statusLine = String(decoding: pending.prefix { $0 != 13 }, as: UTF8.self)
                    guard statusLine.contains(" 200 ") else {
                        fputs("ringgate: \(statusLine) \(String(decoding: pending[end...], as: UTF8.self))\n", stderr)
                        close(fd)
                        throw ExitCode(1)
                    }
                    sawHead = true
                    bytes = Array(pending[end...])
                    pending = []
                }
                for event in parser.feed(bytes) {
                    if let retry = event.retry { retryMilliseconds = retry; continue }
                    if let id = event.id { lastID = id }
                    guard event.hasData else { continue }
                    print("\(event.id ?? "-") \(event.type) \(event.data)")
                    fflush(stdout)
                    if event.type == "close" { break readLoop }
                }
            }
            close(fd)
            usleep(useconds_t(retryMilliseconds) * 1000)
        }
    }

    func findHeadEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
        return nil
    }
}

/// A minimal SSE line reader for `ringgate tail` (the server's frames are well-formed).
struct SSELineReader {
    struct Event {
        var id: String?
        var type = "message"
        var data = ""
        var hasData = false
        var retry: Int?
    }
    var line: [UInt8] = []
    var current = Event()

    mutating func feed(_ bytes: [UInt8]) -> [Event] {
        var out: [Event] = []
        for b in bytes {
            if b == 10 {
                if line.last == 13 { line.removeLast() }
                if line.isEmpty {
                    if current.hasData || current.retry != nil { out.append(current) }
                    current = Event()
                } else {
                    let s = String(decoding: line, as: UTF8.self)
                    let (field, value): (Substring, Substring)
                    if let colon = s.firstIndex(of: ":") {
                        field = s[..<colon]
                        var v = s[s.index(after: colon)...]
                        if v.hasPrefix(" ") { v = v.dropFirst() }
                        value = v
                    } else {
                        field = Substring(s)
                        value = ""
                    }
                    switch field {
                    case "id": current.id = String(value)
                    case "event": current.type = String(value)
                    case "data":
                        current.data += current.hasData ? "\n" + value : String(value)
                        current.hasData = true
                    case "retry": current.retry = Int(value)
                    default: break
                    }
                }
                line.removeAll(keepingCapacity: true)
            } else {
                line.append(b)
            }
        }
        return out
    }
}

/// `ringgate health`: one GET of /readyz (or --path), exit 0 on 200 and 1 otherwise, so a
/// container's HEALTHCHECK needs no curl in the image.
struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask a running gateway whether it is ready: exit 0 on 200, 1 otherwise (for HEALTHCHECK).")
    @Option(help: "Subscriber listener.") var url: String = ServeOptions.env("URL") ?? "http://127.0.0.1:8080"
    @Option(help: "Path to ask: /readyz (ready for clients) or /healthz (the process runs).") var path: String = "/readyz"
    @Option(help: "Give up after this long.") var timeout: String = "3s"

    func run() throws {
        let base = try BaseURL(url)
        guard path.hasPrefix("/"), !path.utf8.contains(where: { $0 <= 32 || $0 >= 127 }) else {
            throw ValidationError("--path \(path): expected an absolute path such as /readyz")
        }
        guard let ns = DurationParser.parseNanoseconds(timeout), ns >= 1_000_000, ns <= 60_000_000_000 else {
            throw ValidationError("--timeout \(timeout): expected a duration from 1ms to 60s, like 3s")
        }
        let head = "GET \(path) HTTP/1.1\r\nHost: \(base.host):\(base.port)\r\nConnection: close\r\n\r\n"
        let answer = try base.exchange(Array(head.utf8), limit: 64 << 10, timeoutNanoseconds: ns)
        print("\(answer.statusLine.split(separator: " ").dropFirst().joined(separator: " ")) \(answer.body)")
        if answer.status != 200 { throw ExitCode(1) }
    }
}
