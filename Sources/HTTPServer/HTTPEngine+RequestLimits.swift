import IO
import Glibc
import WireProtocol

/// Requests judged before their bodies are read, the process-wide body budget, the admin reserve
/// and parse-error counts (issue 10, items 8, 10, 11).
extension HTTPEngine {
    /// The head of a request whose body follows: the header timeout ends, the delegate may
    /// refuse it, and the body must fit the pending-body budget. False when it was refused.
    func headAccepted(_ conn: Int32, _ request: HTTPRequest, contentLength: Int?) -> Bool {
        let c = table + Int(conn)
        c.pointee.headStartNanoseconds = 0
        c.pointee.bodyProgressNanoseconds = nowNanoseconds
        c.pointee.bodyBytesSinceProgress = 0
        c.pointee.bodyChunked = contentLength == nil
        if c.pointee.reserve && !configuration.adminPaths.contains(request.path) {
            rejectOnReserve(conn)
            return false
        }
        if let delegate, !delegate.engine(self, acceptsHead: request, contentLength: contentLength, connection: conn) {
            if c.pointee.phase == .http && c.pointee.parser != nil {
                respondError(conn, status: 400, error: "rejected", detail: "the request was refused", close: true)
            }
            return false
        }
        guard c.pointee.phase == .http, c.pointee.parser != nil else { return false }
        if let n = contentLength, !reserveBody(conn, bytes: n) { return false }
        if c.pointee.parser!.awaitingContinue {
            c.pointee.parser!.markContinueSent()
            respond(conn, HTTPResponseWriter.continueResponse)
        }
        c.pointee.headJudged = true
        return true
    }

    /// Whether the request being handed to `engine(_:request:connection:)` had its head
    /// accepted by `engine(_:acceptsHead:…)` already (its body came after the head), so the
    /// delegate need not judge the same head twice.
    public func requestHeadWasAccepted(_ conn: Int32) -> Bool { table[Int(conn)].requestJudged }

    /// Holds the body of the request whose head the delegate is judging to `maxBytes` (a
    /// route's limit below the parser's): a chunked body gets 413 as soon as it would cross it,
    /// not once it was buffered whole. Call from `engine(_:acceptsHead:…)`.
    public func limitBody(_ conn: Int32, maxBytes: Int, name: String) {
        let c = table + Int(conn)
        guard c.pointee.phase == .http, c.pointee.parser != nil else { return }
        c.pointee.parser!.limitBody(maxBytes: maxBytes, name: name)
    }

    /// Takes `bytes` more of the pending-body budget, or answers 503 and closes.
    func reserveBody(_ conn: Int32, bytes: Int) -> Bool {
        let c = table + Int(conn)
        guard pendingBodyBytes + bytes <= configuration.maxPendingBodyBytes else {
            counters.add(.pendingBodyRejected)
            respondError(conn, status: 503, error: "over_capacity",
                         detail: "request bodies in progress fill the buffer limit (--max-pending-body-bytes \(configuration.maxPendingBodyBytes)); retry later",
                         extraHeaders: [("Retry-After", "1")], close: true)
            return false
        }
        pendingBodyBytes += bytes
        c.pointee.bodyReservedBytes += bytes
        counters.add(.pendingBodyBytes, UInt64(bytes))
        return true
    }

    /// A chunked body has no length up front: the budget follows what is buffered.
    func accountChunkedBody(_ conn: Int32) -> Bool {
        let c = table + Int(conn)
        let growth = (c.pointee.parser?.bufferedBodyBytes ?? 0) - c.pointee.bodyReservedBytes
        return growth <= 0 || reserveBody(conn, bytes: growth)
    }

    /// A chunked body also makes progress with each whole chunk (called after its bytes were
    /// parsed): it reserves only what it has sent, so a slow one holds no budget it did not
    /// fill, and a small publish sent in small chunks is not cut off.
    func countChunkProgress(_ c: UnsafeMutablePointer<Connection>) {
        guard c.pointee.bodyChunked, let chunks = c.pointee.parser?.completedChunks,
              chunks != c.pointee.chunksAtProgress else { return }
        c.pointee.chunksAtProgress = chunks
        c.pointee.bodyProgressNanoseconds = nowNanoseconds
        c.pointee.bodyBytesSinceProgress = 0
    }

    /// Moves the body's progress time once `bodyProgressMinBytes` (or the rest of the body)
    /// arrived since it last moved; fewer bytes are not progress.
    func countBodyProgress(_ c: UnsafeMutablePointer<Connection>, bytes: Int) {
        c.pointee.bodyBytesSinceProgress += bytes
        let rest = c.pointee.bodyChunked ? Int.max
            : c.pointee.bodyReservedBytes - (c.pointee.parser?.bufferedBodyBytes ?? 0)
        if c.pointee.bodyBytesSinceProgress >= min(configuration.bodyProgressMinBytes, rest) {
            c.pointee.bodyProgressNanoseconds = nowNanoseconds
            c.pointee.bodyBytesSinceProgress = 0
        }
    }

    func releaseBody(_ c: UnsafeMutablePointer<Connection>) {
        c.pointee.bodyProgressNanoseconds = 0
        c.pointee.bodyBytesSinceProgress = 0
        c.pointee.chunksAtProgress = 0
        c.pointee.bodyChunked = false
        let n = c.pointee.bodyReservedBytes
        guard n > 0 else { return }
        pendingBodyBytes -= n
        counters.subtract(.pendingBodyBytes, UInt64(n))
        c.pointee.bodyReservedBytes = 0
    }

    /// A connection admitted past the limit asked for something other than an admin path.
    func rejectOnReserve(_ conn: Int32) {
        counters.add(.disconnectOverCapacity)
        respondError(conn, status: 503, error: "over_capacity",
                     detail: "the server is at its connection limit; retry later",
                     extraHeaders: [("Retry-After", "1")], close: true)
    }

    func countHTTPError(_ status: Int) {
        switch status {
        case 400: counters.add(.httpErrors400)
        case 408: counters.add(.httpErrors408)
        case 413: counters.add(.httpErrors413)
        case 414: counters.add(.httpErrors414)
        case 431: counters.add(.httpErrors431)
        default: counters.add(.httpErrorsOther)
        }
    }
}
