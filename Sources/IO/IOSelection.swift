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
    /// the one log line). Builds, and tears down again, exactly what each child builds for
    /// each of `configurations` (the ring and its provided-buffer ring at the real sizes), so
    /// a kernel or a seccomp profile that allows `io_uring_setup` but not the rest, or a
    /// locked-memory limit too small for the real sizes, falls back here instead of making
    /// every child exit.
    public static func resolve(_ choice: IOBackendChoice,
                               probing configurations: [IOBackendConfiguration] = [IOBackendConfiguration()])
        -> (kind: IOBackendKind, fallbackCause: String?) {
        switch choice {
        case .ioUring: return (.ioUring, nil)
        case .epoll: return (.epoll, nil)
        case .auto:
            let disabled = ioUringDisabledSysctl()
            if disabled == 2 {
                return (.epoll, refusalCause(errno: EPERM, sysctl: 2))
            }
            for configuration in configurations {
                do {
                    _ = try UringBackend(configuration: configuration)
                } catch {
                    guard refusesIOUring(error.errno) else {
                        // Anything else is not a property of the host: report it as io_uring's.
                        return (.ioUring, nil)
                    }
                    return (.epoll, refusalCause(errno: error.errno, syscall: error.syscall, sysctl: disabled))
                }
            }
            return (.ioUring, nil)
        }
    }

    /// Why `syscall` said `errno`, naming the failed call, the errno and the cause an operator
    /// can act on.
    public static func refusalCause(errno: Int32, syscall: String = "io_uring_setup", sysctl: Int) -> String {
        let call = "(\(syscall): \(errnoName(errno)))"
        switch errno {
        case EPERM where syscall == "io_uring_setup":
            switch sysctl {
            case 2:
                return "io_uring is not permitted \(call): kernel.io_uring_disabled=2 disables it on this host"
            case 1:
                return "io_uring is not permitted \(call): kernel.io_uring_disabled=1 allows it only to root and to members of kernel.io_uring_group"
            default:
                return "io_uring is not permitted \(call): a seccomp profile blocks it (Docker's default does)"
            }
        case EPERM:
            return "io_uring is not permitted \(call): a seccomp profile allows io_uring_setup but blocks \(syscall)"
        case ENOSYS:
            return "io_uring is not available \(call): the kernel is too old or built without it"
        case EINVAL:
            return "io_uring is too old on this kernel \(call): it lacks provided-buffer rings or multishot receive (need Linux ≥ 6.1)"
        case ENOMEM:
            return "io_uring cannot run with these sizes \(call): RLIMIT_MEMLOCK is too small for the configured ring entries and receive buffers; raise it (ulimit -l) or lower --ring-entries/--recv-buffers"
        default:
            return "io_uring setup failed \(call)"
        }
    }

    /// The symbolic name of the errnos the fallback knows, else the number.
    static func errnoName(_ errno: Int32) -> String {
        switch errno {
        case EPERM: return "EPERM"
        case ENOSYS: return "ENOSYS"
        case EINVAL: return "EINVAL"
        case ENOMEM: return "ENOMEM"
        default: return "errno \(errno)"
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

    /// The errors after which `auto` serves on epoll: io_uring is not allowed (EPERM), not
    /// there (ENOSYS), lacks a feature ringgate uses (EINVAL), or cannot run at the configured
    /// sizes (ENOMEM: the probe uses the real sizes, so it is a property of this host and its
    /// limits, and serving on epoll with a line naming RLIMIT_MEMLOCK beats every child exiting).
    public static func refusesIOUring(_ errno: Int32) -> Bool {
        errno == EPERM || errno == ENOSYS || errno == EINVAL || errno == ENOMEM
    }

    /// Set (by `serve`) in the environment its children inherit when `auto` chose io_uring,
    /// so a child's failure does not advise `--io auto`, which is what was run.
    public static let resolvedFromAutoVariable = "RINGGATE_IO_RESOLVED_FROM_AUTO"

    /// Set (by `serve`) in its children's environment when `auto` found io_uring refused and
    /// chose epoll, so `/metrics` can say so (`ringgate_io_fallback 1`); removed otherwise.
    public static let fellBackVariable = "RINGGATE_IO_FELL_BACK"

    /// What to run instead; `--io auto` only when it is not what was run.
    public static func refusalAdvice(resolvedFromAuto: Bool) -> String {
        resolvedFromAuto ? "; run with --io epoll" : "; run with --io epoll (or --io auto) where io_uring is blocked"
    }

    /// Creates the backend `kind` names.
    public static func make(_ kind: IOBackendKind, configuration: IOBackendConfiguration) throws -> any IOBackend {
        switch kind {
        case .ioUring:
            do {
                return try UringBackend(configuration: configuration)
            } catch {
                guard refusesIOUring(error.errno) else { throw Failure(error.description) }
                throw Failure(refusalCause(errno: error.errno, syscall: error.syscall, sysctl: ioUringDisabledSysctl())
                    + refusalAdvice(resolvedFromAuto: getenv(resolvedFromAutoVariable) != nil))
            }
        case .epoll:
            return try EpollBackend(configuration: configuration)
        case .simulated:
            throw Failure("the simulated backend exists only in tests")
        }
    }
}
