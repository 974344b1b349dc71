#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import WireProtocol

/// `reportsHeadBeforeBody`: a server learns of an upload when its head is complete, so it can
/// refuse it (401, 413) before buffering any of the body.
@Suite struct HTTPRequestParserHeadTests {
    let limits = HTTPLimits(maxBodyBytes: 1 << 20)
    let head = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"

    @Test func aHeadWhoseBodyIsStillToComeIsReportedFirst() {
        var parser = HTTPRequestParser(limits: limits, reportsHeadBeforeBody: true)
        let bytes = [UInt8](head + "0123")
        let (consumed, first) = parser.parse(bytes)
        guard case .head(let request, let length) = first else { Issue.record("expected .head, got \(first)"); return }
        #expect(consumed == head.utf8.count, "the body bytes after the head are left for the next call")
        #expect(length == 10)
        #expect(request.path == "/v1/events" && request.body.isEmpty)
        #expect(parser.isReadingBody && parser.bufferedBodyBytes == 0)

        let (c2, second) = parser.parse(Array(bytes[consumed...]))
        guard case .needMore = second else { Issue.record("expected .needMore, got \(second)"); return }
        #expect(c2 == 4 && parser.bufferedBodyBytes == 4)
        let (c3, third) = parser.parse([UInt8]("456789"))
        guard case .request(let done) = third else { Issue.record("expected .request, got \(third)"); return }
        #expect(c3 == 6 && done.body == [UInt8]("0123456789"))
        #expect(parser.isIdle && !parser.isReadingBody)
    }

    @Test func aRequestWhoseBodyArrivedWithItsHeadIsReportedWhole() {
        var parser = HTTPRequestParser(limits: limits, reportsHeadBeforeBody: true)
        let (_, result) = parser.parse([UInt8](head + "0123456789"))
        guard case .request(let r) = result else { Issue.record("expected .request, got \(result)"); return }
        #expect(r.body == [UInt8]("0123456789"))
    }

    @Test func aChunkedHeadIsReportedWithoutALength() {
        var parser = HTTPRequestParser(limits: limits, reportsHeadBeforeBody: true)
        let chunkedHead = "POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let (consumed, result) = parser.parse([UInt8](chunkedHead + "5\r\nhel"))
        guard case .head(_, let length) = result else { Issue.record("expected .head, got \(result)"); return }
        #expect(length == nil && consumed == chunkedHead.utf8.count)
        _ = parser.parse([UInt8]("5\r\nhel"))
        #expect(parser.bufferedBodyBytes == 3)
        let (_, done) = parser.parse([UInt8]("lo\r\n0\r\n\r\n"))
        guard case .request(let r) = done else { Issue.record("expected .request, got \(done)"); return }
        #expect(r.body == [UInt8]("hello"))
    }

    @Test func withoutTheOptionNoHeadIsReportedAtAnySplit() {
        let whole = [UInt8](head + "0123456789")
        for split in 1..<whole.count {
            var parser = HTTPRequestParser(limits: limits)
            var results: [HTTPParseResult] = []
            var pending = Array(whole[0..<split])
            for chunk in [Array(whole[split...]), []] {
                while !pending.isEmpty {
                    let (consumed, r) = parser.parse(pending)
                    results.append(r)
                    pending.removeFirst(consumed)
                    if case .needMore = r { break }
                }
                pending += chunk
            }
            #expect(!results.contains { if case .head = $0 { true } else { false } }, "split \(split)")
            #expect(results.contains { if case .request = $0 { true } else { false } }, "split \(split)")
        }
    }

    /// A refused head must not cost its Content-Length: the body is reserved only when its
    /// bytes arrive. Measured as the process's virtual size (a large block is mmapped whole,
    /// so a 256 MiB reservation raises it by 256 MiB even though no page is touched).
    @Test func aHeadReportedFirstReservesNothingForItsBody() {
        let declared = 256 << 20
        var parser = HTTPRequestParser(limits: HTTPLimits(maxBodyBytes: declared), reportsHeadBeforeBody: true)
        let before = virtualSizeBytes()
        let (_, result) = parser.parse([UInt8]("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: \(declared)\r\n\r\n"))
        let after = virtualSizeBytes()
        guard case .head(_, let length) = result else { Issue.record("expected .head, got \(result)"); return }
        #expect(length == declared)
        let grewBytes = after - before
        #expect(grewBytes < declared / 2, "the head reserved \(grewBytes) bytes")
        let (_, more) = parser.parse([UInt8]("0123"))
        guard case .needMore = more else { Issue.record("expected .needMore, got \(more)"); return }
        #expect(parser.bufferedBodyBytes == 4)
    }

    /// The first field of /proc/self/statm (pages) in bytes.
    func virtualSizeBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        let pages = buffer[0..<n].prefix { $0 != UInt8(ascii: " ") }.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
