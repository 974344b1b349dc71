import Auth
import GatewayCore
import HTTPServer
import WireProtocol

/// The live status page (`GET /`), its stats stream (`GET /v1/status/stream`: one
/// `event: stats` frame a second, see `StatusSnapshot`) and the API description
/// (`GET /openapi.yaml`), all served from bytes built into the binary.
extension Worker {
    static let statusFrameIntervalNanoseconds: UInt64 = 1_000_000_000

    func serveStatusPage(_ conn: Int32, _ request: HTTPRequest) {
        guard config.statusPage else { return notFound(conn, request) }
        guard authorize(conn, request, slot: nil) != nil else { return }
        serveStatic(conn, request, contentType: "text/html; charset=utf-8", body: StaticAssets.statusPage,
                    extraHeaders: [("Cache-Control", "no-cache"),
                                   // Everything the page needs comes from this host: nothing external may load.
                                   ("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"),
                                   ("X-Content-Type-Options", "nosniff")])
    }

    func serveOpenAPI(_ conn: Int32, _ request: HTTPRequest) {
        serveStatic(conn, request, contentType: "application/yaml", body: StaticAssets.openAPI,
                    extraHeaders: [("Cache-Control", "no-cache")] + corsHeaders)
    }

    /// A whole body with its length; a `HEAD` gets the same head without it.
    func serveStatic(_ conn: Int32, _ request: HTTPRequest, contentType: String, body: [UInt8],
                     extraHeaders: [(String, String)]) {
        engine.respond(conn, HTTPResponseWriter.head(status: 200, contentType: contentType, contentLength: body.count,
                                                     keepAlive: request.keepAlive, extraHeaders: extraHeaders)
                       + (request.method == .head ? [] : body))
    }

    func notFound(_ conn: Int32, _ request: HTTPRequest) {
        engine.respondError(conn, status: 404, error: "not_found", detail: "no route for \(request.path)",
                            extraHeaders: corsHeaders)
    }

    /// A stats stream: the first frame at once, then one a second from `sendStatusFrames`.
    func subscribeStatus(_ conn: Int32, _ request: HTTPRequest) {
        guard config.statusPage else { return notFound(conn, request) }
        // Authorized once, like the page; the stream does not end at the token's exp.
        guard authorize(conn, request, slot: nil) != nil else { return }
        guard statusStreams.count < config.maxStatusStreamsPerWorker else {
            counters.add(.statusStreamLimit)
            engine.respondError(conn, status: 503, error: "over_capacity",
                                detail: "this worker serves \(config.maxStatusStreamsPerWorker) status streams already (--max-status-streams)",
                                extraHeaders: [("Retry-After", "5")] + corsHeaders)
            return
        }
        if request.method == .head {
            engine.respond(conn, HTTPResponseWriter.head(status: 200, contentType: "text/event-stream", contentLength: 0,
                                                         keepAlive: request.keepAlive, extraHeaders: corsHeaders))
            return
        }
        var prelude = HTTPResponseWriter.head(status: 200, contentType: "text/event-stream", contentLength: nil,
                                              keepAlive: false,
                                              extraHeaders: [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")] + corsHeaders)
        prelude += SSEEncoder.retry(milliseconds: 2000)
        prelude += statusFrame()
        engine.startStream(conn, gauge: .connectionsSSE)
        guard prelude.withUnsafeBytes({ engine.streamAppendPrelude(conn, $0) }) else {
            engine.beginClose(conn, reason: .overCapacity)
            return
        }
        statusStreams.append(conn)
    }

    /// `event: stats` + `data: <json>` (JSON has no raw line breaks: one data line).
    func statusFrame() -> [UInt8] {
        // The clock now, not the turn's cached one: the other processes' stamps are compared to it.
        let json = status.json(nowNanoseconds: engine.io.now(),
                               wallMilliseconds: UInt64(JWTVerifier.nowSeconds() * 1000))
        return SSEEncoder.event(id: nil, type: "stats", data: json)
    }

    /// Called on every tick: a frame to every stats stream once a second (rendered once for
    /// all of them). A viewer whose buffer is full misses a frame; one that reads nothing at all
    /// is closed by the send-progress check like any stream.
    func sendStatusFrames(now: UInt64) {
        guard !statusStreams.isEmpty, now &- lastStatusFrame >= Self.statusFrameIntervalNanoseconds else { return }
        lastStatusFrame = now
        let frame = statusFrame()
        for conn in statusStreams {
            _ = frame.withUnsafeBytes { engine.streamAppend(conn, $0) }
        }
    }

    /// The engine closed `conn`: true when it was a stats stream (now forgotten).
    func forgetStatusStream(_ conn: Int32) -> Bool {
        guard let i = statusStreams.firstIndex(of: conn) else { return false }
        statusStreams.remove(at: i)
        return true
    }

    /// On shutdown: a stats stream ends like the others, with `event: close`.
    func closeStatusStream(_ conn: Int32, retryMilliseconds: UInt64?) -> Bool {
        guard statusStreams.contains(conn) else { return false }
        _ = SSEEncoder.closeEvent(reason: DisconnectReason.shutdown.rawValue, retryMilliseconds: retryMilliseconds)
            .withUnsafeBytes { engine.streamAppendFinal(conn, $0) }
        engine.closeAfterFlush(conn, reason: .shutdown)
        return true
    }
}
