import Glibc

/// The gateway's URL paths, shared by the subscriber and the publish listeners, matched on
/// the path's bytes (nothing is allocated to route a request).
public enum GatewayPath {
    public static let health = Array("/healthz".utf8)
    public static let ready = Array("/readyz".utf8)
    public static let metrics = Array("/metrics".utf8)
    /// `POST /v1/events`: an NDJSON batch.
    public static let batch = Array("/v1/events".utf8)
    public static let slotsPrefix = Array("/v1/slots/".utf8)

    /// A path under `/v1/slots/`: the slot is everything between the prefix and the last
    /// `/` (possibly empty, possibly with a `/` of its own: the caller validates it), the
    /// leaf what follows. nil for a path outside `/v1/slots/` or without a leaf separator.
    public static func slotResource(_ path: UnsafeRawBufferPointer)
        -> (slot: UnsafeRawBufferPointer, leaf: UnsafeRawBufferPointer)? {
        let prefix: StaticString = "/v1/slots/"
        let n = prefix.utf8CodeUnitCount
        guard path.count > n, let base = path.baseAddress, memcmp(base, prefix.utf8Start, n) == 0 else { return nil }
        // The last "/" after the prefix, found from the end.
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var slash = path.count - 1
        while slash >= n, bytes[slash] != UInt8(ascii: "/") { slash -= 1 }
        guard slash >= n else { return nil }
        return (UnsafeRawBufferPointer(start: base + n, count: slash - n),
                UnsafeRawBufferPointer(start: base + slash + 1, count: path.count - slash - 1))
    }

    /// Whether `path` is exactly `literal` (one length check and a memcmp).
    @inline(__always)
    public static func matches(_ path: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        path.count == literal.utf8CodeUnitCount
            && (path.count == 0 || memcmp(path.baseAddress!, literal.utf8Start, path.count) == 0)
    }
}
