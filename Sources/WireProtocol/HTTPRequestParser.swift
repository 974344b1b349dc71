#if canImport(Glibc)
import Glibc
#endif
/// An incremental HTTP/1.1 request parser with pipelining.
///
/// Feed it the bytes as they arrive. Each call consumes at most one request: when the bytes
/// hold a whole request (head and body) it returns `.request` with `consumed` at its end,
/// leaving any pipelined request after it for the next call. When the bytes end inside a
/// request it consumes all of them, keeps what it needs (bounded by `HTTPLimits`) and returns
/// `.needMore`. A head that arrives in one buffer is parsed in place, without a copy.
///
/// The parser is strict where leniency lets a request mean two things (request smuggling):
/// `Content-Length` with `Transfer-Encoding`, differing lengths, obs-fold, bare CR, chunk
/// lines not ended by CRLF are all 400. A bare LF is accepted as the end of a head line
/// (RFC 9112 §2.2), so hand-typed requests work. After an error the parser is dead and
/// returns the same error with nothing consumed.
///
/// A class, not a struct: a connection's parser lives in the engine's connection table, and
/// reading a struct's state there (`isIdle`, `awaitingContinue`) copied the whole parser, its
/// buffers retained and released, on every request.
public final class HTTPRequestParser {
    /// The limits this parser enforces.
    public let limits: HTTPLimits
    /// Whether a head whose body is still to come is reported (`.head`) before the body is read.
    public let reportsHeadBeforeBody: Bool

    private enum State: Sendable {
        case head
        case body(remaining: Int)
        case chunked(Chunk)
        case dead(HTTPParseError)
    }

    /// Where the chunked decoder is within the body framing.
    private enum Chunk: Sendable {
        case size, ext, sizeLF
        case data(remaining: Int)
        case dataCR, dataLF
        case trailerLineStart, trailerLine, trailerLF, finalLF
    }

    private var state: State = .head

    // Head scanning, kept across calls while a head is split over buffers.
    private var headBuffer: [UInt8] = []
    private var lineLength = 0
    private var lineFirstIsCR = false
    private var previousIsCR = false
    private var requestLineEnded = false

    // Body of the request whose head was parsed.
    private var pending: HTTPRequest?
    private var continueSent = false
    /// A tighter body limit for the current request (set after `.head`, see `limitBody`).
    private var bodyLimit: (bytes: Int, name: String)?
    private var chunkSize = 0
    /// The last request's head storage and whole body, reused by the next request while nothing
    /// else holds them: pipelined requests then cost no allocation each. A handler that keeps a
    /// request keeps its arrays (they are copy-on-write: the next request gets new ones).
    /// `releaseBuffers` drops them when the bytes at hand are parsed, so an idle connection
    /// holds none.
    private var storageReuse: [UInt8] = []
    private var bodyReuse: [UInt8] = []
    /// A body larger than this is not kept for reuse.
    static let reusedBodyBytesMax = 16 << 10
    private var chunkSizeDigits = 0
    private var chunkLineBytes = 0
    private var trailerBytes = 0

    /// Creates an idle parser enforcing `limits`. With `reportsHeadBeforeBody`, a request whose
    /// body does not arrive in the same bytes as its head is first reported as `.head`, so a
    /// server can refuse it (authorization, size) without buffering the body.
    public init(limits: HTTPLimits, reportsHeadBeforeBody: Bool = false) {
        self.limits = limits
        self.reportsHeadBeforeBody = reportsHeadBeforeBody
    }

    /// Body bytes of the current request held by the parser so far.
    public var bufferedBodyBytes: Int { pending?.body.count ?? 0 }
    /// Chunks of the current chunked body received whole (data and its CRLF).
    public private(set) var completedChunks = 0

    /// Whether the head of the current request was parsed and its body is being read (tests).
    var isReadingBody: Bool {
        switch state {
        case .body, .chunked: return true
        default: return false
        }
    }

