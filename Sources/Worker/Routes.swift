import RoleSupport
import WireProtocol

/// The subscriber listener's routes.
enum WorkerRoute: Equatable {
    case history(slot: String)
    case stream(slot: String)
    case webSocket(slot: String)
    // MARK: SEVERAL SLOTS: the slots are named in the query (`?slot=a&slot=b`).
    case multiHistory
    case multiStream
    case multiWebSocket
    case health
    case ready
    case metrics
    // MARK: STATUS PAGE
    case statusPage
    case statusStream
    case openAPI
    /// `OPTIONS` on a known route: a CORS preflight (or a client asking what is allowed).
    case options(allow: String)
    case methodNotAllowed(allow: String)
    case badSlot(String)
    case notFound

    /// Whether an origin `--cors-origins` does not allow is counted as refused
    /// (`origin_rejected_total{check="cors"}`): not for a WebSocket handshake (browsers do not
    /// apply CORS to it; `--ws-origins` does that) nor for an unknown route (probes of random
    /// paths are not refusals). Every answer, a 404 included, carries the CORS headers.
    var answersWithCORS: Bool {
        switch self {
        case .webSocket, .multiWebSocket, .notFound: false
        default: true
        }
    }

    static let readAllow = "GET, HEAD, OPTIONS"
    static let webSocketAllow = "GET, OPTIONS"

    static func match(method: HTTPMethod, path: String) -> WorkerRoute {
        var path = path
        return path.withUTF8 { match(method: method, path: UnsafeRawBufferPointer($0)) }
    }

    static let statusPagePath = Array("/".utf8)
    static let statusStreamPath = Array("/v1/status/stream".utf8)
    static let openAPIPath = Array("/openapi.yaml".utf8)
    static let multiHistoryPath = Array("/v1/events".utf8)
    static let multiStreamPath = Array("/v1/stream".utf8)
    static let multiWebSocketPath = Array("/v1/ws".utf8)
    static let eventsLeaf = Array("events".utf8)
    static let streamLeaf = Array("stream".utf8)
    static let webSocketLeaf = Array("ws".utf8)

    static func match(method: HTTPMethod, path: UnsafeRawBufferPointer) -> WorkerRoute {
        func read(_ route: WorkerRoute) -> WorkerRoute {
            switch method {
            case .get, .head: route
            case .options: .options(allow: readAllow)
            default: .methodNotAllowed(allow: readAllow)
            }
        }
        if path.elementsEqual(GatewayPath.health) { return read(.health) }
        if path.elementsEqual(GatewayPath.ready) { return read(.ready) }
        if path.elementsEqual(GatewayPath.metrics) { return read(.metrics) }
        if path.elementsEqual(statusPagePath) { return read(.statusPage) }
        if path.elementsEqual(statusStreamPath) { return read(.statusStream) }
        if path.elementsEqual(openAPIPath) { return read(.openAPI) }
        if path.elementsEqual(multiHistoryPath) { return read(.multiHistory) }
        if path.elementsEqual(multiStreamPath) { return read(.multiStream) }
        if path.elementsEqual(multiWebSocketPath) {
            switch method {
            case .get: return .multiWebSocket
            case .options: return .options(allow: webSocketAllow)
            default: return .methodNotAllowed(allow: webSocketAllow)
            }
        }
        guard let (slotBytes, leaf) = GatewayPath.slotResource(path) else { return .notFound }
        let history = leaf.elementsEqual(eventsLeaf), stream = leaf.elementsEqual(streamLeaf)
        if history || stream {
            if method == .options { return .options(allow: readAllow) }
            guard method == .get || method == .head else { return .methodNotAllowed(allow: readAllow) }
        } else if leaf.elementsEqual(webSocketLeaf) {
            if method == .options { return .options(allow: webSocketAllow) }
            guard method == .get else { return .methodNotAllowed(allow: webSocketAllow) }
        } else {
            return .notFound
        }
        let slot = String(decoding: slotBytes, as: UTF8.self)
        guard SlotName.isValid(slotBytes) else { return .badSlot(slot) }
        if history { return .history(slot: slot) }
        return stream ? .stream(slot: slot) : .webSocket(slot: slot)
    }
}
