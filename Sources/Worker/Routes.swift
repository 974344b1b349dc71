import WireProtocol

/// The subscriber listener's routes.
enum WorkerRoute: Equatable {
    case history(slot: String)
    case stream(slot: String)
    case webSocket(slot: String)
    case health
    case ready
    case metrics
    case methodNotAllowed(allow: String)
    case badSlot(String)
    case notFound

    static func match(method: HTTPMethod, path: String) -> WorkerRoute {
        switch path {
        case "/healthz": return method == .get || method == .head ? .health : .methodNotAllowed(allow: "GET, HEAD")
        case "/readyz": return method == .get || method == .head ? .ready : .methodNotAllowed(allow: "GET, HEAD")
        case "/metrics": return method == .get || method == .head ? .metrics : .methodNotAllowed(allow: "GET, HEAD")
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
            guard method == .get || method == .head else { return .methodNotAllowed(allow: "GET, HEAD") }
        case "ws":
            guard method == .get else { return .methodNotAllowed(allow: "GET") }
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
