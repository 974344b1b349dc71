import IO
import Glibc
import WireProtocol

/// Accept at the descriptor limit (issue 10, item 7): back off instead of spinning, answer the
/// connections already waiting with 503, count and log the errors.
extension HTTPEngine {
    /// Accept failed. At the descriptor limit the kernel keeps failing at once, so re-arming
    /// right away would spin: pause accept (re-armed from the tick, backing off), and answer
    /// the connections already waiting with 503 through the reserve descriptor.
    func acceptFailed(errno code: Int32) {
        switch code {
        case EMFILE: counters.add(.acceptErrorsEMFILE)
        case ENFILE: counters.add(.acceptErrorsENFILE)
        default: counters.add(.acceptErrorsOther)
        }
        // accept(2): errors of the connection being accepted (it was reset while waiting, say)
        // are to be treated like EAGAIN; only a lack of resources makes accept back off.
        let exhausted = code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
        if !exhausted && acceptBackoffNanoseconds == 0 {
            acceptBackoffNanoseconds = 1   // one immediate retry; a repeat backs off
            if !acceptArmed { armAccept() }
            return
        }
        acceptErrorsSinceLog += 1
        lastAcceptErrno = code
        if code == EMFILE || code == ENFILE { shedWaitingConnections() }
        let minimum = configuration.acceptBackoffMinNanoseconds
        acceptBackoffNanoseconds = acceptBackoffNanoseconds <= 1 ? minimum
            : min(acceptBackoffNanoseconds * 2, max(minimum, configuration.acceptBackoffMaxNanoseconds))
        acceptResumeNanoseconds = nowNanoseconds + acceptBackoffNanoseconds
        if acceptArmed {   // a multishot accept that goes on failing: stop it until the backoff ends
            acceptArmed = false
            if !io.cancelAll(fd: listenFD, tag: UserData.pack(.cancel)) { submissionQueueFull() }
        }
        logAcceptErrorsIfDue()
    }

    func logAcceptErrorsIfDue() {
        guard acceptErrorsSinceLog > 0,
              nowNanoseconds &- lastAcceptErrorLogNanoseconds >= configuration.acceptErrorLogIntervalNanoseconds
                || lastAcceptErrorLogNanoseconds == 0 else { return }
        let name = lastAcceptErrno == EMFILE ? "EMFILE" : lastAcceptErrno == ENFILE ? "ENFILE" : "errno \(lastAcceptErrno)"
        logger.warning("accept failed: \(name) (\(acceptErrorsSinceLog) times since the last report); new connections get 503 and accept backs off \(acceptBackoffNanoseconds / 1_000_000) ms",
                       metadata: ["connections": "\(liveCount)"])
        acceptErrorsSinceLog = 0
        lastAcceptErrorLogNanoseconds = nowNanoseconds
    }

    /// Answers connections waiting in the listen backlog with 503, one at a time through the
    /// reserve descriptor (closed to make room for the accept, reopened after). Bounded per call.
    func shedWaitingConnections() {
        reopenReserveFDIfLost()
        var shed = 0
        while shed < HTTPEngine.shedPerCallMax && reserveFD >= 0 {
            io.close(fd: reserveFD)
            reserveFD = -1
            let fd = io.acceptNow(listener: listenFD)
            if fd >= 0 { rejectOverCapacity(fd) }
            reserveFD = io.openReserveDescriptor()
            if fd < 0 { break }
            shed += 1
        }
    }

    /// Connections answered 503 per shed: bounds the time one turn spends on the backlog (each
    /// costs an accept, a send and two closes) while the loop's other connections wait.
    static let shedPerCallMax = 64

    /// Reopening the reserve descriptor fails when the host is out of descriptors (ENFILE):
    /// try again (at the next shed, and from the tick), so shedding is not off for good.
    func reopenReserveFDIfLost() {
        guard reserveFD < 0 else { return }
        reserveFD = io.openReserveDescriptor()
    }
}
