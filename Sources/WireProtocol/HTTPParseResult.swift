/// What one call of `HTTPRequestParser.parse` produced.
public enum HTTPParseResult: Sendable {
    /// The bytes ended inside a request; everything was consumed and kept.
    case needMore
    /// A complete request; bytes after it were left unconsumed.
    case request(HTTPRequest)
    /// The request is malformed or over a limit; the parser is dead.
    case error(HTTPParseError)
}
