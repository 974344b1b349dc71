/// Where a subscriber's token may come from, in this order: `Authorization: Bearer …`
/// (WebSocket clients, services), the `--jwt-cookie` cookie, `?token=` (an EventSource on
/// another site, which can set neither header nor a cross-site cookie; the URL, token
/// included, ends up in proxies' access logs).
public enum BearerToken {
    /// The token of a request, from its `Authorization` header value, its `Cookie` header
    /// values and its decoded `token` query parameter; nil when none holds one.
    public static func find(authorization: String?, cookies: [String], cookieName: String?, query: String?) -> String? {
        if let authorization {
            let trimmed = authorization.drop(while: { $0 == " " })
            if trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " {
                let token = trimmed.dropFirst(7).trimmingSpaces
                if !token.isEmpty { return token }
            }
        }
        if let cookieName {
            for header in cookies {
                for pair in header.split(separator: ";") {
                    let p = pair.drop(while: { $0 == " " })
                    guard let eq = p.firstIndex(of: "="), p[..<eq] == cookieName[...] else { continue }
                    var value = p[p.index(after: eq)...].trimmingSpaces
                    if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                    if !value.isEmpty { return value }
                }
            }
        }
        if let query, !query.isEmpty { return query }
        return nil
    }
}
