import Testing
@testable import WireProtocol

/// A comparable summary of a parse outcome.
struct Outcome: Equatable, CustomStringConvertible {
    var method = ""
    var target = ""
    var path = ""
    var query: [String] = []
    var version = ""
    var keepAlive = false
    var headers: [String] = []
    var body: [UInt8] = []
    var error: HTTPParseError?

    init(_ r: HTTPRequest) {
        method = r.method.description
        target = r.target
        path = r.path
        query = r.query.map { "\($0.0)=\($0.1)" }
        version = "\(r.version.major).\(r.version.minor)"
        keepAlive = r.keepAlive
        headers = r.headers.map { "\($0.name): \($0.value)" }
        body = r.body
    }

    init(error: HTTPParseError) { self.error = error }

    var description: String {
        if let error { return "error \(error)" }
        return "\(method) \(target) path=\(path) q=\(query) v\(version) ka=\(keepAlive) h=\(headers) body=\(body.text)"
    }
}

let defaultLimits = HTTPLimits(maxBodyBytes: 1 << 20)

/// Feeds `chunks` in order, re-feeding unconsumed bytes as the event loop does; returns
/// every outcome and whether the parser ended idle.
func feed(_ chunks: [[UInt8]], limits: HTTPLimits = defaultLimits) -> (outcomes: [Outcome], idle: Bool) {
    var parser = HTTPRequestParser(limits: limits)
    var outcomes: [Outcome] = []
    var pending: [UInt8] = []
    outer: for chunk in chunks {
        pending += chunk
        while !pending.isEmpty {
            let (consumed, result) = pending.withUnsafeBytes { parser.parse($0) }
            #expect(consumed <= pending.count)
            pending.removeFirst(consumed)
            switch result {
            case .needMore:
                #expect(pending.isEmpty, "needMore must consume everything")
                continue outer
            case .head:
                Issue.record("head reported by a parser that was not asked to")
            case .request(let r):
                outcomes.append(Outcome(r))
            case .error(let e):
                outcomes.append(Outcome(error: e))
                #expect(parser.isDead)
                break outer
            }
        }
    }
    return (outcomes, parser.isIdle)
}

func feedWhole(_ s: String, limits: HTTPLimits = defaultLimits) -> [Outcome] {
    feed([Array(s.utf8)], limits: limits).outcomes
}

func firstError(_ s: String, limits: HTTPLimits = defaultLimits) -> HTTPParseError? {
    feedWhole(s, limits: limits).first?.error
}

let getRequest = """
    GET /v1/slots/news/events?after=5f3a9c01-1&limit=10 HTTP/1.1\r
    Host: localhost:8080\r
    User-Agent: curl/8.5.0\r
    Accept: */*\r
    \r

    """

let postRequest = """
    POST /v1/slots/news/events?type=greeting HTTP/1.1\r
    Host: 127.0.0.1:8081\r
    Content-Type: application/octet-stream\r
    Content-Length: 11\r
    \r
    hello world
    """

let chunkedRequest = """
    POST /v1/events HTTP/1.1\r
    Host: x\r
    Transfer-Encoding: chunked\r
    \r
    1a;name=value\r
    {"slot":"news","data":"a"}\r
    A\r
    0123456789\r
    0\r
    X-Trailer: yes\r
    \r

    """

@Suite struct HTTPRequestParserTests {
    @Test func parsesAGetRequest() throws {
        let out = feedWhole(getRequest)
        #expect(out.count == 1)
        let r = try #require(out.first)
        #expect(r.method == "GET")
        #expect(r.path == "/v1/slots/news/events")
        #expect(r.query == ["after=5f3a9c01-1", "limit=10"])
        #expect(r.version == "1.1")
        #expect(r.keepAlive)
        #expect(r.headers.count == 3)
        #expect(r.body.isEmpty)
    }

