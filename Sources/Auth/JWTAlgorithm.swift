/// The JWS algorithms Ringgate verifies (RFC 7518 §3). `none` is not one of them, ever.
public enum JWTAlgorithm: String, Sendable, CaseIterable, Hashable, Comparable {
    case hs256 = "HS256"
    case rs256 = "RS256"
    case es256 = "ES256"

    /// Parses `--jwt-algorithms` (`HS256,ES256`); the message says what was wrong.
    public static func parseList(_ text: String) -> Result<[JWTAlgorithm], JWTConfigError> {
        var out: [JWTAlgorithm] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingSpaces
            if name.lowercased() == "none" {
                return .failure(JWTConfigError("--jwt-algorithms: none is never allowed (it would accept unsigned tokens)"))
            }
            guard let alg = JWTAlgorithm(rawValue: name.uppercased()) else {
                return .failure(JWTConfigError("--jwt-algorithms: unknown algorithm \"\(name)\"; expected HS256, RS256 or ES256"))
            }
            if !out.contains(alg) { out.append(alg) }
        }
        return .success(out)
    }

    public static func < (a: JWTAlgorithm, b: JWTAlgorithm) -> Bool { a.rawValue < b.rawValue }
}

extension Substring {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}

/// A key file, key or flag that cannot be used; the message names the file and the fault
/// (never the key bytes). `ringgate serve` exits 64 with it.
public struct JWTConfigError: Error, Equatable, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
