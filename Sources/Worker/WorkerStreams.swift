import CRinggateSys
import HTTPServer
import GatewayCore
import IO
import Glibc
import RingLog
import StreamPolicy
import WireProtocol

/// Subscribing, the live fan-out and catch-up, for both transports (SSE and WebSocket).
extension Worker {
    func subscribe(_ connection: Int32, _ request: HTTPRequest, slot: String, transport: Subscriber.Transport,
                   tokenExpiresAtNanoseconds: UInt64 = 0) {
        subscribe(connection, request, slots: [slot], namesSlots: false, transport: transport,
                  tokenExpiresAtNanoseconds: tokenExpiresAtNanoseconds)
    }

    /// `namesSlots`: a stream of several slots (`/v1/stream?slot=…`), whose frames name their slot.
    func subscribe(_ connection: Int32, _ request: HTTPRequest, slots slotNames: [String], namesSlots: Bool,
                   transport: Subscriber.Transport, tokenExpiresAtNanoseconds: UInt64 = 0) {
        let resumeRaw = request.header("Last-Event-ID") ?? request.queryValue("after") ?? request.queryValue("lastEventId")
        var resume: EventID? = nil
        if let resumeRaw, !resumeRaw.isEmpty {
            guard let id = EventID(parsing: resumeRaw) else {
                engine.respondError(connection, status: 400, error: "bad_id",
                                    detail: "Last-Event-ID / after / lastEventId must be an event id like 5f3a9c01-42",
                                    extraHeaders: corsHeaders)
                return
            }
            resume = id
        }
        if request.method == .head && transport == .sse {
            engine.respond(connection, HTTPResponseWriter.head(status: 200, contentType: "text/event-stream",
                                                               contentLength: 0, keepAlive: request.keepAlive, extraHeaders: corsHeaders))
            return
        }
        var admissionEntries: [Int32] = []
        if let admission {
            for slot in slotNames {
                guard let entry = admit(connection, slot: slot, admission) else { return }
                admissionEntries.append(entry)
            }
        }
        var prelude: [UInt8]
        switch transport {
        case .sse:
            prelude = HTTPResponseWriter.head(status: 200, contentType: "text/event-stream", contentLength: nil,
                                              keepAlive: false,
                                              extraHeaders: [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")] + corsHeaders)
            prelude += SSEEncoder.retry(milliseconds: UInt64(Jitter.retryMilliseconds(random: random.next())))
            engine.startStream(connection, gauge: .connectionsSSE)
        case .webSocket:
            switch WebSocketHandshake.accept(request) {
            case .failure(let error):
                engine.respondError(connection, status: error.status, error: error.code, detail: error.detail,
                                    extraHeaders: error.extraHeaders)
                return
            case .success(let response):
                prelude = response
            }
            engine.startStream(connection, gauge: .connectionsWS, wantsInput: true)
        }
        // With the send-buffer pool exhausted (a burst of new subscribers) the prelude waits
        // for a buffer; the stream is admitted, not closed unanswered.
        guard prelude.withUnsafeBytes({ engine.streamAppendPrelude(connection, $0) }) else {
            engine.beginClose(connection, reason: .overCapacity)
            return
        }
        if activeSubscribers == 0 {
            // Wake-ups were off: turn them on, then bring the fan-out cursor to the head
            // (pump with nobody live only moves it), in that order (see setWakeWanted).
            setWakeWanted(true)
            pump()
        }
        activeSubscribers += 1
        let now = engine.nowNanoseconds
        let s = subscribers + Int(connection)
        s.pointee = Subscriber()
        s.pointee.active = true
        s.pointee.transport = transport
        s.pointee.tokenExpiresAtNanoseconds = tokenExpiresAtNanoseconds
        for entry in admissionEntries { admission?.add(worker: index, entry: Int(entry), 1) }
        if namesSlots {
            s.pointee.memberships = slotNames.indices.map { k in
                SlotMembership(localSlot: slots.acquire(name: Array(slotNames[k].utf8)),
                               admissionEntry: admissionEntries.isEmpty ? -1 : admissionEntries[k])
            }
        } else {
            s.pointee.localSlot = slots.acquire(name: Array(slotNames[0].utf8))
            s.pointee.admissionEntry = admissionEntries.first ?? -1
        }
        let deadline = Jitter.lifetimeDeadline(
            startNanoseconds: now, lifetimeNanoseconds: config.maxLifetimeNanoseconds, random: random.next())
        if transport == .webSocket {
            // Subscribers do not publish: data messages are validated and dropped, never kept.
            s.pointee.decoder = WebSocketFrameDecoder(maxMessageBytes: 64 << 10, keepsDataPayloads: false)
        }
        s.pointee.cursor = .start(resume: resume.map { ($0.epoch, $0.seq) }, logEpoch: reader.epoch,
                                  headSeq: resume == nil ? 0 : reader.headSeqAcquire(), fanoutSeq: fanoutSeq,
                                  heartbeat: transport == .sse ? .comment : .ping,
                                  nowNanoseconds: now, deadlineNanoseconds: deadline, aheadIsResume: config.isCluster)
        scheduleTimer(connection, now: now)
        switch s.pointee.cursor.mode {
        case .live:
            joinLive(connection)
        case .catchingUp:
            counters.add(.connectionsCatchingUp)
            catchUp(connection)
        }
    }

    /// `--max-subscribers-per-slot`: the slot's entry in the shared admission table, or nil
    /// after a 503 (the table is full, the entry is stuck, or the slot has its maximum).
    func admit(_ connection: Int32, slot: String, _ admission: SlotAdmissionTable) -> Int32? {
        let entry: Int
        switch admission.entryIndex(for: Array(slot.utf8), worker: index) {
        case .entry(let e):
            entry = e
        case .full:
            counters.add(.overCapacitySlot)
            engine.respondError(connection, status: 503, error: "over_capacity",
                                detail: "too many slots have streams (the admission table holds \(admission.entries))",
                                extraHeaders: [("Retry-After", "5")] + corsHeaders)
            return nil
        case .busy:
            counters.add(.admissionClaimStuck)
            engine.respondError(connection, status: 503, error: "over_capacity",
                                detail: "this slot's admission entry is being set up by a worker that stopped; try again",
                                extraHeaders: [("Retry-After", "1")] + corsHeaders)
            return nil
        }
        guard admission.total(entry: entry) < config.maxSubscribersPerSlot else {
            counters.add(.overCapacitySlot)
            engine.respondError(connection, status: 503, error: "over_capacity",
                                detail: "slot \(slot) has its maximum of \(config.maxSubscribersPerSlot) subscribers (--max-subscribers-per-slot)",
                                extraHeaders: [("Retry-After", "5")] + corsHeaders)
            return nil
        }
        return Int32(entry)
    }

    /// Puts a subscriber whose cursor is live into its slots' fan-out lists.
    func joinLive(_ connection: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.namesSlots else {
            s.pointee.liveIndex = slots.addLive(s.pointee.localSlot, connection: connection)
            return
        }
        for k in s.pointee.memberships.indices {
            s.pointee.memberships[k].liveIndex = slots.addLive(s.pointee.memberships[k].localSlot, connection: connection)
        }
        s.pointee.liveIndex = 0
    }

    /// Moves a live cursor to catch-up (the caller takes it out of the fan-out list).
    func demote(_ connection: Int32) {
        if subscribers[Int(connection)].cursor.demote() { counters.add(.connectionsCatchingUp) }
    }

    func leaveLive(_ connection: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.namesSlots else {
            if let moved = slots.removeLive(s.pointee.localSlot, at: s.pointee.liveIndex) {
                setLiveIndex(moved, slot: s.pointee.localSlot, s.pointee.liveIndex)
            }
            s.pointee.liveIndex = -1
            return
        }
        for k in s.pointee.memberships.indices {
            let m = s.pointee.memberships[k]
            if let moved = slots.removeLive(m.localSlot, at: m.liveIndex) { setLiveIndex(moved, slot: m.localSlot, m.liveIndex) }
            s.pointee.memberships[k].liveIndex = -1
        }
        s.pointee.liveIndex = -1
    }

    /// A subscriber moved to `index` of `slot`'s live list.
    func setLiveIndex(_ connection: Int32, slot: Int32, _ index: Int32) {
        let s = subscribers + Int(connection)
        guard s.pointee.namesSlots else {
            s.pointee.liveIndex = index
            return
        }
        for k in s.pointee.memberships.indices where s.pointee.memberships[k].localSlot == slot {
            s.pointee.memberships[k].liveIndex = index
        }
    }

    /// Reads new records from the log, once each, and fans them out to live subscribers.
    func pump() {
        if slots.liveTotal == 0 {
            // Nobody here to fan out to: move to the head without copying every record. Tail
            // first, then seq (the writer stores them the other way round), so fanoutSeq
            // covers every record before readPosition and a subscriber joining at fanoutSeq
            // misses nothing after it.
            let tail = reader.tailAcquire()
            let head = reader.headSeqAcquire()
            if tail > readPosition { readPosition = tail }
            if head > fanoutSeq { fanoutSeq = head }
            return
        }
        while true {
            switch reader.copyRecord(at: readPosition, into: recordScratch) {
            case .record(let view):
                readPosition = view.nextPosition
                guard view.seq > fanoutSeq else { continue }
                // MARK: CLUSTER: seqs this log will never hold lie between: every live
                // subscriber crossed them, and catch-up (which reports gaps) tells each one.
                if view.seq > fanoutSeq &+ 1, slots.liveTotal > 0,
                   reader.missingSeqs(after: fanoutSeq, through: view.seq - 1) != 0 {
                    demoteAllLive()
                }
                fanoutSeq = view.seq
                fanOut(view)
            case .padding(let next):
                readPosition = next
            case .notYetWritten:
                return
            case .lapped:
                // This worker fell a whole ring behind: live subscribers lost events too, so
                // they all catch up from their cursors, which reports the gap as a reset.
                readPosition = max(readPosition, reader.oldestPositionAcquire())
                demoteAllLive()
            case .damaged(let damaged):
                // Its length cannot be trusted: the seq index finds the next record. Every live
                // subscriber goes through catch-up, whose windows (now reaching past the damaged
                // record) name it, so exactly its slot's subscribers get a reset for it.
                noteDamaged(damaged)
                let resume = reader.resumePoint(after: damaged, lastSeq: fanoutSeq)
                readPosition = resume.position
                if resume.throughSeq > fanoutSeq { fanoutSeq = resume.throughSeq }
                demoteAllLive()
            }
        }
    }

    /// Encodes the record once per transport in use and copies the frame into each live
    /// subscriber's send buffer; a subscriber whose buffer is full leaves the fan-out.
    func fanOut(_ view: LogReader.RecordView) {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        let key = UInt64(view.slotIndex) << 32 | UInt64(view.slotGeneration)
        let local = slots.resolve(logKey: key, name: UnsafeRawBufferPointer(rebasing: scratch[view.name]))
        guard local >= 0, let slot = slots.slots[Int(local)], !slot.live.isEmpty else { return }
        // The newest record in the log is kept once for the streams with nothing pending (a
        // broadcast). One with more records behind it (a burst) is copied per stream: the
        // streams get those in this turn too, into their buffers, all in one send.
        let shares = view.nextPosition >= reader.tailAcquire()
        var sseFrame: FanOutFrame? = nil
        var wsFrame: FanOutFrame? = nil
        // Streams of several slots: the same event with its slot named.
        var sseSlotFrame: FanOutFrame? = nil
        var wsSlotFrame: FanOutFrame? = nil
        var deliveredSSE: UInt64 = 0
        var deliveredWS: UInt64 = 0
        for connection in slot.live {
            let s = subscribers + Int(connection)
            // Cluster mode: a subscriber that resumed after an id this host had not reached
            // yet joins the fan-out with its cursor ahead of it; it already has these.
            if s.pointee.cursor.seq >= view.seq { continue }
            let frame: FanOutFrame
            switch (s.pointee.transport, s.pointee.namesSlots) {
            case (.sse, false):
                if sseFrame == nil { sseFrame = fanOutFrame(view, transport: .sse, namesSlot: false, shares: shares, into: frameScratch) }
                frame = sseFrame!
            case (.webSocket, false):
                if wsFrame == nil { wsFrame = fanOutFrame(view, transport: .webSocket, namesSlot: false, shares: shares, into: wsFrameScratch) }
                frame = wsFrame!
            case (.sse, true):
                if sseSlotFrame == nil { sseSlotFrame = fanOutFrame(view, transport: .sse, namesSlot: true, shares: shares, into: slotFrameScratch) }
                frame = sseSlotFrame!
            case (.webSocket, true):
                if wsSlotFrame == nil { wsSlotFrame = fanOutFrame(view, transport: .webSocket, namesSlot: true, shares: shares, into: wsSlotFrameScratch) }
                frame = wsSlotFrame!
            }
            let sent = if let shared = frame.shared { engine.streamSendShared(connection, shared) }
                       else { engine.streamAppend(connection, frame.bytes) }
            if sent {
                if s.pointee.namesSlots {
                    s.pointee.cursor.deliveredLive(seq: view.seq, ordinal: 0, nowNanoseconds: engine.nowNanoseconds)
                    noteSlotDelivered(s, slot: local, ordinal: view.slotOrdinal)
                } else {
                    s.pointee.cursor.deliveredLive(seq: view.seq, ordinal: view.slotOrdinal, nowNanoseconds: engine.nowNanoseconds)
                }
                if s.pointee.transport == .sse { deliveredSSE += 1 } else { deliveredWS += 1 }
            } else {
                demoted.append(connection)
            }
        }
        // The streams still sending a shared frame hold it; the fan-out is done with it.
        if let shared = sseFrame?.shared { engine.endSharedFrame(shared) }
        if let shared = wsFrame?.shared { engine.endSharedFrame(shared) }
        if let shared = sseSlotFrame?.shared { engine.endSharedFrame(shared) }
        if let shared = wsSlotFrame?.shared { engine.endSharedFrame(shared) }
        if deliveredSSE > 0 { counters.add(.eventsDeliveredSSE, deliveredSSE) }
        if deliveredWS > 0 { counters.add(.eventsDeliveredWS, deliveredWS) }
        for connection in demoted {
            leaveLive(connection)
            demote(connection)
            // The next send completion (or a freed buffer) resumes it from its cursor.
        }
        demoted.removeAll(keepingCapacity: true)
    }

    /// One fan-out's frame for one kind of stream: its bytes (in a scratch buffer) and, when
    /// the engine had a slot for it, the copy every stream with nothing pending sends from.
    struct FanOutFrame {
        let bytes: UnsafeRawBufferPointer
        let shared: HTTPEngine.SharedFrame?
    }

    func fanOutFrame(_ view: LogReader.RecordView, transport: Subscriber.Transport, namesSlot: Bool, shares: Bool,
                     into out: UnsafeMutableRawBufferPointer) -> FanOutFrame {
        let bytes = encodeFrame(view, transport: transport, namesSlot: namesSlot, into: out)
        return FanOutFrame(bytes: bytes, shared: shares ? engine.makeSharedFrame(bytes) : nil)
    }

    /// Encodes the record for a transport into `out`; returns the frame. `namesSlot`: for a
    /// stream of several slots (SSE: `event: <slot>` or `<slot>/<type>`; WebSocket: a `slot` member).
    func encodeFrame(_ view: LogReader.RecordView, transport: Subscriber.Transport, namesSlot: Bool,
                     into out: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        let id = EventID(epoch: reader.epoch, seq: view.seq)
        let type = UnsafeRawBufferPointer(rebasing: scratch[view.type])
        let data = UnsafeRawBufferPointer(rebasing: scratch[view.data])
        let slot = UnsafeRawBufferPointer(rebasing: scratch[view.name])
        let n: Int
        switch transport {
        case .webSocket:
            n = WebSocketMessageEncoder.writeEvent(id: id, slot: namesSlot ? slot : nil, type: type, data: data,
                                                   timeMilliseconds: Int64(view.timeMilliseconds), into: out, at: 0)
        case .sse:
            var idBytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            n = withUnsafeMutableBytes(of: &idBytes) { idBuffer in
                let idLength = id.write(into: idBuffer, at: 0)
                let idText = UnsafeRawBufferPointer(rebasing: idBuffer[0..<idLength])
                guard namesSlot else { return SSEEncoder.encodeEvent(id: idText, type: type, data: data, into: out, at: 0) }
                return withUnsafeTemporaryAllocation(byteCount: Self.maxSlotEventNameBytes, alignment: 1) { name in
                    let nameLength = SSEEncoder.writeSlotEventName(slot: slot, type: type, into: name, at: 0)
                    return SSEEncoder.encodeEvent(id: idText, type: UnsafeRawBufferPointer(rebasing: name[0..<nameLength]),
                                                  data: data, into: out, at: 0)
                }
            }
        }
        return UnsafeRawBufferPointer(start: out.baseAddress, count: n)
    }

    /// The longest `event:` name on a stream of several slots: `<slot>/<type>`.
    static let maxSlotEventNameBytes = SlotName.maxBytes + 1 + EventType.maxBytes

    func encodedLength(_ view: LogReader.RecordView, transport: Subscriber.Transport, namesSlot: Bool) -> Int {
        let scratch = UnsafeRawBufferPointer(recordScratch)
        let id = EventID(epoch: reader.epoch, seq: view.seq)
        let data = UnsafeRawBufferPointer(rebasing: scratch[view.data])
        let type = UnsafeRawBufferPointer(rebasing: scratch[view.type])
        let slot = UnsafeRawBufferPointer(rebasing: scratch[view.name])
        switch transport {
        case .webSocket:
            return WebSocketMessageEncoder.eventFrameLength(id: id, slot: namesSlot ? slot : nil, type: type,
                                                            data: data, timeMilliseconds: Int64(view.timeMilliseconds))
        case .sse:
            let typeLength = namesSlot ? SSEEncoder.slotEventNameLength(slot: slot, type: type) : type.count
            return SSEEncoder.encodedLength(id: id.length, type: typeLength, data: data)
        }
    }

    func demoteAllLive() {
        for connection in slots.takeAllLive() {
            let s = subscribers + Int(connection)
            // A stream of several slots is in several lists: it is moved once.
            guard s.pointee.liveIndex >= 0 else { continue }
            s.pointee.liveIndex = -1
            for k in s.pointee.memberships.indices { s.pointee.memberships[k].liveIndex = -1 }
            demote(connection)
            catchUpList.append(connection)
        }
    }

    /// Brings a subscriber from its cursor up to the fan-out position through windowed reads
    /// of its slot, then puts it back in the live fan-out. Stops whenever its buffer is full.
    func catchUp(_ connection: Int32) {
        let s = subscribers + Int(connection)
        if s.pointee.namesSlots { return catchUpSlots(connection) }
        guard s.pointee.active, !s.pointee.cursor.closing, s.pointee.liveIndex < 0, engine.isOpenStream(connection) else { return }
        guard let name = slots.slots[Int(s.pointee.localSlot)]?.name else { return }
        let transport = s.pointee.transport
        while true {
            if engine.streamSpace(connection) < 512 { return }
            s.pointee.cursor.observeLag(fanoutSeq: fanoutSeq)
            let window = name.withUnsafeBytes { nameBytes in
                reader.window(slot: nameBytes, after: s.pointee.cursor.seq,
                              afterOrdinal: s.pointee.cursor.ordinal == 0 ? nil : s.pointee.cursor.ordinal,
                              limit: catchUpBatch, maxSeq: fanoutSeq, scratch: recordScratch)
            }
            switch s.pointee.cursor.windowAction(windowReset: window.reset, policy: config.lagPolicy) {
            case .deliver:
                break
            case .disconnect:
                closeStream(connection, reason: .slowConsumer)
                return
            case .reset(let reason):
                let frame = resetFrame(transport, reason: reason.rawValue, slot: .omitted, dropped: window.dropped,
                                       oldestSeq: window.slotOldestSeq, headSeq: window.slotHeadSeq)
                guard writeControl(connection, frame) else { return }
                counters.add(reason == .epoch ? .resetsEpoch : .resetsLapped)
                s.pointee.cursor.resetSent()
                if reason == .epoch {
                    // It starts over from the oldest event: gaps before it are no news.
                    s.pointee.gapsReportedThrough = window.seqs.first.map { $0 - 1 } ?? fanoutSeq
                }
            }
            var delivered: UInt64 = 0
            var handled = 0   // delivered or skipped as damaged
            defer {
                counters.add(transport == .sse ? .eventsDeliveredSSE : .eventsDeliveredWS, delivered)
            }
            copying: for (k, position) in window.positions.enumerated() {
                let view: LogReader.RecordView
                switch reader.copyRecord(at: position, into: recordScratch) {
                case .record(let record):
                    view = record
                case .lapped, .notYetWritten:
                    break copying   // overwritten meanwhile: the next window reports the gap
                case .damaged, .padding:
                    // (.padding: the window walk read an event header here and it is still
                    // intact: damage.) Skipped by the seq the window names, after the gaps
                    // before it (skipping moves the cursor past them).
                    guard reportGaps(connection, through: window.seqs[k] - 1, window: window),
                          skipDamaged(connection, record: k, window: window) else { return }
                    handled += 1
                    continue copying
                }
                guard reportGaps(connection, through: view.seq - 1, window: window) else { return }
                if encodedLength(view, transport: transport, namesSlot: false) > engine.streamSpace(connection) {
                    return   // wait for the socket to drain
                }
                _ = engine.streamWrite(connection) { out in encodeFrame(view, transport: transport, namesSlot: false, into: out).count }
                s.pointee.cursor.delivered(seq: view.seq, ordinal: view.slotOrdinal, nowNanoseconds: engine.nowNanoseconds)
                delivered += 1
                handled += 1
            }
            if handled == window.positions.count && window.positions.count < catchUpBatch {
                // Caught up with everything this worker has fanned out: rejoin the fan-out,
                // after the gaps between its last event and the fan-out position.
                guard reportGaps(connection, through: fanoutSeq, window: window) else { return }
                if s.pointee.cursor.mode == .catchingUp { counters.subtract(.connectionsCatchingUp) }
                counters.observeLag(events: s.pointee.cursor.promote(fanoutSeq: fanoutSeq))
                joinLive(connection)
                return
            }
        }
    }

    /// Writes a control message whole; false when it does not fit. A stream's `final` frames
    /// (close notice, close frame) reach the peer even when the send-buffer pool is exhausted
    /// or the stream's buffer full (`streamAppendFinal`); a reset is retried by its caller.
    @discardableResult
    func writeControl(_ connection: Int32, _ frame: [UInt8], final: Bool = false) -> Bool {
        let ok = frame.withUnsafeBytes { final ? engine.streamAppendFinal(connection, $0) : engine.streamAppend(connection, $0) }
        if ok { subscribers[Int(connection)].cursor.wroteControl(nowNanoseconds: engine.nowNanoseconds) }
        return ok
    }

    /// Ends a stream from the server's side: a close notice (`event: close` / a JSON close
    /// message and a close frame), then a bounded flush and close. Nothing is delivered after.
    /// `retryMilliseconds`: the reconnect delay the close asks for (a drain's jittered one).
    func closeStream(_ connection: Int32, reason: DisconnectReason, retryMilliseconds: UInt64? = nil) {
        let s = subscribers + Int(connection)
        guard s.pointee.active, !s.pointee.cursor.closing else { return }
        if s.pointee.liveIndex >= 0 { leaveLive(connection) }
        _ = s.pointee.cursor.beginClose()
        if s.pointee.transport == .sse {
            writeControl(connection, SSEEncoder.closeEvent(reason: reason.rawValue, retryMilliseconds: retryMilliseconds), final: true)
        } else {
            writeControl(connection, WebSocketMessageEncoder.closeNoticeFrame(reason: reason.rawValue, retryMilliseconds: retryMilliseconds),
                         final: true)
            let code: UInt16 = switch reason {
            case .slowConsumer: WebSocketCloseCode.policyViolation
            case .tokenExpired: WebSocketCloseCode.tokenExpired
            default: WebSocketCloseCode.goingAway
            }
            writeControl(connection, WebSocketFrameEncoder.closeFrame(code: code, reason: reason.rawValue), final: true)
        }
        engine.closeAfterFlush(connection, reason: reason)
    }

    /// Heartbeats after `--heartbeat` of silence (SSE comments; WebSocket pings, which must be
    /// answered within two heartbeats), and the end of streams past their lifetime or their
    /// token's expiry: for the streams the timer wheel has due, each looked at again when its
    /// cursor next has something to do.
    func sendHeartbeats(now: UInt64) {
        let interval = config.heartbeatNanoseconds
        dueTimers.removeAll(keepingCapacity: true)
        timers.takeDue(nowNanoseconds: now, into: &dueTimers)
        for entry in dueTimers {
            let connection = entry.connection
            let s = subscribers + Int(connection)
            guard s.pointee.active, s.pointee.timerToken == entry.token, !s.pointee.cursor.closing else { continue }
            // MARK: AUTH (issue 14): a stream ends within a timer slot of exp + leeway.
            if s.pointee.tokenExpiresAtNanoseconds != 0 && now >= s.pointee.tokenExpiresAtNanoseconds {
                closeStream(connection, reason: .tokenExpired)
                continue
            }
            switch s.pointee.cursor.tick(nowNanoseconds: now, heartbeatNanoseconds: interval) {
            case .none:
                scheduleTimer(connection, now: now)
            case .closeMaxLifetime:
                closeStream(connection, reason: .maxLifetime)
            case .closeHalfOpen:
                engine.beginClose(connection, reason: .halfOpen)
            case .heartbeat:
                guard engine.streamSendFixed(connection, s.pointee.transport == .sse ? fixedHeartbeat : fixedPing) else {
                    // No room (a full buffer, the pool spent): tried again at the next tick.
                    timers.schedule(connection, token: entry.token, dueNanoseconds: now)
                    continue
                }
                if s.pointee.transport == .webSocket { s.pointee.inputBytesSincePing = 0 }
                s.pointee.cursor.heartbeatSent(nowNanoseconds: now)
                scheduleTimer(connection, now: now)
            }
        }
    }

    /// Puts the stream in the timer wheel at its cursor's next due time (or its token's
    /// expiry, if sooner), under a new token: any entry it had is stale from now on.
    func scheduleTimer(_ connection: Int32, now: UInt64) {
        let s = subscribers + Int(connection)
        var due = s.pointee.cursor.nextTickNanoseconds(nowNanoseconds: now, heartbeatNanoseconds: config.heartbeatNanoseconds)
        if s.pointee.tokenExpiresAtNanoseconds != 0 { due = min(due, s.pointee.tokenExpiresAtNanoseconds) }
        lastTimerToken &+= 1
        s.pointee.timerToken = lastTimerToken
        timers.schedule(connection, token: lastTimerToken, dueNanoseconds: due)
    }

    /// The client's WebSocket frames: pings answered, pongs noted, data dropped, the closing
    /// handshake completed, protocol errors closed with their code.
    func webSocketInput(_ connection: Int32, _ bytes: UnsafeRawBufferPointer) {
        let s = subscribers + Int(connection)
        guard s.pointee.active, s.pointee.decoder != nil else { return }
        // Subscribers do not publish: a client that keeps sending (data or control frames) past
        // a budget per heartbeat is closed, so its input costs bounded work, not just no memory.
        s.pointee.inputBytesSincePing += bytes.count
        if s.pointee.inputBytesSincePing > webSocketInputBudgetBytes && !s.pointee.cursor.closing {
            if s.pointee.liveIndex >= 0 { leaveLive(connection) }
            _ = s.pointee.cursor.beginClose()
            let frame = WebSocketFrameEncoder.closeFrame(code: WebSocketCloseCode.policyViolation,
                                                         reason: "subscribers do not publish")
            writeControl(connection, frame, final: true)
            engine.closeAfterFlush(connection, reason: .protocolError)
            return
        }
        var offset = 0
        while offset < bytes.count {
            let (consumed, event) = s.pointee.decoder!.decode(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += consumed
            guard let event else {
                if consumed == 0 { return }   // closed: the rest is dropped
                continue
            }
            switch event {
            case .text, .binary:
                break   // subscribers do not publish
            case .ping(let payload):
                let frame = WebSocketFrameEncoder.frame(opcode: .pong, payload: payload)
                _ = frame.withUnsafeBytes { engine.streamAppend(connection, $0) }
            case .pong:
                s.pointee.cursor.pongReceived(nowNanoseconds: engine.nowNanoseconds)
            case .close(let code, _):
                if s.pointee.liveIndex >= 0 { leaveLive(connection) }
                if s.pointee.cursor.beginClose() {
                    writeControl(connection, WebSocketFrameEncoder.closeFrame(code: code ?? WebSocketCloseCode.normal), final: true)
                }
                engine.closeAfterFlush(connection, reason: .peerClosed)
                return
            case .protocolError(let closeCode, let reason):
                if s.pointee.liveIndex >= 0 { leaveLive(connection) }
                _ = s.pointee.cursor.beginClose()
                writeControl(connection, WebSocketFrameEncoder.closeFrame(code: closeCode, reason: String(reason.prefix(100))), final: true)
                engine.closeAfterFlush(connection, reason: .protocolError)
                return
            }
        }
    }
}