    @Test func requestAccessors() throws {
        var parser = HTTPRequestParser(limits: defaultLimits)
        let bytes = Array(getRequest.utf8)
        let (consumed, result) = parser.parse(bytes)
        #expect(consumed == bytes.count)
        guard case .request(let r) = result else { Issue.record("no request"); return }
        #expect(r.header("host") == "localhost:8080")
        #expect(r.header("USER-AGENT") == "curl/8.5.0")
        #expect(r.header("missing") == nil)
        #expect(r.queryValue("after") == "5f3a9c01-1")
        #expect(r.queryValue("limit") == "10")
        #expect(r.queryValue("nope") == nil)
        #expect(r.rawQuery == "after=5f3a9c01-1&limit=10")
        #expect(r.method == .get)
        #expect(parser.isIdle)
        #expect(!parser.hasPartialHead)
    }

    @Test func parsesPostAndChunkedBodies() throws {
        let post = try #require(feedWhole(postRequest).first)
        #expect(post.method == "POST")
        #expect(post.body.text == "hello world")
        let chunked = try #require(feedWhole(chunkedRequest).first)
        #expect(chunked.body.text == "{\"slot\":\"news\",\"data\":\"a\"}0123456789")
    }

    @Test(arguments: [getRequest, postRequest, chunkedRequest])
    func everySplitPointGivesTheSameResult(_ text: String) {
        let bytes = Array(text.utf8)
        let whole = feed([bytes])
        #expect(whole.outcomes.count == 1)
        #expect(whole.outcomes.first?.error == nil)
        #expect(whole.idle)
        for i in 0...bytes.count {
            let split = feed([Array(bytes[..<i]), Array(bytes[i...])])
            #expect(split.outcomes == whole.outcomes, "split at \(i)")
            #expect(split.idle)
        }
        let byteByByte = feed(bytes.map { [$0] })
        #expect(byteByByte.outcomes == whole.outcomes)
    }

    @Test func everyTwoSplitPointsOfAPipeline() {
        let bytes = Array((postRequest + chunkedRequest).utf8)
        let whole = feed([bytes])
        #expect(whole.outcomes.count == 2)
        for i in stride(from: 0, through: bytes.count, by: 3) {
            for j in stride(from: i, through: bytes.count, by: 7) {
                let out = feed([Array(bytes[..<i]), Array(bytes[i..<j]), Array(bytes[j...])])
                #expect(out.outcomes == whole.outcomes, "splits at \(i), \(j)")
            }
        }
    }

    @Test func pipelinesThreeRequestsInOneBuffer() {
        var parser = HTTPRequestParser(limits: defaultLimits)
        let bytes = Array((getRequest + postRequest + getRequest.replacingOccurrences("limit=10", "limit=20")).utf8)
        var offset = 0
        var paths: [String] = []
        var limitsSeen: [String] = []
        while offset < bytes.count {
            let (consumed, result) = bytes.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            guard case .request(let r) = result else { Issue.record("expected request, got \(result)"); return }
            offset += consumed
            paths.append(r.path)
            if let l = r.queryValue("limit") { limitsSeen.append(l) }
        }
        #expect(paths == ["/v1/slots/news/events", "/v1/slots/news/events", "/v1/slots/news/events"])
        #expect(limitsSeen == ["10", "20"])
        #expect(parser.isIdle)
    }

