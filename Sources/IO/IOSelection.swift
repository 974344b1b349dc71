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
            let disabled = ioUringDisabledSysctl()
            if disabled == 2 {
                return (.epoll, refusalCause(errno: EPERM, sysctl: 2))
            }
            do {
                _ = try Ring(entries: 8, completionBatch: 1)
                return (.ioUring, nil)
            } catch {
                guard refusesIOUring(error.errno) else {
                    // Another failure (locked memory, say) is not a refusal: report it as io_uring's.
                    return (.ioUring, nil)
                }
                return (.epoll, refusalCause(errno: error.errno, sysctl: disabled))
            }
        }
    }

    /// Why io_uring_setup said `errno`, naming the cause an operator can act on.
    public static func refusalCause(errno: Int32, sysctl: Int) -> String {
        guard errno == EPERM else {
            return "io_uring is not available (io_uring_setup: ENOSYS): the kernel is too old or built without it"
        }
        switch sysctl {
        case 2:
            return "io_uring is not permitted (io_uring_setup: EPERM): kernel.io_uring_disabled=2 disables it on this host"
        case 1:
            return "io_uring is not permitted (io_uring_setup: EPERM): kernel.io_uring_disabled=1 allows it only to root and to members of kernel.io_uring_group"
        default:
            return "io_uring is not permitted (io_uring_setup: EPERM): a seccomp profile blocks it (Docker's default does)"
        }
    }

    /// `kernel.io_uring_disabled` (0, 1 or 2); 0 when the file is absent (older kernels).
    public static func ioUringDisabledSysctl() -> Int {
        let fd = open("/proc/sys/kernel/io_uring_disabled", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { _ = Glibc.close(fd) }
        var byte: UInt8 = 0
        guard Glibc.read(fd, &byte, 1) == 1, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return 0 }
        return Int(byte - UInt8(ascii: "0"))
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
                guard refusesIOUring(error.errno) else { throw Failure(error.description) }
                throw Failure(refusalCause(errno: error.errno, sysctl: ioUringDisabledSysctl())
                    + "; run with --io epoll (or --io auto) where io_uring is blocked")
            }
        case .epoll:
            return try EpollBackend(configuration: configuration)
        case .simulated:
            throw Failure("the simulated backend exists only in tests")
        }
    }
}
