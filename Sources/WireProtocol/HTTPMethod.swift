#if canImport(Glibc)
import Glibc
#endif
/// A request method; the common ones as cases, anything else (a valid token) as `other`.
public enum HTTPMethod: Equatable, Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, options, patch
    case other(String)

    /// Maps a method token; methods are case-sensitive (RFC 9110 §9.1), so `get` is `other`.
    init(token: UnsafeRawBufferPointer) {
        switch token.count {
        case 3:
            if Self.matches(token, "GET") { self = .get; return }
            if Self.matches(token, "PUT") { self = .put; return }
        case 4:
            if Self.matches(token, "HEAD") { self = .head; return }
            if Self.matches(token, "POST") { self = .post; return }
        case 5:
            if Self.matches(token, "PATCH") { self = .patch; return }
        case 6:
            if Self.matches(token, "DELETE") { self = .delete; return }
        case 7:
            if Self.matches(token, "OPTIONS") { self = .options; return }
        default: break
        }
        self = .other(String(decoding: token, as: UTF8.self))
    }

    /// The method token as sent, e.g. `GET`.
    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .other(let s): s
        }
    }

    private static func matches(_ token: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        token.count == s.utf8CodeUnitCount && memcmp(token.baseAddress!, s.utf8Start, token.count) == 0
    }
}