    /// The parser reuses the last request's arrays for the next one: a request a handler keeps
    /// must keep its own head, headers and body when the next requests are parsed over them.
    @Test func aKeptRequestKeepsItsHeadAndBodyWhileTheNextAreParsed() {
        let parser = HTTPRequestParser(limits: defaultLimits)
        func post(_ slot: String, _ body: String, extra: String = "") -> String {
            "POST /v1/slots/\(slot)/events HTTP/1.1\r\nHost: h\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        let bytes = Array((post("first", "one") + post("second-slot", "second body", extra: "X-Long-Header: \(String(repeating: "v", count: 300))\r\n")
                           + post("t", "3")).utf8)
        var kept: [HTTPRequest] = []
        var offset = 0
        while offset < bytes.count {
            let (consumed, result) = bytes.withUnsafeBytes { parser.parse(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            guard case .request(let r) = result else { Issue.record("expected request, got \(result)"); return }
            offset += consumed
            kept.append(r)
        }
        parser.releaseBuffers()
        #expect(kept.map(\.path) == ["/v1/slots/first/events", "/v1/slots/second-slot/events", "/v1/slots/t/events"])
        #expect(kept.map { String(decoding: $0.body, as: UTF8.self) } == ["one", "second body", "3"])
        #expect(kept.map { $0.header("host") } == ["h", "h", "h"])
        #expect(kept[1].header("x-long-header")?.count == 300)
        #expect(kept[0].header("content-length") == "3" && kept[2].header("content-length") == "1")
    }

    /// The field table grows past the room first reserved (12 fields), and a decoded path
    /// still fits after it: every field and the path read back as sent.
    @Test func aHeadWithManyFieldsAndAnEscapedPathReadsBackWhole() {
        let parser = HTTPRequestParser(limits: defaultLimits)
        let fields = (0..<40).map { "X-F\($0): value-\($0)\r\n" }.joined()
        let text = "GET /v1/slots/a%20b/events HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n"
        let (consumed, result) = parser.parse(Array(text.utf8))
        guard case .request(let r) = result else { Issue.record("expected request, got \(result)"); return }
        #expect(consumed == text.utf8.count)
        #expect(r.path == "/v1/slots/a b/events")
        #expect(r.headers.count == 41)
        #expect((0..<40).allSatisfy { r.header("x-f\($0)") == "value-\($0)" })
    }

    @Test func partialHeadAndIdleState() {
        var parser = HTTPRequestParser(limits: defaultLimits)
        #expect(parser.isIdle && !parser.hasPartialHead)
        let (c1, r1) = parser.parse(Array("GET / HT".utf8))
        #expect(c1 == 8)
        guard case .needMore = r1 else { Issue.record("expected needMore"); return }
        #expect(!parser.isIdle && parser.hasPartialHead)
        let (_, r2) = parser.parse(Array("TP/1.1\r\nHost: a\r\n\r\n".utf8))
        guard case .request = r2 else { Issue.record("expected request"); return }
        #expect(parser.isIdle && !parser.hasPartialHead)
        // A body in flight is neither idle nor a partial head.
        _ = parser.parse(Array("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab".utf8))
        #expect(!parser.isIdle && !parser.hasPartialHead)
        _ = parser.parse(Array("cde".utf8))
        #expect(parser.isIdle)
    }

    @Test func leadingBlankLinesAreIgnored() {
        let out = feedWhole("\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        #expect(out.count == 1 && out[0].path == "/")
        var parser = HTTPRequestParser(limits: defaultLimits)
        _ = parser.parse(Array("\r\n".utf8))
        #expect(parser.isIdle)
    }

    @Test func bareLFLineEndsAreAccepted() {
        let out = feedWhole("GET /x HTTP/1.1\nHost: a\n\n")
        #expect(out.first?.path == "/x")
        #expect(out.first?.headers == ["Host: a"])
    }

    @Test func keepAliveRules() {
        func ka(_ version: String, _ connection: String?) -> Bool? {
            let header = connection.map { "Connection: \($0)\r\n" } ?? ""
            return feedWhole("GET / HTTP/\(version)\r\n\(header)\r\n").first?.keepAlive
        }
        #expect(ka("1.1", nil) == true)
        #expect(ka("1.1", "close") == false)
        #expect(ka("1.1", "Close") == false)
        #expect(ka("1.1", "keep-alive") == true)
        #expect(ka("1.1", "upgrade, close") == false)
        #expect(ka("1.0", nil) == false)
        #expect(ka("1.0", "keep-alive") == true)
        #expect(ka("1.0", "Keep-Alive") == true)
        #expect(ka("1.0", "close") == false)
    }

    @Test func pathDecodingAndTargetForms() {
        #expect(feedWhole("GET /v1/slots/a%3Ab/events HTTP/1.1\r\n\r\n").first?.path == "/v1/slots/a:b/events")
        #expect(feedWhole("GET /caf%C3%A9 HTTP/1.1\r\n\r\n").first?.path == "/café")
        #expect(feedWhole("GET http://example.com/v1/x?a=1 HTTP/1.1\r\n\r\n").first?.path == "/v1/x")
        #expect(feedWhole("GET http://example.com HTTP/1.1\r\n\r\n").first?.path == "/")
        #expect(feedWhole("OPTIONS * HTTP/1.1\r\n\r\n").first?.path == "*")
        #expect(feedWhole("GET /p#frag HTTP/1.1\r\n\r\n").first?.path == "/p")
        #expect(feedWhole("GET /p?a=1+2&b=%41 HTTP/1.1\r\n\r\n").first?.query == ["a=1 2", "b=A"])
        #expect(feedWhole("PURGE / HTTP/1.1\r\n\r\n").first?.method == "PURGE")
    }

    @Test func methodsWithoutLength() {
        #expect(feedWhole("DELETE /x HTTP/1.1\r\n\r\n").first?.error == nil)
        #expect(feedWhole("HEAD /x HTTP/1.1\r\n\r\n").first?.body == [])
        #expect(firstError("POST /x HTTP/1.1\r\n\r\n")?.status == 411)
        #expect(firstError("POST /x HTTP/1.1\r\n\r\n")?.code == "length_required")
        #expect(firstError("PUT /x HTTP/1.1\r\n\r\n")?.status == 411)
        #expect(feedWhole("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").first?.body == [])
    }

    @Test(arguments: [
        ("GET\r\n\r\n", "no spaces"),
        ("GET /\r\n\r\n", "missing version"),
        ("GET / \r\n\r\n", "empty version"),
        ("GET  / HTTP/1.1\r\n\r\n", "double space"),
        ("G(T / HTTP/1.1\r\n\r\n", "bad method token"),
        (" GET / HTTP/1.1\r\n\r\n", "leading space"),
        ("GET / HTTP/1.1 \r\n\r\n", "trailing space"),
        ("GET / http/1.1\r\n\r\n", "lowercase version"),
        ("GET / HTTP/1\r\n\r\n", "short version"),
        ("GET /a\u{7F} HTTP/1.1\r\n\r\n", "DEL in target"),
        ("GET /é HTTP/1.1\r\n\r\n", "non-ASCII target"),
        ("GET foo HTTP/1.1\r\n\r\n", "relative target"),
        ("GET /a%zz HTTP/1.1\r\n\r\n", "bad percent"),
        ("GET /a%4 HTTP/1.1\r\n\r\n", "truncated percent"),
        ("GET /a%ff HTTP/1.1\r\n\r\n", "percent decodes to non-UTF-8"),
        ("GET / HTTP/1.1\r\nHost a\r\n\r\n", "header without colon"),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "space before colon"),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", "empty header name"),
        ("GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", "obs-fold"),
        ("GET / HTTP/1.1\r\nX-A: a\u{01}b\r\n\r\n", "control char in value"),
        ("GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "bare CR in value"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two Host headers"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "CL and TE"),
        ("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "differing CL"),
        ("POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n", "differing CL list"),
        ("POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n", "negative CL"),
        ("POST / HTTP/1.1\r\nContent-Length: 3a\r\n\r\n", "non-digit CL"),
        ("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", "empty CL"),
        ("POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n", "signed CL"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "TE in HTTP/1.0"),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "chunked twice"),
    ])
    func malformedRequestsAre400(_ text: String, _ why: String) {
        let e = firstError(text)
        #expect(e?.status == 400, "\(why)")
        #expect(e?.code == "bad_request", "\(why)")
    }

    @Test func sameContentLengthTwiceIsAccepted() {
        let out = feedWhole("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc")
        #expect(out.first?.body.text == "abc")
        #expect(feedWhole("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc").first?.body.text == "abc")
    }

    @Test func versionsOtherThan10And11Are505() {
        #expect(firstError("GET / HTTP/2.0\r\n\r\n")?.status == 505)
        #expect(firstError("GET / HTTP/1.2\r\n\r\n")?.status == 505)
        #expect(firstError("GET / HTTP/0.9\r\n\r\n")?.status == 505)
    }

    @Test func unsupportedTransferCodingIs501() {
        #expect(firstError("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.status == 501)
        #expect(firstError("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")?.status == 501)
        #expect(feedWhole("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n").first?.error == nil)
    }

    @Test func requestLineLimitIs414EvenBeforeItEnds() {
        let limits = HTTPLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxBodyBytes: 100)
        let longTarget = "/" + String(repeating: "a", count: 100)
        // Not yet ended: no CRLF anywhere.
        #expect(firstError("GET \(longTarget)", limits: limits)?.status == 414)
        #expect(firstError("GET \(longTarget)", limits: limits)?.code == "uri_too_long")
        // Byte by byte it fails as soon as the line is too long.
        let bytes = Array("GET \(longTarget) HTTP/1.1\r\n\r\n".utf8)
        var parser = HTTPRequestParser(limits: limits)
        var failedAt: Int?
        for (i, b) in bytes.enumerated() {
            if case .error(let e) = parser.parse([b]).result { failedAt = i; #expect(e.status == 414); break }
        }
        #expect(failedAt != nil && failedAt! <= 65)
        // Exactly at the limit is fine.
        let exact = "GET /" + String(repeating: "b", count: 64 - 14) + " HTTP/1.1"
        #expect(exact.utf8.count == 64)
        #expect(feedWhole(exact + "\r\n\r\n", limits: limits).first?.error == nil)
        #expect(firstError("GET /" + String(repeating: "b", count: 64 - 13) + " HTTP/1.1\r\n\r\n", limits: limits)?.status == 414)
        #expect(feed(Array((exact + "\r\n\r\n").utf8).map { [$0] }, limits: limits).outcomes.first?.error == nil)
    }

    @Test func headLimitsAre431() {
        let limits = HTTPLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 5, maxBodyBytes: 100)
        let big = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "v", count: 300) + "\r\n\r\n"
        #expect(firstError(big, limits: limits)?.status == 431)
        #expect(firstError(big, limits: limits)?.code == "headers_too_large")
        // Unterminated head also fails once over the limit, split or not.
        let unterminated = Array(big.utf8.prefix(270))
        #expect(feed([unterminated], limits: limits).outcomes.first?.error?.status == 431)
        #expect(feed(unterminated.map { [$0] }, limits: limits).outcomes.first?.error?.status == 431)
        // Too many fields.
        let many = "GET / HTTP/1.1\r\n" + (0..<6).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(firstError(many, limits: limits)?.status == 431)
        let five = "GET / HTTP/1.1\r\n" + (0..<5).map { "X-\($0): v\r\n" }.joined() + "\r\n"
        #expect(feedWhole(five, limits: limits).first?.error == nil)
        // A head of exactly the limit is accepted.
        let prefix = "GET / HTTP/1.1\r\nX: "
        let exact = prefix + String(repeating: "v", count: 256 - prefix.utf8.count - 4) + "\r\n\r\n"
        #expect(exact.utf8.count == 256)
        #expect(feedWhole(exact, limits: limits).first?.error == nil)
        #expect(feed(Array(exact.utf8).map { [$0] }, limits: limits).outcomes.first?.error == nil)
    }

    @Test func bodyLimitIs413() {
        let limits = HTTPLimits(maxBodyBytes: 10)
        // As soon as Content-Length says so, before any body byte.
        let e = firstError("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", limits: limits)
        #expect(e?.status == 413)
        #expect(e?.code == "payload_too_large")
        #expect(firstError("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", limits: limits)?.status == 413)
        #expect(feedWhole("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits).first?.body.count == 10)
        // While reading chunked: the second chunk crosses the limit.
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n"
        #expect(firstError(chunked, limits: limits)?.status == 413)
        #expect(firstError("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", limits: limits)?.status == 413)
        let fits = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n"
        #expect(feedWhole(fits, limits: limits).first?.body.text == "abcdefghij")
    }

    @Test func chunkedSplitsInsideChunkSizeLines() {
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1F4 ; ext=\"q\"\r\n" + String(repeating: "x", count: 500)
            + "\r\n00000000000\r\n\r\nGET /next HTTP/1.1\r\n\r\n"
        let bytes = Array(text.utf8)
        let whole = feed([bytes]).outcomes
        #expect(whole.count == 2)
        #expect(whole.first?.body.count == 500)
        #expect(whole.last?.path == "/next")
        for i in 0...bytes.count {
            #expect(feed([Array(bytes[..<i]), Array(bytes[i...])]).outcomes == whole, "split at \(i)")
        }
    }

    @Test(arguments: [
        ("\r\n", "missing size"),
        ("g\r\n", "non-hex size"),
        ("3\nabc\r\n0\r\n\r\n", "bare LF after size"),
        ("3\r\nabcd\r\n0\r\n\r\n", "data longer than size"),
        ("3\r\nabc\n0\r\n\r\n", "bare LF after data"),
        ("0\r\n\r\r", "bad final line"),
        ("0\r\nX: a\n\r\n", "bare LF in trailer"),
        ("3;\u{01}\r\nabc\r\n0\r\n\r\n", "control char in extension"),
    ])
    func malformedChunkedBodiesAre400(_ body: String, _ why: String) {
        let text = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body
        #expect(firstError(text)?.status == 400, "\(why)")
    }

    @Test func chunkLineAndTrailerLimits() {
        let limits = HTTPLimits(maxBodyBytes: 100, maxChunkLineBytes: 16, maxTrailerBytes: 32)
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(firstError(head + "1;" + String(repeating: "e", count: 20) + "\r\n", limits: limits)?.status == 400)
        #expect(firstError(head + "0\r\nX: " + String(repeating: "t", count: 40) + "\r\n\r\n", limits: limits)?.status == 431)
        #expect(feedWhole(head + "0\r\nX: t\r\nY: u\r\n\r\n", limits: limits).first?.body == [])
    }

    @Test func deadParserKeepsReturningTheError() {
        var parser = HTTPRequestParser(limits: defaultLimits)
        let (c1, r1) = parser.parse(Array("BAD\r\n\r\n".utf8))
        #expect(c1 == 0)
        guard case .error(let e1) = r1 else { Issue.record("expected error"); return }
        let (c2, r2) = parser.parse(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(c2 == 0)
        guard case .error(let e2) = r2 else { Issue.record("expected error"); return }
        #expect(e1 == e2)
        #expect(parser.isDead)
    }

    @Test func expectContinue() {
        var parser = HTTPRequestParser(limits: defaultLimits)
        _ = parser.parse(Array("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        #expect(parser.awaitingContinue)
        parser.markContinueSent()
        #expect(!parser.awaitingContinue)
        guard case .request(let r) = parser.parse(Array("abc".utf8)).result else { Issue.record("no request"); return }
        #expect(r.expectsContinue)
        #expect(r.body.text == "abc")
        _ = parser.parse(Array("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        #expect(parser.awaitingContinue)  // reset for the next request
    }

    @Test func headerValuesAreTrimmedAndKeepOrder() {
        let r = feedWhole("GET / HTTP/1.1\r\nA: \t one \t\r\nB:two\r\nA: three\r\nEmpty:\r\n\r\n").first
        #expect(r?.headers == ["A: one", "B: two", "A: three", "Empty: "])
    }

    @Test func randomSplitsOfAPipelineMatch() {
        var rng = SeededGenerator(seed: 2024)
        let bytes = Array((getRequest + chunkedRequest + postRequest + getRequest).utf8)
        let whole = feed([bytes]).outcomes
        #expect(whole.count == 4)
        for _ in 0..<300 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 1...40, using: &rng)
                chunks.append(Array(bytes[i..<min(bytes.count, i + n)]))
                i += n
            }
            #expect(feed(chunks).outcomes == whole)
        }
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
