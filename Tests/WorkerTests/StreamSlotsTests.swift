import Testing
import WireProtocol
@testable import Worker

/// The query of a stream or history pull of several slots, and its routes.
@Suite struct StreamSlotsTests {
    func parse(_ query: String, max: Int = 16, sse: Bool = true) -> Result<StreamSlots, StreamSlots.Refusal> {
        StreamSlots.parse(query: QueryString.parse(query), max: max, sse: sse)
    }

    func code(_ query: String, max: Int = 16, sse: Bool = true) -> String? {
        if case .failure(let refusal) = parse(query, max: max, sse: sse) { return refusal.code }
        return nil
    }

    @Test func repeatedAndCommaListsKeepTheirOrder() {
        #expect(parse("slot=b&slot=a") == .success(StreamSlots(names: ["b", "a"])))
        #expect(parse("slot=b,a&after=5f3a9c01-1&slot=c") == .success(StreamSlots(names: ["b", "a", "c"])))
        #expect(parse("slot=news.a") == .success(StreamSlots(names: ["news.a"])))
    }

    @Test func refusalsNameWhatIsWrong() {
        #expect(code("") == "missing_slot")
        #expect(code("after=5f3a9c01-1") == "missing_slot")
        #expect(code("slot=") == "bad_slot")
        #expect(code("slot=a,,b") == "bad_slot")
        #expect(code("slot=a%2Fb") == "bad_slot")
        #expect(code("slot=" + String(repeating: "x", count: SlotName.maxBytes + 1)) == "bad_slot")
        #expect(code("slot=a&slot=b,a") == "duplicate_slot")
        #expect(code("slot=reset&slot=a") == "reserved_slot")
        #expect(code("slot=close") == "reserved_slot")
        #expect(code("slot=reset", sse: false) == nil, "WebSocket and history messages name the slot in a member")
    }

    @Test func theLimitCountsSlotsNotParameters() {
        let sixteen = (0..<16).map { "s\($0)" }.joined(separator: ",")
        #expect(code("slot=" + sixteen) == nil)
        #expect(code("slot=" + sixteen + "&slot=s16") == "too_many_slots")
        #expect(code("slot=a,b,c,d", max: 3) == "too_many_slots")
        if case .failure(let refusal) = parse("slot=a,b,c,d", max: 3) {
            #expect(refusal.overLimit)
            #expect(refusal.detail.contains("at most 3"))
        }
        if case .failure(let refusal) = parse("slot=a,a") { #expect(!refusal.overLimit) }
    }

    @Test func routes() {
        #expect(WorkerRoute.match(method: .get, path: "/v1/stream") == .multiStream)
        #expect(WorkerRoute.match(method: .head, path: "/v1/stream") == .multiStream)
        #expect(WorkerRoute.match(method: .get, path: "/v1/events") == .multiHistory)
        #expect(WorkerRoute.match(method: .get, path: "/v1/ws") == .multiWebSocket)
        #expect(WorkerRoute.match(method: .head, path: "/v1/ws") == .methodNotAllowed(allow: WorkerRoute.webSocketAllow))
        #expect(WorkerRoute.match(method: .options, path: "/v1/stream") == .options(allow: WorkerRoute.readAllow))
        #expect(WorkerRoute.match(method: .options, path: "/v1/ws") == .options(allow: WorkerRoute.webSocketAllow))
        #expect(WorkerRoute.match(method: .post, path: "/v1/events") == .methodNotAllowed(allow: WorkerRoute.readAllow))
        #expect(WorkerRoute.match(method: .get, path: "/v1/stream/") == .notFound)
    }
}