    /// Whether no part of a request is buffered: the connection is between requests.
    public var isIdle: Bool {
        if case .head = state { return headBuffer.isEmpty }
        return false
    }

    /// Whether part of a request head has arrived but not all of it (the header timeout runs).
    public var hasPartialHead: Bool {
        if case .head = state { return !headBuffer.isEmpty }
        return false
    }

    /// Whether the parser is dead after an error.
    public var isDead: Bool {
        if case .dead = state { return true }
        return false
    }

    /// Whether the head of a request with `Expect: 100-continue` was parsed, none of its body
    /// has arrived and `markContinueSent` was not called: the caller should send
    /// `HTTPResponseWriter.continueResponse` so the client sends the body without waiting.
    public var awaitingContinue: Bool {
        guard !continueSent, let pending, pending.expectsContinue, pending.body.isEmpty else { return false }
        switch state {
        case .body, .chunked: return true
        default: return false
        }
    }

    /// Holds the body of the request just reported as `.head` to `maxBytes` (a route's own
    /// limit, below `limits.maxBodyBytes`): a chunked body that grows past it fails with 413 as
    /// soon as the chunk size that crosses it is read. `name` says in the error which limit it is.
    public func limitBody(maxBytes: Int, name: String) {
        bodyLimit = (min(maxBytes, limits.maxBodyBytes), name)
    }

    /// Records that the interim `100 Continue` was sent for the pending request.
    public func markContinueSent() {
        continueSent = true
    }

    /// Drops the arrays kept for the next request (call when the bytes at hand are parsed).
    public func releaseBuffers() {
        storageReuse = []
        bodyReuse = []
    }

    /// Parses at most one request from `bytes`.
    public func parse(_ bytes: UnsafeRawBufferPointer) -> (consumed: Int, result: HTTPParseResult) {
        var offset = 0
        if case .dead(let e) = state { return (0, .error(e)) }
        if case .head = state {
            switch scanHead(bytes) {
            case .needMore:
                return (bytes.count, .needMore)
            case .failed(let e):
                return (0, fail(e))
            case .complete(let request, let framing, let end):
                offset = end
                switch framing {
                case .none:
                    return (offset, .request(finish(request)))
                case .length(let n):
                    if n == 0 { return (offset, .request(finish(request))) }
                    if bytes.count - offset >= n {
                        // The whole body is here (the usual case): no trip through `pending`.
                        var r = request
                        let body = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
                        if n <= HTTPRequestParser.reusedBodyBytesMax {
                            bodyReuse.replaceSubrange(bodyReuse.startIndex..<bodyReuse.endIndex, with: body)
                            r.body = bodyReuse
                        } else {
                            r.body = Array(body)
                        }
                        return (offset + n, .request(finish(r)))
                    }
                    var r = request
                    // With the head reported first, the body is reserved when its first bytes
                    // arrive: a refused head (no token, too large) must not cost its
                    // Content-Length in memory.
                    if !reportsHeadBeforeBody { r.body.reserveCapacity(n) }
                    pending = r
                    state = .body(remaining: n)
                    if reportsHeadBeforeBody { return (offset, .head(request, contentLength: n)) }
                case .chunked:
                    pending = request
                    chunkSize = 0
                    chunkSizeDigits = 0
                    chunkLineBytes = 0
                    trailerBytes = 0
                    state = .chunked(.size)
                    if reportsHeadBeforeBody { return (offset, .head(request, contentLength: nil)) }
                }
            }
        }
        switch state {
        case .body(let remaining):
            let take = min(remaining, bytes.count - offset)
            if take > 0 {
                if pending!.body.isEmpty { pending!.body.reserveCapacity(remaining) }
                pending!.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            }
            offset += take
            if take == remaining {
                let r = pending!
                return (offset, .request(finish(r)))
            }
            state = .body(remaining: remaining - take)
            return (offset, .needMore)
        case .chunked(let chunk):
            return parseChunked(bytes, from: offset, chunk)
        case .head, .dead:
            preconditionFailure("unreachable parser state")
        }
    }

