import WireProtocol

/// Deferred answers (issue 12): in cluster mode the ingest answers a publish once Redis and its
/// own log hold it, in a later loop turn than the request's.
///
/// A connection with a deferred answer pending holds every later answer (immediate ones
/// included) in `held`, in request order, until the answers ahead of it were given: the first
/// entry of `held` is always a waiting one. With nothing deferred `held` is empty and `respond`
/// pays one branch.
extension HTTPEngine {
    /// Called while `engine(_:request:connection:)` runs, instead of answering: the current
    /// request's answer comes later, through `answer(_:…)` or `answerError(_:…)`. Answers to
    /// later requests on the connection (pipelined) wait behind it, in order.
    ///
    /// Returns nil when `Configuration.maxDeferredAnswers` answers are waiting already: nothing
    /// was deferred, and the caller answers the request at once (for instance
    /// `respondError(conn, status: 503, error: "over_capacity", …)`) without starting the work
    /// the answer would have waited for.
    ///
    /// A deferred answer counts as unsent for the pipelining caps (`maxPipelinedRequests`): the
    /// input pauses behind it as behind unsent answers. While one is pending the connection is
    /// not idle (no header, body or keep-alive timeout closes it), a half-close (FIN) is answered
    /// before the close, and a stop (`closeIdleHTTP`) leaves it open until answered; the caller
    /// bounds how long an answer may take. The connection must not become a stream meanwhile.
    public func deferAnswer(_ conn: Int32) -> DeferredAnswer? {
        precondition(dispatchingConnection == conn && !dispatchDeferred,
                     "deferAnswer is called once per request, while engine(_:request:connection:) runs for it")
        let c = table + Int(conn)
        guard c.pointee.phase == .http, deferredAnswers < configuration.maxDeferredAnswers else { return nil }
        dispatchDeferred = true
        let ordinal = c.pointee.nextDeferredOrdinal
        c.pointee.nextDeferredOrdinal &+= 1
        c.pointee.held.append(.waiting(ordinal: ordinal, closes: c.pointee.closeAfterFlush))
        deferredAnswers += 1
        return DeferredAnswer(connection: conn, generation: c.pointee.generation, ordinal: ordinal)
    }

    /// Gives a deferred request its answer, a head and a body (as `respond(_:head:body:)`).
    /// False when the ticket is stale: the connection closed (a reset peer, a send timeout) or
    /// the ticket was answered already.
    @discardableResult
    public func answer(_ ticket: DeferredAnswer, head: [UInt8], body: [UInt8]) -> Bool {
        guard let index = heldIndex(ticket) else { return false }
        give(ticket.connection, at: index, head + body)
        return true
    }

    /// Gives a deferred request its complete answer (as `respond(_:_:close:)`); `close` ends
    /// the connection once it and the answers before it are sent. False when the ticket is stale.
    @discardableResult
    public func answer(_ ticket: DeferredAnswer, _ bytes: [UInt8], close: Bool = false) -> Bool {
        guard let index = heldIndex(ticket) else { return false }
        if close { table[Int(ticket.connection)].closeAfterFlush = true }
        give(ticket.connection, at: index, bytes)
        return true
    }

    /// Gives a deferred request a JSON error answer (as `respondError` without `close`); its
    /// head says `Connection: close` when its request (or an earlier one) asked for the close.
    /// False when the ticket is stale.
    @discardableResult
    public func answerError(_ ticket: DeferredAnswer, status: Int, error: String, detail: String,
                            extraHeaders: [(String, String)] = []) -> Bool {
        guard let index = heldIndex(ticket), case .waiting(_, let closes) = table[Int(ticket.connection)].held[index]
        else { return false }
        let bytes = HTTPResponseWriter.json(status: status, body: ErrorBody.json(error: error, detail: detail),
                                            keepAlive: !closes, extraHeaders: extraHeaders)
        give(ticket.connection, at: index, bytes)
        return true
    }

    /// Where the ticket's waiting answer is in its connection's `held`; nil when stale.
    func heldIndex(_ ticket: DeferredAnswer) -> Int? {
        let conn = ticket.connection
        guard conn >= 0, Int(conn) < tableCapacity else { return nil }
        let c = table + Int(conn)
        guard c.pointee.generation == ticket.generation, c.pointee.phase == .http else { return nil }
        // Bounded by the pipelining cap: a connection holds at most that many answers.
        for (i, entry) in c.pointee.held.enumerated() {
            if case .waiting(let ordinal, _) = entry, ordinal == ticket.ordinal { return i }
        }
        return nil
    }

    /// Puts the answer in its place, then releases every answer that no longer waits on one
    /// ahead of it into the connection's output, in order.
    func give(_ conn: Int32, at index: Int, _ bytes: [UInt8]) {
        let c = table + Int(conn)
        c.pointee.held[index] = .ready(bytes)
        c.pointee.heldBytes += bytes.count
        deferredAnswers -= 1
        while let first = c.pointee.held.first, case .ready(let ready) = first {
            c.pointee.held.removeFirst()
            c.pointee.heldBytes -= ready.count
            enqueue(c, ready)
        }
        syncResponseGauge(c)
        markDirty(conn)
    }

    /// An answer (immediate, or a request's 100 Continue) behind a deferred one still waiting.
    func hold(_ c: UnsafeMutablePointer<Connection>, _ bytes: [UInt8]) {
        c.pointee.held.append(.ready(bytes))
        c.pointee.heldBytes += bytes.count
        syncResponseGauge(c)
    }

    /// The connection is closing: its tickets are stale and what they held is freed.
    func dropHeld(_ c: UnsafeMutablePointer<Connection>) {
        guard !c.pointee.held.isEmpty else { return }
        for entry in c.pointee.held {
            if case .waiting = entry { deferredAnswers -= 1 }
        }
        c.pointee.held = []
        c.pointee.heldBytes = 0
        syncResponseGauge(c)
    }
}
