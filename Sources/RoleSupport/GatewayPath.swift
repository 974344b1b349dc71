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
        guard path.count > slotsPrefix.count, path.starts(with: slotsPrefix) else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: path[slotsPrefix.count...])
        guard let slash = rest.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return (UnsafeRawBufferPointer(rebasing: rest[..<slash]),
                UnsafeRawBufferPointer(rebasing: rest[(slash + 1)...]))
    }
}
