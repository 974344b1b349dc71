import IO
import Glibc
import WireProtocol

/// Pipelining caps (issue 10, item 9): a connection whose answers pile up unsent stops being
/// read (the kernel's receive window then stops the client) and resumes when they are sent.
/// What was received but not parsed waits in the connection's `stash`.
extension HTTPEngine {
    func responseBytes(_ c: UnsafeMutablePointer<Connection>) -> Int {
        (c.pointee.out.map { $0.count - c.pointee.outOffset } ?? 0) + c.pointee.queued.count + c.pointee.heldBytes
    }

    /// Keeps the `responseQueueBytes` gauge equal to the sum of every connection's unsent answers.
    func syncResponseGauge(_ c: UnsafeMutablePointer<Connection>) {
        let now = responseBytes(c)
        let before = c.pointee.responseGaugeBytes
        if now > before { counters.add(.responseQueueBytes, UInt64(now - before)) }
        if now < before { counters.subtract(.responseQueueBytes, UInt64(before - now)) }
        c.pointee.responseGaugeBytes = now
    }

    func overPipelineLimit(_ c: UnsafeMutablePointer<Connection>) -> Bool {
        c.pointee.unsentAnswers >= configuration.maxPipelinedRequests
            || responseBytes(c) >= configuration.maxResponseQueueBytes
    }

    /// Keeps `rest` unparsed and stops receiving until the connection's answers are sent.
    func pauseInput(_ conn: Int32, _ rest: UnsafeRawBufferPointer) {
        let c = table + Int(conn)
        c.pointee.stash.append(contentsOf: rest)
        guard !c.pointee.paused else { return }
        c.pointee.paused = true
        c.pointee.headStartNanoseconds = 0
        counters.add(.pipelinePaused)
        if c.pointee.recvArmed { cancelRecv(conn) }
    }

    func cancelRecv(_ conn: Int32) {
        let c = table + Int(conn)
        if io.cancel(fd: c.pointee.fd, target: userData(.recv, conn), tag: UserData.pack(.cancel)) {
            c.pointee.recvCancelPending = true
        } else {
            submissionQueueFull()   // tried again on the next receive
        }
    }

    /// The answers were sent: parse what waited, and receive again. Answers held behind a
    /// deferred one are not sent yet: while they fill the caps the input stays paused.
    func drained(_ conn: Int32) {
        let c = table + Int(conn)
        c.pointee.unsentAnswers = c.pointee.held.count
        guard c.pointee.paused, c.pointee.phase == .http else { return }
        if !c.pointee.held.isEmpty && overPipelineLimit(c) { return }
        c.pointee.paused = false
        let waiting = c.pointee.stash
        c.pointee.stash = []
        waiting.withUnsafeBytes { feed(conn, $0) }
        // A stashed request may have started a stream (SSE, WebSocket): it needs the receive
        // as much as an HTTP connection does (a WebSocket's frames, any peer's FIN).
        let phase = c.pointee.phase
        guard phase == .http || phase == .stream, !c.pointee.paused else { return }
        if c.pointee.inputEnded {
            if phase == .http { closeAfterFlush(conn, reason: .completed) } else { beginClose(conn, reason: .peerClosed) }
        } else if !c.pointee.recvArmed && !c.pointee.recvCancelPending {
            armRecv(conn)
        }
    }
}
