import Testing
import WireProtocol
@testable import Worker

/// The subscriber listener's routing table: what each method and path is answered with.
@Suite struct WorkerRouteTests {
    func route(_ method: HTTPMethod, _ path: String) -> WorkerRoute { WorkerRoute.match(method: method, path: path) }

    @Test func probesAndMetricsAnswerReadsOnly() {
        #expect(route(.get, "/healthz") == .health)
        #expect(route(.head, "/healthz") == .health)
        #expect(route(.get, "/readyz") == .ready)
        #expect(route(.get, "/metrics") == .metrics)
        #expect(route(.options, "/metrics") == .options(allow: WorkerRoute.readAllow))
        #expect(route(.post, "/healthz") == .methodNotAllowed(allow: WorkerRoute.readAllow))
        #expect(route(.get, "/healthz/") == .notFound)
    }

    @Test func slotResources() {
        #expect(route(.get, "/v1/slots/news/events") == .history(slot: "news"))
        #expect(route(.head, "/v1/slots/news/events") == .history(slot: "news"))
        #expect(route(.get, "/v1/slots/news/stream") == .stream(slot: "news"))
        #expect(route(.get, "/v1/slots/a.b:c-d_e/ws") == .webSocket(slot: "a.b:c-d_e"))
        #expect(route(.options, "/v1/slots/news/ws") == .options(allow: WorkerRoute.webSocketAllow))
        #expect(route(.head, "/v1/slots/news/ws") == .methodNotAllowed(allow: WorkerRoute.webSocketAllow))
        #expect(route(.post, "/v1/slots/news/stream") == .methodNotAllowed(allow: WorkerRoute.readAllow))
    }

    @Test func badAndUnknownPaths() {
        // The slot is what lies before the last '/', so a '/' in it or an empty one is a bad slot.
        #expect(route(.get, "/v1/slots/a/b/events") == .badSlot("a/b"))
        #expect(route(.get, "/v1/slots//events") == .badSlot(""))
        #expect(route(.get, "/v1/slots/news/other") == .notFound)
        #expect(route(.get, "/v1/slots/news") == .notFound)
        #expect(route(.get, "/v1/slots/") == .notFound)
        #expect(route(.get, "/v1/slotsx/news/events") == .notFound)
        #expect(route(.get, "/index.html") == .notFound)
        #expect(route(.get, "/v1/status") == .notFound)
        // An unknown leaf is not found whatever the method; a bad slot only after the method.
        #expect(route(.post, "/v1/slots/a/b/events") == .methodNotAllowed(allow: WorkerRoute.readAllow))
        #expect(route(.get, "/v1/slots/\(String(repeating: "x", count: 129))/events")
            == .badSlot(String(repeating: "x", count: 129)))
    }

    @Test func statusPageStatsStreamAndOpenAPIRoutes() {
        #expect(route(.get, "/") == .statusPage)
        #expect(route(.head, "/") == .statusPage)
        #expect(route(.get, "/v1/status/stream") == .statusStream)
        #expect(route(.get, "/openapi.yaml") == .openAPI)
        #expect(route(.post, "/") == .methodNotAllowed(allow: WorkerRoute.readAllow))
        #expect(route(.options, "/v1/status/stream") == .options(allow: WorkerRoute.readAllow))
    }

    @Test func corsCountingSkipsWebSocketAndUnknownRoutes() {
        #expect(route(.get, "/healthz").answersWithCORS)
        #expect(!route(.get, "/v1/slots/news/ws").answersWithCORS)
        #expect(!route(.get, "/nope").answersWithCORS)
    }
}
