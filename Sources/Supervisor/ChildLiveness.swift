/// The watchdog's verdict on one child, from the monotonic stamps it leaves in its counter
/// block. Pure, so that the limits are tested without processes; the supervisor acts on it
/// (start-up: fail; later: SIGKILL and restart).
struct ChildLiveness: Equatable {
    /// A child that has not turned its loop once and shows no start-up progress for this long
    /// (or `--watchdog-timeout`, when longer) is hung in start-up.
    static let startupStallNanoseconds: UInt64 = 15_000_000_000
    /// A start-up that keeps making progress (the ingest's recovery scan verifies every
    /// retained record: O(--log-capacity), slow on a cold page cache) is still given up after
    /// this long, so a scan that progresses but never ends cannot hold start-up forever.
    /// 30 min covers a 100 GiB log read at about 60 MB/s.
    static let startupMaxNanoseconds: UInt64 = 30 * 60 * 1_000_000_000
    /// A loop blocked in one fdatasync (`--fsync always`: one per turn) gets at least this long:
    /// a slow or saturated disk is not a wedged loop, and killing it would lose nothing but
    /// the ingest (the same fdatasync then runs again after the restart).
    static let fsyncMinimumNanoseconds: UInt64 = 60_000_000_000

    /// The child's counters (`LogCounter` of the same names); 0 = never stamped.
    struct Stamps: Equatable {
        var heartbeatNanoseconds: UInt64 = 0
        var startupProgressNanoseconds: UInt64 = 0
        var fsyncStartedNanoseconds: UInt64 = 0
    }

    enum Verdict: Equatable {
        case alive
        /// Not serving yet and no progress for `stalledNanoseconds`.
        case startupStalled(stalledNanoseconds: UInt64)
        /// Not serving after `startupMaxNanoseconds`, progress or not.
        case startupTooLong(elapsedNanoseconds: UInt64)
        /// Its loop has not turned for this long.
        case loopStalled(stalledNanoseconds: UInt64)
        /// Inside one fdatasync for this long.
        case fsyncStuck(blockedNanoseconds: UInt64)
    }

    /// `watchdogTimeoutNanoseconds == 0` (`--watchdog-timeout 0`) turns off the judgement of a
    /// child that served already; start-up limits always apply.
    static func judge(nowNanoseconds now: UInt64, startedNanoseconds started: UInt64, stamps: Stamps,
                      watchdogTimeoutNanoseconds timeout: UInt64) -> Verdict {
        func age(_ since: UInt64) -> UInt64 { now > since ? now - since : 0 }
        guard stamps.heartbeatNanoseconds != 0 else {
            // A stamp from before this child started (a previous process) is not its progress.
            let progress = max(started, stamps.startupProgressNanoseconds)
            let stallLimit = max(timeout, startupStallNanoseconds)
            if age(progress) > stallLimit { return .startupStalled(stalledNanoseconds: age(progress)) }
            if age(started) > max(stallLimit, startupMaxNanoseconds) {
                return .startupTooLong(elapsedNanoseconds: age(started))
            }
            return .alive
        }
        guard timeout > 0 else { return .alive }
        if stamps.fsyncStartedNanoseconds >= started, stamps.fsyncStartedNanoseconds != 0 {
            // The turn that entered it stamped its heartbeat first: the fdatasync itself is
            // what takes long, measured from when it began.
            let blocked = age(stamps.fsyncStartedNanoseconds)
            return blocked > max(timeout, fsyncMinimumNanoseconds) ? .fsyncStuck(blockedNanoseconds: blocked) : .alive
        }
        let stalled = age(stamps.heartbeatNanoseconds)
        return stalled > timeout ? .loopStalled(stalledNanoseconds: stalled) : .alive
    }

    /// What the supervisor logs when it acts on `verdict` (nil for `.alive`).
    static func message(_ verdict: Verdict, child: String, pid: Int32, watchdogTimeoutNanoseconds timeout: UInt64) -> String? {
        func ms(_ n: UInt64) -> UInt64 { n / 1_000_000 }
        switch verdict {
        case .alive:
            return nil
        case .startupStalled(let n):
            return "\(child) (pid \(pid)) has not started serving and made no start-up progress for \(ms(n)) ms"
                + " (limit \(ms(max(timeout, startupStallNanoseconds))) ms)"
        case .startupTooLong(let n):
            return "\(child) (pid \(pid)) has not started serving after \(ms(n)) ms (limit \(ms(startupMaxNanoseconds)) ms, even while making progress)"
        case .loopStalled(let n):
            return "\(child) (pid \(pid)) has not turned its loop for \(ms(n)) ms (--watchdog-timeout \(ms(timeout)) ms)"
        case .fsyncStuck(let n):
            return "\(child) (pid \(pid)) stuck in fdatasync for \(ms(n)) ms (limit \(ms(max(timeout, fsyncMinimumNanoseconds))) ms)"
        }
    }
}