    /// Parses at most one request from `bytes`.
    public func parse(_ bytes: [UInt8]) -> (consumed: Int, result: HTTPParseResult) {
        bytes.withUnsafeBytes { parse($0) }
    }

    // MARK: Head

    private enum Framing { case none, length(Int), chunked }

    /// What parseHead made of a complete head (not a generic `Result` of a tuple: its copies
    /// and destruction would go through the runtime's generic tuple witnesses, per request).
    private enum HeadParse {
        case parsed(HTTPRequest, Framing)
        case failure(HTTPParseError)
    }

    private enum HeadScan {
        case needMore
        case failed(HTTPParseError)
        case complete(HTTPRequest, Framing, end: Int)
    }

    private func fail(_ e: HTTPParseError) -> HTTPParseResult {
        state = .dead(e)
        headBuffer = []
        pending = nil
        return .error(e)
    }

    private func finish(_ request: HTTPRequest) -> HTTPRequest {
        state = .head
        pending = nil
        continueSent = false
        bodyLimit = nil
        completedChunks = 0
        return request
    }

    /// Looks for the blank line that ends the head, enforcing the head limits as it goes.
    private func scanHead(_ bytes: UnsafeRawBufferPointer) -> HeadScan {
        let n = bytes.count
        var i = 0
        if headBuffer.isEmpty {
            // RFC 9112 §2.2: ignore empty lines before the request line (some clients send
            // CRLF after a POST body). They are consumed but never buffered.
            while i < n, bytes[i] == ASCII.cr || bytes[i] == ASCII.lf { i += 1 }
            if i == n { return .needMore }
            lineLength = 0
            lineFirstIsCR = false
            previousIsCR = false
            requestLineEnded = false
        }
        let start = i
        let allowed = limits.maxHeaderBytes - headBuffer.count
        let limit = min(n, start + allowed)
        let maxLine = limits.maxRequestLineBytes
        while i < limit {
            // Jump to the next LF (memchr), accounting the bytes before it to the current line.
            let found = memchr(bytes.baseAddress! + i, Int32(ASCII.lf), limit - i)
            let lf = found.map { bytes.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? limit
            if lf > i {
                if lineLength == 0 { lineFirstIsCR = bytes[i] == ASCII.cr }
                lineLength += lf - i
                previousIsCR = bytes[lf - 1] == ASCII.cr
                i = lf
                if !requestLineEnded, lineLength > maxLine + 1 || (lineLength == maxLine + 1 && !previousIsCR) {
                    return .failed(.uriTooLong("request line over \(maxLine) bytes"))
                }
                if i == limit { break }
            }
            if !requestLineEnded {
                let content = lineLength - (previousIsCR ? 1 : 0)
                if content > maxLine { return .failed(.uriTooLong("request line over \(maxLine) bytes")) }
                requestLineEnded = true
            } else if lineLength == 0 || (lineLength == 1 && lineFirstIsCR) {
                // The blank line: the head is complete.
                let end = i + 1
                let parsed: HeadParse
                if headBuffer.isEmpty {
                    parsed = parseHead(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                } else {
                    headBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    parsed = headBuffer.withUnsafeBytes { parseHead($0) }
                    headBuffer = []  // not keepingCapacity: an idle connection holds no buffer
                }
                switch parsed {
                case .parsed(let request, let framing): return .complete(request, framing, end: end)
                case .failure(let e): return .failed(e)
                }
            }
            lineLength = 0
            previousIsCR = false
            i += 1
        }
        if limit < n {
            return .failed(.headersTooLarge("request head over \(limits.maxHeaderBytes) bytes"))
        }
        headBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<n]))
        return .needMore
    }

    /// Parses a complete head (request line through the blank line) into a request without body.
    private func parseHead(_ head: UnsafeRawBufferPointer) -> HeadParse {
        var lines = LineIterator(head)
        guard let rl = lines.next() else { return .failure(.badRequest("empty request")) }
        let line = UnsafeRawBufferPointer(rebasing: head[rl])

        // method SP request-target SP HTTP-version
        guard !line.isEmpty, let sp1At = memchr(line.baseAddress!, Int32(ASCII.space), line.count) else {
            return .failure(refuse(line, .badRequest("malformed request line")))
        }
        let sp1 = line.baseAddress!.distance(to: UnsafeRawPointer(sp1At))
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[0..<sp1])
        guard !methodBytes.isEmpty, ASCII.allTokenChars(methodBytes) else {
            return .failure(refuse(line, .badRequest("bad method token")))
        }
        guard sp1 + 1 < line.count,
              let sp2At = memchr(line.baseAddress! + sp1 + 1, Int32(ASCII.space), line.count - sp1 - 1) else {
            return .failure(refuse(line, .badRequest("missing HTTP version")))
        }
        let sp2 = line.baseAddress!.distance(to: UnsafeRawPointer(sp2At))
        let targetBytes = UnsafeRawBufferPointer(rebasing: line[(sp1 + 1)..<sp2])
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(sp2 + 1)...])
        guard !targetBytes.isEmpty, ASCII.allVisible(targetBytes) else {
            return .failure(refuse(line, .badRequest("bad request target")))
        }
        let version: (major: Int, minor: Int)
        switch parseVersion(versionBytes) {
        case .success(let v): version = v
        case .failure(let e): return .failure(refuse(line, e))
        }
        let method = HTTPMethod(token: methodBytes)

        // Headers: located, not copied; the request keeps the head's bytes and a table of
        // where each field is (four UInt32 per field), both in one array.
        let base = head.baseAddress!
        func offset(_ p: UnsafeRawBufferPointer) -> Int { p.baseAddress.map { base.distance(to: $0) } ?? 0 }
        // The request's storage: the head's bytes, the field table (four UInt32 per field:
        // name start, name end, value start, value end), a decoded path if there is one (no
        // longer than the target: `pathRoom` stays free after the table). Written in place;
        // the last request's array is reused, its count kept (bytes past the parts the request
        // names are never read), and grown when a head has more fields than it has room for.
        let pathRoom = targetBytes.count + 1
        let initial = head.count + 16 * 12 + pathRoom
        if storageReuse.count < initial { storageReuse = [UInt8](repeating: 0, count: initial) }
        storageReuse.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: base, byteCount: head.count) }
        var tableEnd = head.count
        var fieldCount = 0
        var contentLength: Int?
        var transferCodings: [Substring]?
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
        var hostCount = 0
        while let range = lines.next() {
            let field = UnsafeRawBufferPointer(rebasing: head[range])
            if field.isEmpty { break }  // the blank line
            if field[0] == ASCII.space || field[0] == ASCII.tab {
                return .failure(refuse(field, .badRequest("obsolete line folding in headers")))
            }
            guard let colonAt = memchr(field.baseAddress!, Int32(ASCII.colon), field.count) else {
                return .failure(refuse(field, .badRequest("header line without colon")))
            }
            let colon = field.baseAddress!.distance(to: UnsafeRawPointer(colonAt))
            let nameBytes = UnsafeRawBufferPointer(rebasing: field[0..<colon])
            guard !nameBytes.isEmpty, ASCII.allTokenChars(nameBytes) else {
                return .failure(refuse(field, .badRequest("bad header name")))
            }
            var vs = colon + 1
            var ve = field.count
            while vs < ve, field[vs] == ASCII.space || field[vs] == ASCII.tab { vs += 1 }
            while ve > vs, field[ve - 1] == ASCII.space || field[ve - 1] == ASCII.tab { ve -= 1 }
            let valueBytes = UnsafeRawBufferPointer(rebasing: field[vs..<ve])
            guard ASCII.allFieldValueChars(valueBytes) else {
                return .failure(refuse(field, .badRequest("bad character in header value")))
            }
            if fieldCount == limits.maxHeaderCount {
                return .failure(.headersTooLarge("more than \(limits.maxHeaderCount) header fields"))
            }
            let fieldStart = UInt32(range.lowerBound)
            if tableEnd + 16 + pathRoom > storageReuse.count {
                storageReuse.append(contentsOf: repeatElement(0, count: 16 * 16))
            }
            storageReuse.withUnsafeMutableBytes { s in
                s.storeBytes(of: fieldStart.littleEndian, toByteOffset: tableEnd, as: UInt32.self)
                s.storeBytes(of: (fieldStart + UInt32(colon)).littleEndian, toByteOffset: tableEnd + 4, as: UInt32.self)
                s.storeBytes(of: (fieldStart + UInt32(vs)).littleEndian, toByteOffset: tableEnd + 8, as: UInt32.self)
                s.storeBytes(of: (fieldStart + UInt32(ve)).littleEndian, toByteOffset: tableEnd + 12, as: UInt32.self)
            }
            tableEnd += 16
            fieldCount += 1

            // Only names of the right length are compared: most headers match none of these.
            let nameLength = nameBytes.count
            if nameLength == 14 && ASCII.equalsLowercase(nameBytes, "content-length") {
                guard let n = parseContentLength(valueBytes), contentLength == nil || contentLength == n else {
                    return .failure(.badRequest("invalid or conflicting Content-Length"))
                }
                contentLength = n
            } else if nameLength == 17 && ASCII.equalsLowercase(nameBytes, "transfer-encoding") {
                let value = String(decoding: valueBytes, as: UTF8.self)
                let codings = value.split(separator: ",").map(trimOWS).filter { !$0.isEmpty }
                transferCodings = (transferCodings ?? []) + codings
            } else if nameLength == 10 && ASCII.equalsLowercase(nameBytes, "connection") {
                forEachToken(valueBytes) { token in
                    if ASCII.equalsLowercase(token, "close") { connectionClose = true }
                    if ASCII.equalsLowercase(token, "keep-alive") { connectionKeepAlive = true }
                }
            } else if nameLength == 6 && ASCII.equalsLowercase(nameBytes, "expect") {
                if ASCII.equalsLowercase(valueBytes, "100-continue") { expectsContinue = true }
            } else if nameLength == 4 && ASCII.equalsLowercase(nameBytes, "host") {
                hostCount += 1
                if hostCount > 1 { return .failure(.badRequest("more than one Host header")) }
            }
        }

        // Framing (RFC 9112 §6.3).
        let framing: Framing
        if let codings = transferCodings {
            if contentLength != nil {
                return .failure(.badRequest("both Content-Length and Transfer-Encoding"))
            }
            if version.minor == 0 {
                return .failure(.badRequest("Transfer-Encoding in an HTTP/1.0 request"))
            }
            for c in codings where !ASCII.equalsIgnoringCase(c.utf8, "chunked".utf8) {
                return .failure(.notImplemented("unsupported transfer coding '\(c)'"))
            }
            guard codings.count == 1 else {
                return .failure(.badRequest("chunked must be applied exactly once"))
            }
            framing = .chunked
        } else if let n = contentLength {
            if n > limits.maxBodyBytes {
                return .failure(.payloadTooLarge("body of \(n) bytes over the limit of \(limits.maxBodyBytes)"))
            }
            framing = .length(n)
        } else {
            switch method {
            case .post, .put, .patch:
                return .failure(.lengthRequired("\(method) needs Content-Length or chunked Transfer-Encoding"))
            default:
                framing = .none
            }
        }

        // Target: origin-form, absolute-form, or `*`.
        let tb = targetBytes   // no copy: the request line is parsed in place
        let targetStart = offset(tb)
        var pathStart = 0
        var decodedPath: [UInt8]? = nil
        if tb[0] == ASCII.slash {
            pathStart = 0
        } else if tb.count == 1 && tb[0] == 0x2A {  // "*"
            pathStart = -1
            decodedPath = [0x2A]
        } else if let schemeEnd = absoluteFormAuthorityStart(tb) {
            var j = schemeEnd
            while j < tb.count, tb[j] != ASCII.slash, tb[j] != ASCII.question, tb[j] != ASCII.hash { j += 1 }
            pathStart = j
        } else {
            return .failure(.badRequest("unsupported request target form"))
        }
        var pathRange = 0..<0
        var queryRange = 0..<0
        if pathStart >= 0 {
            var pathEnd = ASCII.firstPathSpecial(tb, from: pathStart)
            var escaped = false
            while pathEnd < tb.count, tb[pathEnd] == ASCII.percent {
                escaped = true
                pathEnd = ASCII.firstPathSpecial(tb, from: pathEnd + 1)
            }
            if pathEnd == pathStart {
                decodedPath = [ASCII.slash]
            } else if !escaped {
                // The common case: nothing to decode, and the bytes are printable ASCII
                // (checked above), so they are valid UTF-8 as they stand: the request's
                // path is its own bytes of the head.
                decodedPath = nil
                pathRange = (targetStart + pathStart)..<(targetStart + pathEnd)
            } else {
                guard let decoded = PercentDecoding.decode(tb[pathStart..<pathEnd]) else {
                    return .failure(.badRequest("invalid percent-encoding in path"))
                }
                guard decoded.withUnsafeBytes({ UTF8Validator.isValid($0) }) else {
                    return .failure(.badRequest("path is not UTF-8"))
                }
                decodedPath = decoded
            }
            if pathEnd < tb.count, tb[pathEnd] == ASCII.question {
                var qe = pathEnd + 1
                while qe < tb.count, tb[qe] != ASCII.hash { qe += 1 }
                queryRange = (targetStart + pathEnd + 1)..<(targetStart + qe)
            }
        }

        let keepAlive = version.minor >= 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        let tableStart = head.count
        if let decodedPath {
            pathRange = tableEnd..<(tableEnd + decodedPath.count)
            storageReuse.withUnsafeMutableBytes { s in
                decodedPath.withUnsafeBytes { (s.baseAddress! + tableEnd).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        let request = HTTPRequest(method: method, version: version, keepAlive: keepAlive, expectsContinue: expectsContinue,
                                  storage: storageReuse, tableStart: tableStart, fieldCount: fieldCount,
                                  targetRange: targetStart..<(targetStart + tb.count), pathRange: pathRange,
                                  queryRange: queryRange)
        return .parsed(request, framing)
    }

    /// `HTTP/1.0` or `HTTP/1.1`; other well-formed versions are 505, anything else 400.
    private func parseVersion(_ v: UnsafeRawBufferPointer) -> Result<(major: Int, minor: Int), HTTPParseError> {
        guard v.count == 8, v[0] == 0x48, v[1] == 0x54, v[2] == 0x54, v[3] == 0x50, v[4] == ASCII.slash,
              ASCII.isDigit(v[5]), v[6] == ASCII.dot, ASCII.isDigit(v[7]) else {
            return .failure(.badRequest("malformed HTTP version"))
        }
        let major = Int(v[5] &- ASCII.zero)
        let minor = Int(v[7] &- ASCII.zero)
        guard major == 1, minor <= 1 else {
            return .failure(.versionNotSupported("HTTP/\(major).\(minor) is not supported"))
        }
        return .success((major, minor))
    }

    /// A `Content-Length` value: `1*DIGIT`, or a list of identical ones; `nil` if invalid.
    ///
    /// Too many digits saturate to `Int.max`, which then fails the body limit (413).
    private func parseContentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        guard let base = value.baseAddress, !value.isEmpty else { return nil }
        // One value, the common case (OWS was trimmed with the field value).
        if memchr(base, Int32(ASCII.comma), value.count) == nil { return decimal(value) }
        var result: Int?
        for element in value.split(separator: ASCII.comma, omittingEmptySubsequences: false) {
            var s = element.startIndex
            var e = element.endIndex
            while s < e, element[s] == ASCII.space || element[s] == ASCII.tab { s += 1 }
            while e > s, element[e - 1] == ASCII.space || element[e - 1] == ASCII.tab { e -= 1 }
            guard let n = decimal(UnsafeRawBufferPointer(rebasing: element[s..<e])) else { return nil }
            if let r = result, r != n { return nil }
            result = n
        }
        return result
    }

    /// `1*DIGIT` as a number, saturating at `Int.max`; nil if empty or not all digits.
    private func decimal(_ digits: UnsafeRawBufferPointer) -> Int? {
        guard !digits.isEmpty else { return nil }
        var n = 0
        for b in digits {
            guard ASCII.isDigit(b) else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(b &- ASCII.zero))
            n = (o1 || o2) ? Int.max : a
        }
        return n
    }

    /// For `http://…` / `https://…`, the index just after `://`.
    private func absoluteFormAuthorityStart(_ t: UnsafeRawBufferPointer) -> Int? {
        for scheme in ["http://", "https://"] {
            let s = Array(scheme.utf8)
            if t.count >= s.count, ASCII.equalsIgnoringCase(t[0..<s.count], s) { return s.count }
        }
        return nil
    }

    // MARK: Chunked body

    private func parseChunked(_ bytes: UnsafeRawBufferPointer, from start: Int,
                                       _ initial: Chunk) -> (consumed: Int, result: HTTPParseResult) {
        var chunk = initial
        var i = start
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            switch chunk {
            case .size:
                chunkLineBytes += 1
                if let v = ASCII.hexValue(b) {
                    chunkSizeDigits += 1
                    // 15 hex digits already exceed any body limit; stop before overflow.
                    if chunkSizeDigits > 15 { return (0, fail(.payloadTooLarge("chunk size too large"))) }
                    chunkSize = chunkSize << 4 | Int(v)
                } else if chunkSizeDigits == 0 {
                    return (0, fail(.badRequest("missing chunk size")))
                } else if b == ASCII.semicolon || b == ASCII.space || b == ASCII.tab {
                    chunk = .ext
                } else if b == ASCII.cr {
                    chunk = .sizeLF
                } else {
                    return (0, fail(.badRequest("bad chunk size line")))
                }
                i += 1
            case .ext:
                // Chunk extensions carry nothing we use: skip them, bounded by the line limit.
                chunkLineBytes += 1
                if b == ASCII.cr {
                    chunk = .sizeLF
                } else if b == ASCII.lf || (b < 0x20 && b != ASCII.tab) || b == 0x7F {
                    return (0, fail(.badRequest("bad chunk extension")))
                }
                i += 1
            case .sizeLF:
                guard b == ASCII.lf else { return (0, fail(.badRequest("chunk size line not ended by CRLF"))) }
                i += 1
                if chunkSize == 0 {
                    chunk = .trailerLineStart
                } else {
                    if let (limit, name) = bodyLimit, chunkSize > limit - pending!.body.count {
                        return (0, fail(.payloadTooLarge("chunked body over \(limit) bytes (\(name))")))
                    }
                    if chunkSize > limits.maxBodyBytes - pending!.body.count {
                        return (0, fail(.payloadTooLarge("chunked body over \(limits.maxBodyBytes) bytes")))
                    }
                    chunk = .data(remaining: chunkSize)
                }
            case .data(let remaining):
                let take = min(remaining, n - i)
                pending!.body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<i + take]))
                i += take
                chunk = take == remaining ? .dataCR : .data(remaining: remaining - take)
            case .dataCR:
                guard b == ASCII.cr else { return (0, fail(.badRequest("chunk data not followed by CRLF"))) }
                chunk = .dataLF
                i += 1
            case .dataLF:
                guard b == ASCII.lf else { return (0, fail(.badRequest("chunk data not followed by CRLF"))) }
                completedChunks += 1
                chunk = .size
                chunkSize = 0
                chunkSizeDigits = 0
                chunkLineBytes = 0
                i += 1
            case .trailerLineStart:
                if b == ASCII.cr {
                    chunk = .finalLF
                } else if b == ASCII.lf || (b < 0x20 && b != ASCII.tab) || b == 0x7F {
                    return (0, fail(.badRequest("bad trailer field")))
                } else {
                    chunk = .trailerLine
                    trailerBytes += 1
                }
                i += 1
            case .trailerLine:
                // Trailer fields are tolerated and dropped; nothing in Ringgate reads them.
                trailerBytes += 1
                if b == ASCII.cr {
                    chunk = .trailerLF
                } else if b == ASCII.lf || (b < 0x20 && b != ASCII.tab) || b == 0x7F {
                    return (0, fail(.badRequest("bad trailer field")))
                }
                i += 1
            case .trailerLF:
                guard b == ASCII.lf else { return (0, fail(.badRequest("trailer line not ended by CRLF"))) }
                trailerBytes += 1
                chunk = .trailerLineStart
                i += 1
            case .finalLF:
                guard b == ASCII.lf else { return (0, fail(.badRequest("chunked body not ended by CRLF"))) }
                i += 1
                let r = pending!
                return (i, .request(finish(r)))
            }
            if chunkLineBytes > limits.maxChunkLineBytes {
                return (0, fail(.badRequest("chunk size line over \(limits.maxChunkLineBytes) bytes")))
            }
            if trailerBytes > limits.maxTrailerBytes {
                return (0, fail(.headersTooLarge("trailer section over \(limits.maxTrailerBytes) bytes")))
            }
        }
        state = .chunked(chunk)
        return (n, .needMore)
    }
}

