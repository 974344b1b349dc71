/// What the subscriber listener tells browsers about cross-origin reads (`--cors-origins`).
///
/// A page on another origin may read a response only when it names that page's origin (or
/// `*`) in `Access-Control-Allow-Origin`. With `*` every response says so; with a list, a
/// response echoes the request's `Origin` when it is listed and always carries
/// `Vary: Origin`, since its headers then depend on that request header (caches must know).
/// Preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered from the same
/// list. Values are fixed strings or an `Origin` value the parser already checked for CR/LF.
public struct CORSPolicy: Sendable, Equatable {
    public let origins: OriginList
    /// How long a browser may cache a preflight answer.
    public let maxAgeSeconds: Int

    public static let allowMethods = "GET, HEAD, OPTIONS"
    /// What an EventSource or a history `fetch` may send: resuming, tokens, cache control.
    public static let allowHeaders = "Last-Event-ID, Authorization, Cache-Control"
    public static let exposeHeaders = "Content-Type"

    static let anyOriginHeaders: [(String, String)] = [
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", exposeHeaders),
    ]
    static let varyOnly: [(String, String)] = [("Vary", "Origin")]

    public init(origins: OriginList, maxAgeSeconds: Int = 600) {
        self.origins = origins
        self.maxAgeSeconds = maxAgeSeconds
    }

    /// Whether a request from `origin` (its `Origin` header; nil = not from a page) may be read.
    public func allows(origin: String?) -> Bool {
        guard let origin else { return true }
        return origins.contains(origin)
    }

    /// Headers for a response (not a preflight) to a request whose `Origin` header is `origin`.
    public func responseHeaders(origin: String?) -> [(String, String)] {
        switch origins {
        case .any:
            return Self.anyOriginHeaders
        case .only:
            guard let origin, origins.contains(origin) else { return Self.varyOnly }
            return [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", Self.exposeHeaders),
                    ("Vary", "Origin")]
        }
    }

    /// Headers for a `204` answer to a preflight from `origin`; nil when `origin` is not
    /// admitted (then the caller refuses it, with `Vary: Origin`). `methods`: the route's own
    /// (`GET, OPTIONS` for a WebSocket route, which has no HEAD).
    public func preflightHeaders(origin: String?, methods: String = allowMethods) -> [(String, String)]? {
        guard allows(origin: origin) else { return nil }
        var headers: [(String, String)]
        switch origins {
        case .any:
            headers = [("Access-Control-Allow-Origin", "*")]
        case .only:
            headers = origin.map { [("Access-Control-Allow-Origin", $0), ("Vary", "Origin")] } ?? Self.varyOnly
        }
        headers += [("Access-Control-Allow-Methods", methods),
                    ("Access-Control-Allow-Headers", Self.allowHeaders),
                    ("Access-Control-Max-Age", String(maxAgeSeconds))]
        return headers
    }
}
