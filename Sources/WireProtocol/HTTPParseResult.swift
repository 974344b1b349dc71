/// What one call of `HTTPRequestParser.parse` produced.
public enum HTTPParseResult: Sendable {
    /// The bytes ended inside a request; everything was consumed and kept.
    case needMore
    /// The head of a request whose body did not arrive with it (only from a parser made with
    /// `reportsHeadBeforeBody`): the caller may refuse it (401, 413…) before reading the body.
    /// `contentLength` is nil for a chunked body. The same request, with its body, follows as
    /// `.request` once the body is complete.
    case head(HTTPRequest, contentLength: Int?)
    /// A complete request; bytes after it were left unconsumed.
    case request(HTTPRequest)
    /// The request is malformed or over a limit; the parser is dead.
    case error(HTTPParseError)
}
