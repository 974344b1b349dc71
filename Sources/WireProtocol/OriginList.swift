/// The origins (`scheme://host[:port]`) a setting admits: `--cors-origins`, `--ws-origins`.
///
/// Browsers send `Origin` serialised in lower case without a path; entries are stored in
/// lower case and compared ASCII case-insensitively, so `http://App.example` matches too.
public enum OriginList: Sendable, Equatable {
    /// Every origin (`*`).
    case any
    /// Exactly these origins; empty (`none`) admits no origin.
    case only([String])

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses `*`, `none`, or a comma-separated list of origins such as
    /// `https://app.example,http://localhost:3000`.
    public init(parsing text: String) throws(ParseError) {
        let trimmed = text.trimmingSpaces
        if trimmed == "*" { self = .any; return }
        if trimmed == "none" { self = .only([]); return }
        var origins: [String] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let origin = String(part).trimmingSpaces
            guard let problem = Self.problem(origin) else {
                let lower = String(decoding: origin.utf8.map(ASCII.lower), as: UTF8.self)
                if !origins.contains(lower) { origins.append(lower) }
                continue
            }
            throw ParseError(description: "\(origin.isEmpty ? "an empty entry" : "'\(origin)'"): \(problem); expected *, none, or origins like https://app.example,http://localhost:3000")
        }
        self = .only(origins)
    }

    /// Whether a request's `Origin` value is admitted.
    public func contains(_ origin: String) -> Bool {
        switch self {
        case .any: return true
        case .only(let origins): return origins.contains { ASCII.equalsIgnoringCase($0.utf8, origin.utf8) }
        }
    }

    /// The value that reproduces this list in a child's flags.
    public var flagValue: String {
        switch self {
        case .any: return "*"
        case .only(let origins): return origins.isEmpty ? "none" : origins.joined(separator: ",")
        }
    }

    /// Why `origin` is not a serialised origin, or nil when it is one.
    static func problem(_ origin: String) -> String? {
        let bytes = Array(origin.utf8)
        let scheme: Int
        if bytes.starts(with: Array("http://".utf8)) {
            scheme = 7
        } else if bytes.starts(with: Array("https://".utf8)) {
            scheme = 8
        } else {
            return "an origin starts with http:// or https://"
        }
        let rest = bytes[scheme...]
        var host = rest[...]
        var port: ArraySlice<UInt8>? = nil
        if rest.first == 0x5B {   // [IPv6]
            guard let close = rest.firstIndex(of: 0x5D) else { return "an IPv6 host needs its closing ]" }
            host = rest[...close]
            let after = rest[(close + 1)...]
            if !after.isEmpty {
                guard after.first == ASCII.colon else { return "only a scheme, a host and a port; no path, query or spaces" }
                port = after.dropFirst()
            }
        } else if let colon = rest.firstIndex(of: ASCII.colon) {
            host = rest[..<colon]
            port = rest[(colon + 1)...]
        }
        guard host.count > (host.first == 0x5B ? 2 : 0) else { return "no host" }
        if let port {
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(ASCII.isDigit),
                  let n = Int(String(decoding: port, as: UTF8.self)), (1...65535).contains(n) else {
                return "the port must be a number from 1 to 65535"
            }
        }
        let hostByte: (UInt8) -> Bool = { b in
            ASCII.isDigit(b) || (ASCII.lower(b) >= 0x61 && ASCII.lower(b) <= 0x7A) || b == ASCII.minus || b == ASCII.dot
                || b == ASCII.colon || b == 0x5B || b == 0x5D
        }
        let inner = host.first == 0x5B ? host.dropFirst().dropLast() : host
        guard inner.allSatisfy({ hostByte($0) && $0 != 0x5B && $0 != 0x5D && (host.first == 0x5B || $0 != ASCII.colon) }) else {
            return "only a scheme, a host and a port; no path, query or spaces"
        }
        return nil
    }
}

extension String {
    var trimmingSpaces: String {
        let u = Array(utf8)
        guard let first = u.firstIndex(where: { $0 != ASCII.space && $0 != ASCII.tab }),
              let last = u.lastIndex(where: { $0 != ASCII.space && $0 != ASCII.tab }) else { return "" }
        return String(decoding: u[first...last], as: UTF8.self)
    }
}
