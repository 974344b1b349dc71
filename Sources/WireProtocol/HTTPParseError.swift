/// Why a request could not be parsed, with the response status and error code to send.
///
/// After any error the parser is dead: the connection answers with this error and closes.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The response status: 400, 411, 413, 414, 431, 501 or 505.
    public var status: Int
    /// The `error` field of the JSON body, e.g. `bad_request`.
    public var code: String
    /// A human-readable explanation for the `detail` field.
    public var detail: String

    /// Creates an error with the status, code and detail to send.
    public init(status: Int, code: String, detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    /// `STATUS code: detail`, for logs.
    public var description: String { "\(status) \(code): \(detail)" }

    /// 408 `request_timeout`: the head was not complete within the header timeout.
    ///
    /// The parser never produces it (it has no clock); the event loop sends it.
    public static let requestTimeout = HTTPParseError(
        status: 408, code: "request_timeout", detail: "request head not complete in time")

    static func badRequest(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 400, code: "bad_request", detail: detail)
    }
    static func lengthRequired(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 411, code: "length_required", detail: detail)
    }
    static func payloadTooLarge(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 413, code: "payload_too_large", detail: detail)
    }
    static func uriTooLong(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 414, code: "uri_too_long", detail: detail)
    }
    static func headersTooLarge(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 431, code: "headers_too_large", detail: detail)
    }
    static func notImplemented(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 501, code: "not_implemented", detail: detail)
    }
    static func versionNotSupported(_ detail: String) -> HTTPParseError {
        HTTPParseError(status: 505, code: "http_version_not_supported", detail: detail)
    }
}
