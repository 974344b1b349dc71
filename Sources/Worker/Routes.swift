import WireProtocol

/// The subscriber listener's routes.
enum WorkerRoute: Equatable {
    case history(slot: String)
    case stream(slot: String)
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
        guard leaf == "events" || leaf == "stream" else { return .notFound }
        guard method == .get || method == .head else { return .methodNotAllowed(allow: "GET, HEAD") }
        guard SlotName.isValid(slot) else { return .badSlot(slot) }
        return leaf == "events" ? .history(slot: slot) : .stream(slot: slot)
    }
}
