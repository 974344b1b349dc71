// The io_uring loop of the load generator: N SSE (or WebSocket) subscribers and K keep-alive
// publishers.
import CRinggateSys
import IO
import Foundation
@preconcurrency import Glibc

enum Kind: UInt64 { case subRecv = 1, pubRecv = 2, pubSend = 3, cancel = 4 }
@inline(__always) func ud(_ k: Kind, _ i: Int) -> UInt64 { (k.rawValue << 56) | UInt64(i) }

struct Sub {
    var fd: Int32 = -1
    var phase: UInt8 = 0        // 0 head, 1 body, 2 closed, 3 failed status
    var chunked = false
    var chunkState: UInt8 = 0   // 0 size, 1 ext to LF, 2 data, 3 CRLF after data
    var chunkSize = 0
    var carry = 0               // bytes held in its carry buffer (head, then a partial line)
    var status = 0
    var stopped = false         // a stopped reader: never reads after warm-up
    var warm = false
    var inReset = false
    var lastN: Int64 = 0
    var received: Int64 = 0     // measured events received (n ≥ 1), dups included
    var dups: Int64 = 0
    var outOfOrder: Int64 = 0
    var resets: Int64 = 0
    var otherData: Int64 = 0
    // WebSocket framing (--transport ws): 0 first byte, 1 length byte, 2 extended length, 3 payload
    var wsState: UInt8 = 0
    var wsOpcode: UInt8 = 0
    var wsLenBytes = 0
    var wsRemaining = 0
}

/// `--transport ws`: subscribers open WebSockets (101 expected) and read text messages.
nonisolated(unsafe) var webSocketTransport = false

let carryCap = 2048

final class PubConn {
    let fd: Int32
    let cap: Int
    var fill: UnsafeMutablePointer<UInt8>
    var fillLen = 0
    var flight: UnsafeMutablePointer<UInt8>
    var flightLen = 0
    var flightOff = 0
    var sending = false
    var outstanding = 0
    var acc: [UInt8] = []
    var closed = false
    init(fd: Int32, cap: Int) {
        self.fd = fd
        self.cap = cap
        fill = .allocate(capacity: cap)
        flight = .allocate(capacity: cap)
        acc.reserveCapacity(1 << 16)
    }
}

final class Engine {
    let ring: Ring
    let bufs: ProvidedBuffers
    var subs: UnsafeMutablePointer<Sub>
    var carry: UnsafeMutablePointer<UInt8>
    var subCount = 0
    let maxSubs: Int
    var pubs: [PubConn] = []

    // measurement
    let maxEvents: Int
    var bitWords: Int
    var bits: UnsafeMutablePointer<UInt64>
    var eventCount: UnsafeMutablePointer<Int32>  // receipts per event n
    var hist = Histogram()
    var deliveries: Int64 = 0
    var warmDeliveries: Int64 = 0
    var firstDelivery: UInt64 = 0
    var lastDelivery: UInt64 = 0
    var measuring = false
    var ok2xx = 0
    var non2xx = 0
    var statusSeen: [Int: Int] = [:]
    var publishedEvents = 0  // events carried by answered 2xx publishes (batch-aware)
    var eventsPerRequest: [Int] = []  // per pub conn FIFO not needed: one value per run
    var perRequest = 1
    var clock: UInt64 = 0
    /// `scale` mode: each subscriber's latency for event 1 (the broadcast; UInt64.max until
    /// it arrives), and the first and last arrival of any later event (the burst).
    var broadcastLatency: UnsafeMutablePointer<UInt64>? = nil
    var burstFirst: UInt64 = 0
    var burstLast: UInt64 = 0

    init(maxSubs: Int, maxEvents: Int, trackBits: Bool) throws {
        ring = try Ring(entries: 4096, completionBatch: 1024)
        bufs = try ProvidedBuffers(ring: ring, group: 1, count: 4096, bufferBytes: 8192)
        self.maxSubs = max(maxSubs, 1)
        subs = .allocate(capacity: self.maxSubs)
        subs.initialize(repeating: Sub(), count: self.maxSubs)
        carry = .allocate(capacity: self.maxSubs * carryCap)
        self.maxEvents = maxEvents
        bitWords = trackBits ? (maxEvents + 64) / 64 : 0
        bits = .allocate(capacity: max(1, bitWords * self.maxSubs))
        bits.initialize(repeating: 0, count: max(1, bitWords * self.maxSubs))
        eventCount = .allocate(capacity: maxEvents + 1)
        eventCount.initialize(repeating: 0, count: maxEvents + 1)
    }

