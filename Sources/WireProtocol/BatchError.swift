/// Why an NDJSON batch was rejected, and on which line.
public struct BatchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The 1-based line number of the offending line (0 for the batch as a whole).
    public var line: Int
    /// What is wrong with it.
    public var reason: String

    /// Creates an error for a 1-based `line`.
    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    /// `line N: reason`, suitable for the `detail` of a `bad_batch` error.
    public var description: String { line > 0 ? "line \(line): \(reason)" : reason }
}
