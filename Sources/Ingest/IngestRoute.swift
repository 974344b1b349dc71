/// The ingest's routes, decided once from the path's bytes, so that the head hook and the
/// request handler cannot disagree about what a path is.
enum IngestRoute: Equatable {
    case health
    /// `POST /v1/events`: an NDJSON batch.
    case batch
    /// `POST /v1/slots/{slot}/events`: one event.
    case event
    case notFound

    init(path: UnsafeRawBufferPointer) {
        if path.elementsEqual(IngestRoute.healthPath) {
            self = .health
        } else if path.elementsEqual(IngestRoute.batchPath) {
            self = .batch
        } else if IngestRoute.slotOfEventsPath(path) != nil {
            self = .event
        } else {
            self = .notFound
        }
    }

    static let healthPath = Array("/healthz".utf8)
    static let batchPath = Array("/v1/events".utf8)
    static let slotsPrefix = Array("/v1/slots/".utf8)
    static let eventsSuffix = Array("/events".utf8)

    /// The slot of `/v1/slots/{slot}/events`, as a slice of `path`; nil for any other path.
    static func slotOfEventsPath(_ path: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let p = slotsPrefix.count, q = eventsSuffix.count
        guard path.count > p + q, path.starts(with: slotsPrefix), path.suffix(q).elementsEqual(eventsSuffix) else {
            return nil
        }
        return UnsafeRawBufferPointer(rebasing: path[p..<(path.count - q)])
    }
}
