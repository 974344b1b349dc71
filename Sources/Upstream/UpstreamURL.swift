/// Where the cluster's Redis is and which stream it keeps: `--upstream`.
///
/// `redis://[user:password@]HOST[:PORT][/DB]?key=NAME`. The port defaults to 6379 and the db to 0;
/// `key` is required, since every host of one cluster must name the same stream.
public struct UpstreamURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var db: Int
    public var user: String?
    public var password: String?
    public var key: String

    public static let defaultPort = 6379
    public static let keyBytesMax = 128

    public init(host: String, port: Int, db: Int, user: String?, password: String?, key: String) {
        self.host = host
        self.port = port
        self.db = db
        self.user = user
        self.password = password
        self.key = key
    }

    /// Parses `text`. `passwordFromEnvironment` (RINGGATE_UPSTREAM_PASSWORD) is used when the URL
    /// has no password; one in the URL wins. Errors name the part that is wrong and never
    /// repeat a password.
    public static func parse(_ text: String, passwordFromEnvironment: String?) throws(UpstreamURLError) -> UpstreamURL {
        let scheme = "redis://"
        guard text.hasPrefix(scheme) else {
            let shown = text.firstIndex(of: ":").map { String(text[..<$0]) } ?? text
            throw UpstreamURLError("--upstream: the scheme must be redis:// (got '\(shown.isEmpty ? text : shown)')")
        }
        var rest = text.dropFirst(scheme.count)

        // A '#' in a password must be percent-encoded (%23), as in any URL.
        if rest.contains("#") { throw UpstreamURLError("--upstream: a fragment (#...) is not allowed") }
        // The user-info ends at its '@': a '/' or '?' before it is part of a password that was
        // not percent-encoded. Say so without echoing any of it (a "bad port" message would).
        if let at = rest.lastIndex(of: "@"), rest[..<at].contains(where: { $0 == "/" || $0 == "?" }) {
            throw UpstreamURLError("--upstream: the user or password contains '/' or '?': percent-encode them (%2F, %3F), or pass the password in RINGGATE_UPSTREAM_PASSWORD")
        }
        var query = Substring("")
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }

        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let u = userInfo[..<colon]
                let p = userInfo[userInfo.index(after: colon)...]
                if !u.isEmpty { user = try percentDecoded(u, part: "user") }
                if !p.isEmpty { password = try percentDecoded(p, part: "password") }
            } else if !userInfo.isEmpty {
                user = try percentDecoded(userInfo, part: "user")
            }
        }

        let (host, port) = try hostAndPort(rest)
        let db = try database(path)
        let key = try streamKey(query)

        if password == nil, let env = passwordFromEnvironment, !env.isEmpty { password = env }
        if user != nil && password == nil {
            throw UpstreamURLError("--upstream: user '\(user!)' is given without a password (put it in the URL or RINGGATE_UPSTREAM_PASSWORD)")
        }
        return UpstreamURL(host: host, port: port, db: db, user: user, password: password, key: key)
    }

    /// The URL with the password replaced by `***`, for logs and error messages.
    public var redacted: String {
        var text = "redis://"
        if user != nil || password != nil {
            text += user.map(Self.percentEncoded) ?? ""
            if password != nil { text += ":***" }
            text += "@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(db)?key=\(key)"
        return text
    }

    /// `host:port` as error messages show it.
    public var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private static func hostAndPort(_ text: Substring) throws(UpstreamURLError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw UpstreamURLError("--upstream: an IPv6 host must end with ']' (got '\(text)')")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw UpstreamURLError("--upstream: expected ':PORT' after the IPv6 host (got '\(after)')")
                }
                portText = after.dropFirst()
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw UpstreamURLError("--upstream: invalid IPv6 host '[\(host)]'")
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else { throw UpstreamURLError("--upstream: missing host (redis://HOST:PORT/DB?key=NAME)") }
        if !text.hasPrefix("[") {
            guard host.utf8.allSatisfy({ isHostByte($0) }) else {
                throw UpstreamURLError("--upstream: invalid host '\(host)'")
            }
        }
        guard let portText else { return (String(host), defaultPort) }
        guard !portText.isEmpty, portText.utf8.count <= 5, portText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let port = Int(portText), (1...65535).contains(port)
        else {
            throw UpstreamURLError("--upstream: bad port '\(portText)' (1-65535)")
        }
        return (String(host), port)
    }

    private static func database(_ text: Substring) throws(UpstreamURLError) -> Int {
        if text.isEmpty { return 0 }
        guard text.utf8.count <= 9, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let db = Int(text) else {
            throw UpstreamURLError("--upstream: bad db '\(text)' (a number, e.g. /0)")
        }
        return db
    }

    private static func streamKey(_ query: Substring) throws(UpstreamURLError) -> String {
        var key: String?
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let eq = pair.firstIndex(of: "=") {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            guard name == "key" else {
                throw UpstreamURLError("--upstream: unknown query parameter '\(name)' (only key=NAME)")
            }
            guard key == nil else { throw UpstreamURLError("--upstream: key= is given twice") }
            guard !value.isEmpty else { throw UpstreamURLError("--upstream: key= is empty") }
            guard value.utf8.count <= keyBytesMax else {
                throw UpstreamURLError("--upstream: key is \(value.utf8.count) bytes; at most \(keyBytesMax)")
            }
            guard value.utf8.allSatisfy(isKeyByte) else {
                throw UpstreamURLError("--upstream: invalid key '\(value)' (only A-Z a-z 0-9 . _ : -)")
            }
            key = String(value)
        }
        guard let key else { throw UpstreamURLError("--upstream: missing ?key=NAME (the cluster's stream)") }
        return key
    }

    private static func percentDecoded(_ text: Substring, part: String) throws(UpstreamURLError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var i = text.utf8.startIndex
        let utf8 = text.utf8
        while i < utf8.endIndex {
            let b = utf8[i]
            if b == UInt8(ascii: "%") {
                let h1 = utf8.index(after: i)
                guard h1 < utf8.endIndex, utf8.index(after: h1) < utf8.endIndex,
                      let hi = hexValue(utf8[h1]), let lo = hexValue(utf8[utf8.index(after: h1)])
                else {
                    throw UpstreamURLError("--upstream: invalid percent-encoding in the \(part) (use %XX with two hex digits)")
                }
                bytes.append(hi << 4 | lo)
                i = utf8.index(i, offsetBy: 3)
            } else {
                bytes.append(b)
                i = utf8.index(after: i)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw UpstreamURLError("--upstream: the \(part) is not valid UTF-8 once percent-decoded")
        }
        return decoded
    }

    private static func percentEncoded(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            if isKeyByte(b) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(digits[Int(b & 15)]))
            }
        }
        return out
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: b - 48
        case 65...70: b - 55
        case 97...102: b - 87
        default: nil
        }
    }

    private static func isKeyByte(_ b: UInt8) -> Bool {
        switch b {
        case 65...90, 97...122, 48...57, UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"): true
        default: false
        }
    }

    private static func isHostByte(_ b: UInt8) -> Bool {
        switch b {
        case 65...90, 97...122, 48...57, UInt8(ascii: "."), UInt8(ascii: "-"): true
        default: false
        }
    }
}

/// What is wrong with an `--upstream` URL, in one line a user can act on.
public struct UpstreamURLError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
