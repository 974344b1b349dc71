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
                                    detail: "limit must be an integer from 1 to \(config.maxLimit)")
                return
            }
            limit = n
        }
        var after: UInt64? = nil
        var foreignEpoch = false
        if let raw = request.queryValue("after") {
            guard let id = EventID(parsing: raw) else {
                engine.respondError(connection, status: 400, error: "bad_id",
                                    detail: "after must be an event id like 5f3a9c01-42")
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
        var json = JSONWriter()
        var attempts = 0
        while true {
            attempts += 1
            json = JSONWriter()
            let complete = name.withUnsafeBytes { nameBytes in
                writeHistory(&json, slot: nameBytes, after: after, foreignEpoch: foreignEpoch,
                             requestedAfter: request.queryValue("after"), limit: limit)
            }
            if complete || attempts >= 4 { break }
        }
        let body = json.bytes
        engine.respond(connection, HTTPResponseWriter.json(status: 200, body: request.method == .head ? [] : body,
                                                           keepAlive: request.keepAlive, extraHeaders: []))
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
