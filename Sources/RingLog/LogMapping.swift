import CRinggateSys
import Glibc

/// Why a log file could not be opened or mapped; `description` is meant for the operator.
public struct LogFileError: Error, CustomStringConvertible {
    public let description: String

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
    /// Opens `path`, creating and formatting it (random epoch) when it does not exist. An
    /// existing file must hold a log of exactly `geometry`; otherwise this throws and names both.
    public static func openOrCreate(
        path: String, geometry: LogGeometry
    ) throws -> (fd: Int32, base: UnsafeMutableRawPointer, length: Int, created: Bool) {
        var created = false
        var fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            guard errno == ENOENT else { throw LogFileError("cannot open", path: path, errno: errno) }
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw LogFileError("cannot create", path: path, errno: errno) }
            created = true
        }
        do {
            if created {
                guard ftruncate(fd, off_t(geometry.totalBytes)) == 0 else {
                    throw LogFileError("cannot size to \(geometry.totalBytes) bytes", path: path, errno: errno)
                }
                let (base, length) = try map(fd: fd)
                do {
                    _ = try LogRegion.format(base: base, length: length, geometry: geometry, epoch: randomEpoch())
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
            close(fd)
            if created { unlink(path) }
            throw error
        }
    }

    /// A formatted log in an anonymous memfd (for `--ephemeral`). The fd has CLOEXEC set;
    /// clear it (rg_clear_cloexec) for children that should inherit it.
    public static func createEphemeral(
        geometry: LogGeometry
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
                _ = try LogRegion.format(base: base, length: length, geometry: geometry, epoch: randomEpoch())
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
