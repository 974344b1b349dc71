import CRinggateSys
import HTTPServer
import GatewayCore
import IO
import Glibc
import RingLog
import StreamPolicy
import WireProtocol

extension Worker {
    // MARK: - History

    func history(_ conn: Int32, _ request: HTTPRequest, slot: String) {
        history(conn, request, slots: [slot], namesSlots: false)
    }

    /// `namesSlots`: a pull of several slots (`GET /v1/events?slot=…`), merged by seq.
    func history(_ conn: Int32, _ request: HTTPRequest, slots: [String], namesSlots: Bool) {
        counters.add(.historyRequests)
        var limit = min(100, config.maxLimit)
        if let raw = request.queryValue("limit") {
            guard let n = Int(raw), n >= 1, n <= config.maxLimit else {
                engine.respondError(conn, status: 400, error: "bad_limit",
                                    detail: "limit must be an integer from 1 to \(config.maxLimit)", extraHeaders: corsHeaders)
                return
            }
            limit = n
        }
        var after: UInt64? = nil
        var foreignEpoch = false
        if let raw = request.queryValue("after") {
            guard let id = EventID(parsing: raw) else {
                engine.respondError(conn, status: 400, error: "bad_id",
                                    detail: "after must be an event id like 5f3a9c01-42", extraHeaders: corsHeaders)
                return
            }
            // Cluster mode: an id of the cluster's epoch past this host's head came from a host
            // further along; the window after it is empty until this one catches up.
            if id.epoch != reader.epoch || (id.seq > reader.headSeqAcquire() && !config.isCluster) {
                foreignEpoch = true
                after = 0
            } else {
                after = id.seq
            }
        }
        // The body is built in a buffer kept across requests, so a large window costs no fresh
        // allocation (and no page faults) per pull.
        var json = JSONWriter()
        swap(&json.bytes, &historyBuffer)
        defer {
            swap(&json.bytes, &historyBuffer)
            if historyBuffer.capacity > 4 << 20 { historyBuffer = [] }   // do not keep a rare huge window's memory
        }
        let body = HistoryBody(reader: reader, scratch: recordScratch, onDamaged: { [unowned self] in noteDamaged($0) })
        let complete = body.write(&json, HistoryBody.Query(slots: slots.map { Array($0.utf8) }, namesSlots: namesSlots,
                                                           after: after, foreignEpoch: foreignEpoch,
                                                           requestedAfter: request.queryValue("after"), limit: limit))
        guard complete else {
            counters.add(.historyOverruns)
            engine.respondError(conn, status: 503, error: "log_overrun",
                                detail: "the log was overwritten faster than this window could be read (\(HistoryBody.attemptsMax) tries); retry, or ask for a smaller limit",
                                extraHeaders: [("Retry-After", "1")] + corsHeaders)
            return
        }
        let head = HTTPResponseWriter.head(status: 200, contentType: "application/json", contentLength: json.bytes.count,
                                           keepAlive: request.keepAlive, extraHeaders: corsHeaders)
        engine.respond(conn, head: head, body: request.method == .head ? [] : json.bytes)
    }
}
