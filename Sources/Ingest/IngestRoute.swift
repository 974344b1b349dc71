import RoleSupport

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
        if GatewayPath.matches(path, "/healthz") {
            self = .health
        } else if GatewayPath.matches(path, "/v1/events") {
            self = .batch
        } else if IngestRoute.slotOfEventsPath(path) != nil {
            self = .event
        } else {
            self = .notFound
        }
    }

    /// The slot of `/v1/slots/{slot}/events`, as a slice of `path`; nil for any other path
    /// (an empty slot included: no route, where the worker's listener says bad_slot).
    static func slotOfEventsPath(_ path: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let (slot, leaf) = GatewayPath.slotResource(path), !slot.isEmpty, GatewayPath.matches(leaf, "events") else {
            return nil
        }
        return slot
    }
}