/// Trims spaces and tabs from both ends.
/// Calls `body` with each comma-separated token of a header value, spaces and tabs trimmed,
/// empty ones skipped.
private func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    while start <= value.count {
        var end = start
        while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
        var a = start, b = end
        while a < b, value[a] == ASCII.space || value[a] == ASCII.tab { a += 1 }
        while b > a, value[b - 1] == ASCII.space || value[b - 1] == ASCII.tab { b -= 1 }
        if a < b { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
        start = end + 1
    }
}

private func trimOWS(_ s: Substring) -> Substring {
    var s = s
    while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" { s.removeLast() }
    return s
}

/// Iterates the lines of a complete head as index ranges without their line ends.
///
/// A line ends at LF, optionally preceded by CR. A CR anywhere else is not looked for here:
/// every part of a line is checked against a byte class that excludes CR (token, visible
/// target, exact version, field value), so such a line always fails, and `refuse` then names
/// the CR as the reason.
private struct LineIterator {
    let head: UnsafeRawBufferPointer
    var position = 0

    init(_ head: UnsafeRawBufferPointer) { self.head = head }

    mutating func next() -> Range<Int>? {
        guard position < head.count else { return nil }
        let base = head.baseAddress!
        let found = memchr(base + position, Int32(ASCII.lf), head.count - position)
        let i = found.map { base.distance(to: UnsafeRawPointer($0)) } ?? head.count
        var end = i
        if end > position, head[end - 1] == ASCII.cr { end -= 1 }
        let range = position..<end
        position = i + 1
        return range
    }
}

/// The refusal of a line that failed a check: a bare CR in it is named as the reason (it is
/// what made the check fail, whichever check that was).
private func refuse(_ line: UnsafeRawBufferPointer, _ error: HTTPParseError) -> HTTPParseError {
    if let base = line.baseAddress, memchr(base, Int32(ASCII.cr), line.count) != nil {
        return .badRequest("bare CR in request head")
    }
    return error
}