    // MARK: subscribers

    func addSubscriber(_ url: HTTPURL, rcvbuf: Int32) -> Int {
        let i = subCount
        precondition(i < maxSubs)
        subCount += 1
        let fd = connectTCP(url, rcvbuf: rcvbuf, bind: sourceAddress)
        if webSocketTransport {
            writeAll(fd, Array(("GET \(url.path) HTTP/1.1\r\nHost: \(url.host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8))
        } else {
            writeAll(fd, Array("GET \(url.path) HTTP/1.1\r\nHost: \(url.host)\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".utf8))
        }
        _ = rg_set_nonblocking(fd, 1)
        subs[i].fd = fd
        ring.recvMultishot(fd: fd, group: bufs.group, userData: ud(.subRecv, i))
        return i
    }

    func stopReading(_ i: Int) {
        subs[i].stopped = true
        ring.cancel(fd: subs[i].fd, userData: ud(.cancel, i))
    }

    var subscribedCount: Int {
        var c = 0
        for i in 0..<subCount where subs[i].phase == 1 { c += 1 }
        return c
    }
    var failedCount: Int {
        var c = 0
        for i in 0..<subCount where subs[i].phase >= 2 { c += 1 }
        return c
    }
    var warmCount: Int {
        var c = 0
        for i in 0..<subCount where subs[i].warm { c += 1 }
        return c
    }

    @inline(__always) func subData(_ i: Int, _ p: UnsafePointer<UInt8>, _ n: Int) {
        var p = p, n = n
        if subs[i].phase == 0 {
            let cb = carry + i * carryCap
            let take = min(n, carryCap - subs[i].carry)
            (cb + subs[i].carry).update(from: p, count: take)
            subs[i].carry += take
            guard let he = headEnd(cb, subs[i].carry) else {
                if subs[i].carry == carryCap { subs[i].phase = 3 }
                return
            }
            let h = parseHead(cb, he)
            subs[i].status = h.status
            subs[i].chunked = h.chunked
            let extra = subs[i].carry - he
            subs[i].carry = 0
            if h.status != (webSocketTransport ? 101 : 200) { subs[i].phase = 3; return }
            subs[i].phase = 1
            // bytes after the head came from the tail of this read
            p = p + (n - extra)
            n = extra
            if n == 0 { return }
        }
        if subs[i].phase != 1 { return }
        if webSocketTransport { webSocketFrames(i, p, n); return }
        if !subs[i].chunked { sse(i, p, n); return }
        var k = 0
        while k < n {
            switch subs[i].chunkState {
            case 0:
                let c = p[k]
                if c >= 48 && c <= 57 { subs[i].chunkSize = subs[i].chunkSize * 16 + Int(c - 48) }
                else if c >= 97 && c <= 102 { subs[i].chunkSize = subs[i].chunkSize * 16 + Int(c - 87) }
                else if c >= 65 && c <= 70 { subs[i].chunkSize = subs[i].chunkSize * 16 + Int(c - 55) }
                else if c == 10 { subs[i].chunkState = subs[i].chunkSize == 0 ? 1 : 2 }
                else { subs[i].chunkState = 1 }
                k += 1
            case 1:
                if p[k] == 10 { subs[i].chunkState = subs[i].chunkSize == 0 ? 0 : 2 }
                k += 1
            case 2:
                let take = min(subs[i].chunkSize, n - k)
                sse(i, p + k, take)
                subs[i].chunkSize -= take
                k += take
                if subs[i].chunkSize == 0 { subs[i].chunkState = 3 }
            default:
                if p[k] == 10 { subs[i].chunkState = 0; subs[i].chunkSize = 0 }
                k += 1
            }
        }
    }

    /// Server frames (never masked): a text message's payload is collected in the carry
    /// buffer (its first `carryCap` bytes: `t=` and `n=` come first) and read as one event.
    @inline(__always) func webSocketFrames(_ i: Int, _ p: UnsafePointer<UInt8>, _ n: Int) {
        let cb = carry + i * carryCap
        var k = 0
        while k < n {
            switch subs[i].wsState {
            case 0:
                subs[i].wsOpcode = p[k] & 0x0F
                subs[i].wsState = 1
                k += 1
            case 1:
                let len = Int(p[k] & 0x7F)
                k += 1
                subs[i].carry = 0
                if len == 126 { subs[i].wsLenBytes = 2; subs[i].wsRemaining = 0; subs[i].wsState = 2 }
                else if len == 127 { subs[i].wsLenBytes = 8; subs[i].wsRemaining = 0; subs[i].wsState = 2 }
                else { subs[i].wsRemaining = len; subs[i].wsState = 3; if len == 0 { wsMessage(i) } }
            case 2:
                subs[i].wsRemaining = subs[i].wsRemaining << 8 | Int(p[k])
                subs[i].wsLenBytes -= 1
                k += 1
                if subs[i].wsLenBytes == 0 { subs[i].wsState = 3; if subs[i].wsRemaining == 0 { wsMessage(i) } }
            default:
                let take = min(subs[i].wsRemaining, n - k)
                let keep = min(take, carryCap - subs[i].carry)
                if keep > 0 { (cb + subs[i].carry).update(from: p + k, count: keep); subs[i].carry += keep }
                subs[i].wsRemaining -= take
                k += take
                if subs[i].wsRemaining == 0 { wsMessage(i) }
            }
        }
    }

    /// One complete frame: a text (or continuation) frame carrying `t=<ns> n=<k>` is a delivery,
    /// one naming `reset` a reset; control frames (ping, close) are skipped.
    @inline(__always) func wsMessage(_ i: Int) {
        subs[i].wsState = 0
        let op = subs[i].wsOpcode
        let len = subs[i].carry
        subs[i].carry = 0
        guard op == 1 || op == 0 else { return }
        let cb = UnsafePointer(carry + i * carryCap)
        var k = 0
        while k + 2 < len, !(cb[k] == UInt8(ascii: "t") && cb[k + 1] == UInt8(ascii: "=") && cb[k + 2] &- 48 < 10) { k += 1 }
        if k + 2 >= len {
            var isReset = false
            var j = 0
            while !isReset && j + 7 <= len { isReset = memcmp(cb + j, "\"reset\"", 7) == 0; j += 1 }
            if isReset { subs[i].resets += 1 } else { subs[i].otherData += 1 }
            return
        }
        k += 2
        var t: UInt64 = 0
        while k < len && cb[k] &- 48 < 10 { t = t &* 10 &+ UInt64(cb[k] - 48); k += 1 }
        guard k + 3 < len, cb[k] == 32, cb[k + 1] == UInt8(ascii: "n"), cb[k + 2] == UInt8(ascii: "=") else {
            subs[i].otherData += 1; return
        }
        k += 3
        var num: Int64 = 0
        while k < len && cb[k] &- 48 < 10 { num = num &* 10 &+ Int64(cb[k] - 48); k += 1 }
        delivered(i, t, num)
    }

    @inline(__always) func sse(_ i: Int, _ p: UnsafePointer<UInt8>, _ n: Int) {
        var off = 0
        let cb = carry + i * carryCap
        while off < n {
            let rest = n - off
            if let nl = memchr(p + off, 10, rest) {
                let end = UnsafePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self))
                let len = end - (p + off)
                if subs[i].carry > 0 {
                    let take = min(len, carryCap - subs[i].carry)
                    (cb + subs[i].carry).update(from: p + off, count: take)
                    line(i, UnsafePointer(cb), subs[i].carry + take)
                    subs[i].carry = 0
                } else {
                    line(i, p + off, len)
                }
                off += len + 1
            } else {
                let take = min(rest, carryCap - subs[i].carry)
                (cb + subs[i].carry).update(from: p + off, count: take)
                subs[i].carry += take
                return
            }
        }
    }

    @inline(__always) func line(_ i: Int, _ p: UnsafePointer<UInt8>, _ n0: Int) {
        var n = n0
        if n > 0 && p[n - 1] == 13 { n -= 1 }
        if n == 0 { subs[i].inReset = false; return }
        let c = p[0]
        if c == UInt8(ascii: "d") && n > 5 && p[1] == UInt8(ascii: "a") && p[2] == UInt8(ascii: "t") && p[3] == UInt8(ascii: "a") && p[4] == UInt8(ascii: ":") {
            var k = 5
            if p[k] == 32 { k += 1 }
            guard !subs[i].inReset, k + 2 < n, p[k] == UInt8(ascii: "t"), p[k + 1] == UInt8(ascii: "=") else {
                subs[i].otherData += 1; return
            }
            k += 2
            var t: UInt64 = 0
            while k < n && p[k] >= 48 && p[k] <= 57 { t = t &* 10 &+ UInt64(p[k] - 48); k += 1 }
            guard k + 2 < n, p[k] == 32, p[k + 1] == UInt8(ascii: "n"), p[k + 2] == UInt8(ascii: "=") else {
                subs[i].otherData += 1; return
            }
            k += 3
            var num: Int64 = 0
            while k < n && p[k] >= 48 && p[k] <= 57 { num = num &* 10 &+ Int64(p[k] - 48); k += 1 }
            delivered(i, t, num)
        } else if c == UInt8(ascii: "e") && n >= 11 && memcmp(p, "event: reset", min(n, 12)) == 0 {
            subs[i].inReset = true
            subs[i].resets += 1
        } else if c == UInt8(ascii: "e") && n >= 10 && memcmp(p, "event:reset", min(n, 11)) == 0 {
            subs[i].inReset = true
            subs[i].resets += 1
        }
    }

    @inline(__always) func delivered(_ i: Int, _ t: UInt64, _ num: Int64) {
        if num == 0 {
            if !subs[i].warm { subs[i].warm = true }
            warmDeliveries += 1
            return
        }
        guard num <= Int64(maxEvents) else { subs[i].otherData += 1; return }
        let now = clock
        if bitWords > 0 {
            let w = bits + i * bitWords + Int(num >> 6)
            let b = UInt64(1) << UInt64(num & 63)
            if w.pointee & b != 0 { subs[i].dups += 1 } else { w.pointee |= b }
        }
        if num < subs[i].lastN { subs[i].outOfOrder += 1 } else { subs[i].lastN = num }
        subs[i].received += 1
        eventCount[Int(num)] &+= 1
        deliveries += 1
        if firstDelivery == 0 { firstDelivery = now }
        lastDelivery = now
        if now > t { hist.record(now - t) } else { hist.record(0) }
        if let bl = broadcastLatency {
            if num == 1 { bl[i] = now > t ? now - t : 0 }
            else { if burstFirst == 0 || now < burstFirst { burstFirst = now }; if now > burstLast { burstLast = now } }
        }
    }

    // MARK: publishers

    func addPublisher(_ url: HTTPURL, bufferBytes: Int) -> PubConn {
        let fd = connectTCP(url)
        _ = rg_set_nonblocking(fd, 1)
        let c = PubConn(fd: fd, cap: bufferBytes)
        let i = pubs.count
        pubs.append(c)
        ring.recvMultishot(fd: fd, group: bufs.group, userData: ud(.pubRecv, i))
        return c
    }

    /// Appends one request; false when the connection's buffer is full.
    @inline(__always) func enqueue(_ c: PubConn, head: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) -> Bool {
        let need = head.count + 24 + body.count
        guard c.fillLen + need <= c.cap else { return false }
        var q = c.fill + c.fillLen
        q.update(from: head.baseAddress!.assumingMemoryBound(to: UInt8.self), count: head.count)
        q += head.count
        q += putUInt(UInt64(body.count), q)
        q[0] = 13; q[1] = 10; q[2] = 13; q[3] = 10
        q += 4
        q.update(from: body.baseAddress!.assumingMemoryBound(to: UInt8.self), count: body.count)
        q += body.count
        c.fillLen = q - c.fill
        c.outstanding += 1
        return true
    }

    func flush() {
        for (i, c) in pubs.enumerated() where !c.sending && c.fillLen > 0 && !c.closed {
            swap(&c.fill, &c.flight)
            c.flightLen = c.fillLen
            c.flightOff = 0
            c.fillLen = 0
            c.sending = true
            ring.send(fd: c.fd, c.flight, c.flightLen, userData: ud(.pubSend, i))
        }
    }

    func pubResponses(_ c: PubConn, _ p: UnsafePointer<UInt8>, _ n: Int) {
        c.acc.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        var off = 0
        c.acc.withUnsafeBufferPointer { a in
            while let r = parseResponse(a.baseAddress! + off, a.count - off, wantBody: false) {
                off += r.consumed
                c.outstanding -= 1
                if r.status >= 200 && r.status < 300 {
                    ok2xx += 1
                    publishedEvents += perRequest
                } else {
                    non2xx += 1
                    statusSeen[r.status, default: 0] += 1
                }
            }
        }
        if off > 0 { c.acc.removeFirst(off) }
    }

    // MARK: the loop

    /// Runs one wait + its completions. `wait` in ns (0 = don't block long).
    /// Requests enqueued since the last step are handed to the kernel first, so the wait never
    /// holds back a timestamped request (that added up to the wait, ~2 ms, to every latency).
    /// The receive clock is read per completion, not per batch: a batch of thousands of
    /// completions takes long enough to parse that one clock read per batch under-reports.
    func step(wait: UInt64) {
        flush()
        let n = ring.submitAndWait(timeoutNanoseconds: max(wait, 20_000))
        let cq = ring.completions
        for k in 0..<n {
            let e = cq[k]
            let kind = e.user_data >> 56
            let idx = Int(e.user_data & 0xffff_ffff)
            switch kind {
            case Kind.subRecv.rawValue:
                clock = nowNs()
                if e.res > 0 && e.flags & RG_CQE_F_BUFFER != 0 {
                    let bid = UInt16(e.flags >> RG_CQE_BUFFER_SHIFT)
                    if !subs[idx].stopped || subs[idx].phase == 0 {
                        subData(idx, UnsafePointer(bufs.buffer(bid).assumingMemoryBound(to: UInt8.self)), Int(e.res))
                    }
                    bufs.recycle(bid)
                }
                if e.flags & RG_CQE_F_MORE == 0 {
                    if e.res == 0 || (e.res < 0 && e.res != -ENOBUFS && e.res != -ECANCELED) {
                        if subs[idx].phase < 2 { subs[idx].phase = 2 }
                    } else if !subs[idx].stopped && subs[idx].phase < 2 {
                        ring.recvMultishot(fd: subs[idx].fd, group: bufs.group, userData: ud(.subRecv, idx))
                    }
                }
            case Kind.pubRecv.rawValue:
                let c = pubs[idx]
                if e.res > 0 && e.flags & RG_CQE_F_BUFFER != 0 {
                    let bid = UInt16(e.flags >> RG_CQE_BUFFER_SHIFT)
                    pubResponses(c, UnsafePointer(bufs.buffer(bid).assumingMemoryBound(to: UInt8.self)), Int(e.res))
                    bufs.recycle(bid)
                }
                if e.flags & RG_CQE_F_MORE == 0 {
                    if e.res == 0 || (e.res < 0 && e.res != -ENOBUFS) {
                        c.closed = true
                        note("publisher connection \(idx) closed (res \(e.res))")
                    } else {
                        ring.recvMultishot(fd: c.fd, group: bufs.group, userData: ud(.pubRecv, idx))
                    }
                }
            case Kind.pubSend.rawValue:
                let c = pubs[idx]
                if e.res < 0 {
                    c.closed = true
                    c.sending = false
                    note("publisher send failed: \(e.res)")
                    continue
                }
                c.flightOff += Int(e.res)
                if c.flightOff < c.flightLen {
                    ring.send(fd: c.fd, c.flight + c.flightOff, c.flightLen - c.flightOff, userData: ud(.pubSend, idx))
                } else {
                    c.sending = false
                }
            default:
                break
            }
        }
        flush()
    }

    /// Runs the loop until `done()` or the deadline; true when done.
    @discardableResult
    func run(until deadline: UInt64, _ done: () -> Bool) -> Bool {
        while nowNs() < deadline {
            if done() { return true }
            step(wait: 2_000_000)
        }
        return done()
    }

    var outstanding: Int { pubs.reduce(0) { $0 + $1.outstanding } }
}
