import Glibc

/// `--io auto|io_uring|epoll` (`RINGGATE_IO`).
public enum IOBackendChoice: String, Sendable, CaseIterable {
    /// io_uring, or epoll when io_uring is refused (seccomp, `kernel.io_uring_disabled`, an old kernel).
    case auto
    case ioUring = "io_uring"
    case epoll

    public init?(argument: String) { self.init(rawValue: argument) }
}

/// Picks and creates a loop's backend.
public enum IOSelection {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// What `auto` resolves to on this host, and why when it is not io_uring (a sentence for
    /// the one log line). Probes with a small ring that is torn down again.
    public static func resolve(_ choice: IOBackendChoice) -> (kind: IOBackendKind, fallbackCause: String?) {
        switch choice {
        case .ioUring: return (.ioUring, nil)
        case .epoll: return (.epoll, nil)
        case .auto:
            if Ring.disabledBySysctl() {
                return (.epoll, "io_uring is disabled on this host (kernel.io_uring_disabled=2)")
            }
            do {
                _ = try Ring(entries: 8, completionBatch: 1)
                return (.ioUring, nil)
            } catch {
                if refusesIOUring(error.errno) { return (.epoll, error.description) }
                // Another failure (locked memory, say) is not a refusal: report it as io_uring's.
                return (.ioUring, nil)
            }
        }
    }

    /// The errors that mean "io_uring is not allowed or not there", where epoll is the answer.
    public static func refusesIOUring(_ errno: Int32) -> Bool { errno == EPERM || errno == ENOSYS }

    /// Creates the backend `kind` names.
    public static func make(_ kind: IOBackendKind, configuration: IOBackendConfiguration) throws -> any IOBackend {
        switch kind {
        case .ioUring:
            do {
                return try UringBackend(configuration: configuration)
            } catch {
                throw Failure(error.description + (refusesIOUring(error.errno)
                    ? "; run with --io epoll (or --io auto) where io_uring is blocked" : ""))
            }
        case .epoll:
            _ = try EpollBackend(configuration: configuration)   // EPOLL-BRANCH: return it once it conforms
            throw Failure("the epoll backend is not built yet")
        case .simulated:
            throw Failure("the simulated backend exists only in tests")
        }
    }
}
