import CRinggateSys
import Glibc

/// Why a log file could not be opened or mapped; `description` is meant for the operator.
public struct LogFileError: Error, CustomStringConvertible {
    public let description: String

    init(message: String) { description = message }

    init(_ what: String, path: String? = nil, errno code: Int32? = nil) {
        var text = "ring log"
        if let path { text += " \(path)" }
        text += ": \(what)"
        if let code { text += " (\(String(cString: strerror(code))), errno \(code))" }
        description = text
    }
}

/// Opening, creating and mapping the log's backing file (MAP_SHARED).
public enum LogFile {
    /// Opens `path` and takes an exclusive `flock` on it for as long as the returned fd stays
    /// open (children that inherit the fd share it), before reading or writing a byte; creates,
    /// reserves (`posix_fallocate`) and formats it (random epoch) when it is new or empty. An
    /// existing file must hold a log of exactly `geometry`; otherwise this throws and names both.
    /// On any failure a file this call created is removed. `epoch`: the epoch a new log is
    /// formatted with (cluster mode: the cluster's); nil for a random one.
    public static func openOrCreate(
        path: String, geometry: LogGeometry, epoch: UInt32? = nil
    ) throws -> (fd: Int32, base: UnsafeMutableRawPointer, length: Int, created: Bool) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LogFileError("cannot open", path: path, errno: errno) }
        guard rg_flock_exclusive_nonblocking(fd) == 0 else {
            let code = errno
            let holder = lockHolder(fd: fd)
            close(fd)
            guard code == EWOULDBLOCK else { throw LogFileError("cannot lock", path: path, errno: code) }
            let who = holder.map { "another ringgate (pid \($0))" } ?? "another process"
            throw LogFileError(message: "ring log \(path) is in use by \(who); stop it or pick another --data-dir")
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw LogFileError("fstat failed", path: path, errno: code)
        }
        // An empty file is one a start that failed left behind, or ours: either way, a new log.
        let created = info.st_size == 0
        do {
            if created {
                if rg_fallocate(fd, UInt64(geometry.totalBytes)) != 0 {
                    let code = errno
                    if code == ENOSPC || code == EDQUOT {
                        throw LogFileError(message: "no space left on \(directoryOf(path)) for ring log \(path): "
                            + "need \(geometry.totalBytes) bytes (--log-capacity \(geometry.capacityBytes) + slot directory "
                            + "and seq index); free space, lower --log-capacity/--max-slots or pick another --data-dir")
                    }
                    throw LogFileError("cannot reserve \(geometry.totalBytes) bytes", path: path, errno: code)
                }
                let (base, length) = try map(fd: fd)
                do {
                    _ = try LogRegion.format(base: base, length: length, geometry: geometry, epoch: epoch ?? randomEpoch())
                } catch {
                    munmap(base, length)
                    throw LogFileError("\(error)", path: path)
                }
                return (fd, base, length, true)
            }
            let (base, length) = try map(fd: fd)
            guard let existing = LogRegion.peekGeometry(base: base, length: length) else {
                munmap(base, length)
                throw LogFileError(
                    "exists but is not a ring log of this format (move it away or pick another --data-dir)",
                    path: path)
            }
            guard existing == geometry else {
                munmap(base, length)
                throw LogFileError(
                    "was created with capacity \(existing.capacityBytes) bytes and \(existing.maxSlots) slots, "
                        + "but capacity \(geometry.capacityBytes) bytes and \(geometry.maxSlots) slots were asked for; "
                        + "use the same settings or remove the file to start a new log",
                    path: path)
            }
            return (fd, base, length, false)
        } catch {
            if created { unlink(path) }
            close(fd)
            throw error
        }
    }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The pid holding a FLOCK on `fd`'s file, from /proc/locks (`N: FLOCK ADVISORY WRITE pid maj:min:inode ...`).
    static func lockHolder(fd: Int32) -> Int32? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        let file = fopen("/proc/locks", "r")
        guard let file else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 512)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let pid = flockHolder(locksLine: text, device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) { return pid }
        }
        return nil
    }

    /// The pid of a /proc/locks line when it is a FLOCK held on the file (device, inode): an
    /// inode number alone names a file only within its device.
    static func flockHolder(locksLine: String, device: UInt64, inode: UInt64) -> Int32? {
        let fields = locksLine.split(separator: " ", omittingEmptySubsequences: true)
        // Blocked waiters are listed as "N: -> FLOCK ..."; only holders count.
        guard fields.count >= 6, fields[1] == "FLOCK", let pid = Int32(fields[4]) else { return nil }
        // The kernel prints "%02x:%02x:%lu": major and minor in hex, the inode in decimal.
        let id = fields[5].split(separator: ":")
        guard id.count == 3, let major = UInt64(id[0], radix: 16), let minor = UInt64(id[1], radix: 16),
              let number = UInt64(id[2])
        else { return nil }
        // glibc's gnu_dev_major / gnu_dev_minor.
        let deviceMajor = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let deviceMinor = (device & 0xff) | ((device >> 12) & ~0xff)
        guard major == deviceMajor, minor == deviceMinor, number == inode else { return nil }
        return pid
    }

    /// A formatted log in an anonymous memfd (for `--ephemeral`). The fd has CLOEXEC set;
    /// clear it (rg_clear_cloexec) for children that should inherit it. `epoch`: as for
    /// `openOrCreate`.
    public static func createEphemeral(
        geometry: LogGeometry, epoch: UInt32? = nil
    ) throws -> (fd: Int32, base: UnsafeMutableRawPointer, length: Int) {
        let fd = rg_memfd_create("ringgate-log")
        guard fd >= 0 else { throw LogFileError("memfd_create failed", errno: errno) }
        guard ftruncate(fd, off_t(geometry.totalBytes)) == 0 else {
            let code = errno
            close(fd)
            throw LogFileError("cannot size memfd to \(geometry.totalBytes) bytes", errno: code)
        }
        do {
            let (base, length) = try map(fd: fd)
            do {
                _ = try LogRegion.format(base: base, length: length, geometry: geometry, epoch: epoch ?? randomEpoch())
            } catch {
                munmap(base, length)
                throw LogFileError("\(error)")
            }
            return (fd, base, length)
        } catch {
            close(fd)
            throw error
        }
    }

    /// Maps the whole of `fd` MAP_SHARED read-write (children that inherited the log's fd).
    public static func map(fd: Int32) throws -> (base: UnsafeMutableRawPointer, length: Int) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw LogFileError("fstat of fd \(fd) failed", errno: errno) }
        let length = Int(info.st_size)
        guard length > 0 else { throw LogFileError("fd \(fd) is empty") }
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw LogFileError("mmap of \(length) bytes failed", errno: errno)
        }
        return (base, length)
    }

    static func randomEpoch() -> UInt32 {
        var epoch: UInt32 = 0
        while epoch == 0 {
            if rg_getrandom(&epoch, MemoryLayout<UInt32>.size) != 0 {
                epoch = UInt32(truncatingIfNeeded: rg_monotonic_ns() ^ (rg_monotonic_ns() >> 29))
            }
        }
        return epoch
    }
}
