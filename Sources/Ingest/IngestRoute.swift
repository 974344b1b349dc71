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
        if path.elementsEqual(GatewayPath.health) {
            self = .health
        } else if path.elementsEqual(GatewayPath.batch) {
            self = .batch
        } else if IngestRoute.slotOfEventsPath(path) != nil {
            self = .event
        } else {
            self = .notFound
        }
    }

    static let eventsLeaf = Array("events".utf8)

    /// The slot of `/v1/slots/{slot}/events`, as a slice of `path`; nil for any other path
    /// (an empty slot included: no route, where the worker's listener says bad_slot).
    static func slotOfEventsPath(_ path: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let (slot, leaf) = GatewayPath.slotResource(path), !slot.isEmpty, leaf.elementsEqual(eventsLeaf) else {
            return nil
        }
        return slot
    }
}
