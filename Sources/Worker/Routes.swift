import WireProtocol

/// The subscriber listener's routes.
enum WorkerRoute: Equatable {
    case history(slot: String)
    case stream(slot: String)
    case webSocket(slot: String)
    case health
    case ready
    case metrics
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
        case .webSocket, .notFound: false
        default: true
        }
    }

    static let readAllow = "GET, HEAD, OPTIONS"
    static let webSocketAllow = "GET, OPTIONS"

    static func match(method: HTTPMethod, path: String) -> WorkerRoute {
        func read(_ route: WorkerRoute) -> WorkerRoute {
            switch method {
            case .get, .head: route
            case .options: .options(allow: readAllow)
            default: .methodNotAllowed(allow: readAllow)
            }
        }
        switch path {
        case "/healthz": return read(.health)
        case "/readyz": return read(.ready)
        case "/metrics": return read(.metrics)
        default: break
        }
        let prefix = "/v1/slots/"
        guard path.hasPrefix(prefix) else { return .notFound }
        let rest = path.dropFirst(prefix.count)
        guard let slash = rest.lastIndex(of: "/") else { return .notFound }
        let slot = String(rest[..<slash])
        let leaf = rest[rest.index(after: slash)...]
        switch leaf {
        case "events", "stream":
            if method == .options { return .options(allow: readAllow) }
            guard method == .get || method == .head else { return .methodNotAllowed(allow: readAllow) }
        case "ws":
            if method == .options { return .options(allow: webSocketAllow) }
            guard method == .get else { return .methodNotAllowed(allow: webSocketAllow) }
        default:
            return .notFound
        }
        guard SlotName.isValid(slot) else { return .badSlot(slot) }
        switch leaf {
        case "events": return .history(slot: slot)
        case "stream": return .stream(slot: slot)
        default: return .webSocket(slot: slot)
        }
    }
}
