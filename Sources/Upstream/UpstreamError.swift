/// Why talking to Redis failed, with a message that names the endpoint and the cause.
public struct UpstreamError: Error, CustomStringConvertible {
    public enum Kind: Sendable {
        case unreachable     // refused, unreachable, connection lost or closed
        case authentication  // wrong password / user, or a password is needed
        case protocolError   // a reply hiredis could not parse, or one this code did not expect
        case timeout         // no answer within --upstream-timeout
        case server          // Redis answered an error
        case noStreams       // Redis older than 5.0
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
