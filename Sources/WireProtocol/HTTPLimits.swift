/// Size limits of one request, enforced while parsing so memory per connection stays bounded.
public struct HTTPLimits: Equatable, Sendable {
    /// The longest request line (method, target, version), without its line end; over → 414.
    public var maxRequestLineBytes: Int
    /// The largest head (request line, headers, the blank line); over → 431.
    public var maxHeaderBytes: Int
    /// The most header fields; over → 431.
    public var maxHeaderCount: Int
    /// The largest body, decoded (after chunked framing); over → 413.
    public var maxBodyBytes: Int
    /// The largest chunk-size line including extensions; over → 400.
    public var maxChunkLineBytes: Int
    /// The largest trailer section of a chunked body; over → 431.
    public var maxTrailerBytes: Int

    /// Creates limits; only the body limit has no default because it differs per listener.
    public init(maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 16384, maxHeaderCount: Int = 100,
                maxBodyBytes: Int, maxChunkLineBytes: Int = 1024, maxTrailerBytes: Int = 8192) {
        precondition(maxRequestLineBytes > 0 && maxHeaderBytes > 0 && maxHeaderCount >= 0 && maxBodyBytes >= 0)
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
        self.maxTrailerBytes = maxTrailerBytes
    }
}
