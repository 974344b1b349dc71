/// The JSON body of every error response: `{"error":CODE,"detail":TEXT}`.
public enum ErrorBody {
    /// Builds `{"error":…,"detail":…}` with both strings escaped.
    public static func json(error: String, detail: String) -> [UInt8] {
        var w = JSONWriter(capacity: 32 + error.utf8.count + detail.utf8.count)
        w.appendRaw("{\"error\":")
        w.appendString(error)
        w.appendRaw(",\"detail\":")
        w.appendString(detail)
        w.appendRaw("}")
        return w.bytes
    }
}
