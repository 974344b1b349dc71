import CRinggateSys
import EventLoop
import Glibc
import RingLog
import StreamPolicy
import WireProtocol

extension Worker {
    // MARK: - History

    func history(_ connection: Int32, _ request: HTTPRequest, slot: String) {
        counters.add(.historyRequests)
        var limit = min(100, config.maxLimit)
        if let raw = request.queryValue("limit") {
            guard let n = Int(raw), n >= 1, n <= config.maxLimit else {
                engine.respondError(connection, status: 400, error: "bad_limit",
                                    detail: "limit must be an integer from 1 to \(config.maxLimit)", extraHeaders: corsHeaders)
                return
            }
            limit = n
        }
        var after: UInt64? = nil
        var foreignEpoch = false
        if let raw = request.queryValue("after") {
            guard let id = EventID(parsing: raw) else {
                engine.respondError(connection, status: 400, error: "bad_id",
                                    detail: "after must be an event id like 5f3a9c01-42", extraHeaders: corsHeaders)
                return
            }
            if id.epoch != reader.epoch || id.seq > reader.headSeqAcquire() {
                foreignEpoch = true
                after = 0
            } else {
                after = id.seq
            }
        }
        let name = Array(slot.utf8)
        // The body is built in a buffer kept across requests, so a large window costs no fresh
        // allocation (and no page faults) per pull.
        var json = JSONWriter()
        swap(&json.bytes, &historyBuffer)
        var attempts = 0
        while true {
            attempts += 1
            json.bytes.removeAll(keepingCapacity: true)
            let complete = name.withUnsafeBytes { nameBytes in
                writeHistory(&json, slot: nameBytes, after: after, foreignEpoch: foreignEpoch,
                             requestedAfter: request.queryValue("after"), limit: limit)
            }
            if complete || attempts >= 4 { break }
        }
        let head = HTTPResponseWriter.head(status: 200, contentType: "application/json", contentLength: json.bytes.count,
                                           keepAlive: request.keepAlive, extraHeaders: corsHeaders)
        engine.respond(connection, head: head, body: request.method == .head ? [] : json.bytes)
        swap(&json.bytes, &historyBuffer)
        if historyBuffer.capacity > 4 << 20 { historyBuffer = [] }   // do not keep a rare huge window's memory
    }

    /// Writes the history body; false when a record was overwritten while being read (retry).
    func writeHistory(_ json: inout JSONWriter, slot: UnsafeRawBufferPointer, after: UInt64?, foreignEpoch: Bool,
                      requestedAfter: String?, limit: Int) -> Bool {
        let window = reader.window(slot: slot, after: after, afterOrdinal: nil, limit: limit, maxSeq: .max,
                                   scratch: recordScratch)
        json.appendRaw(#"{"slot":"#)
        json.appendString(slot)
        json.appendRaw(#","events":["#)
        var lastSeq: UInt64 = 0
        var first = true
        for position in window.positions {
            guard case .record(let view) = reader.copyRecord(at: position, into: recordScratch) else { return false }
            if !first { json.appendRaw(",") }
            first = false
            json.appendRaw(#"{"id":"#)
            json.appendID(EventID(epoch: reader.epoch, seq: view.seq))
            json.appendRaw(#","type":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(recordScratch)[view.type]))
            json.appendRaw(#","data":"#)
            json.appendString(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(recordScratch)[view.data]))
            json.appendRaw(#","time":"#)
            json.appendInt(Int(view.timeMilliseconds))
            json.appendRaw("}")
            lastSeq = view.seq
        }
        json.appendRaw(#"],"next":"#)
        if lastSeq != 0 {
            appendID(&json, lastSeq)
        } else if let requestedAfter, !foreignEpoch {
            json.appendString(requestedAfter)
        } else {
            json.appendRaw("null")
        }
        json.appendRaw(#","oldest":"#)
        appendID(&json, window.slotOldestSeq)
        json.appendRaw(#","head":"#)
        appendID(&json, window.slotHeadSeq)
        json.appendRaw(#","reset":"#)
        json.appendRaw(window.reset || (foreignEpoch && window.slotOldestSeq != 0) ? "true" : "false")
        json.appendRaw("}")
        return true
    }

    func appendID(_ json: inout JSONWriter, _ seq: UInt64) {
        json.appendID(seq == 0 ? nil : EventID(epoch: reader.epoch, seq: seq))
    }
}
