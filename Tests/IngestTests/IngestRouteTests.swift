import Testing
@testable import Ingest

/// The publish listener's routes, decided from the path's bytes alone.
@Suite struct IngestRouteTests {
    func route(_ path: String) -> IngestRoute {
        Array(path.utf8).withUnsafeBytes { IngestRoute(path: $0) }
    }

    func slot(_ path: String) -> String? {
        Array(path.utf8).withUnsafeBytes { p in
            IngestRoute.slotOfEventsPath(p).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    @Test func routes() {
        #expect(route("/healthz") == .health)
        #expect(route("/v1/events") == .batch)
        #expect(route("/v1/slots/news/events") == .event)
        #expect(route("/v1/slots/news/stream") == .notFound)
        #expect(route("/v1/slots/news") == .notFound)
        #expect(route("/v1/events/") == .notFound)
        #expect(route("/metrics") == .notFound)
        #expect(route("") == .notFound)
    }

    @Test func theSlotOfAnEventsPath() {
        #expect(slot("/v1/slots/news/events") == "news")
        // Everything before the last "/events" is the slot: validation refuses it later (400).
        #expect(slot("/v1/slots/a/b/events") == "a/b")
        // An empty slot is no route at all here (404), as before.
        #expect(slot("/v1/slots//events") == nil)
        #expect(slot("/v1/slots/events") == nil)
        #expect(slot("/v1/slots/news/events/") == nil)
    }
}
