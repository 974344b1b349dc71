/// Close status codes (RFC 6455 §7.4) that Ringgate sends or checks.
public enum WebSocketCloseCode {
    /// Normal closure.
    public static let normal: UInt16 = 1000
    /// The endpoint is going away (server shutdown).
    public static let goingAway: UInt16 = 1001
    /// A frame broke the protocol.
    public static let protocolError: UInt16 = 1002
    /// A data type the endpoint does not accept.
    public static let unsupportedData: UInt16 = 1003
    /// A text message or close reason that is not valid UTF-8.
    public static let invalidPayload: UInt16 = 1007
    /// A message that breaks the endpoint's policy.
    public static let policyViolation: UInt16 = 1008
    /// A message over the size limit.
    public static let messageTooBig: UInt16 = 1009
    /// An unexpected condition on the server.
    public static let internalError: UInt16 = 1011

    /// The stream's token expired (private-use range 4000-4999, RFC 6455 §7.4.2): unlike
    /// 1008, it tells a client to fetch a fresh token and reconnect, not to give up.
    public static let tokenExpired: UInt16 = 4001

    /// The largest close reason in bytes: a control payload is at most 125 bytes, 2 of them the code.
    public static let maxReasonBytes = 123

    /// Whether a peer may send `code` in a close frame.
    ///
    /// 1004, 1005, 1006 and 1015 are reserved for local use and never sent on the wire; codes
    /// below 1000, 1012–2999 (IANA-registered ones included, as most servers do) and 5000+
    /// are invalid.
    @inlinable
    public static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: return true
        default: return false
        }
    }
}
