/// Standard base64 (RFC 4648 §4, with padding), for the handshake's key and accept values.
enum WebSocketBase64 {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Encodes `bytes` with `=` padding.
    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        let table = alphabet.utf8Start
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(v >> 18 & 63)])
            out.append(table[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? table[Int(v >> 6 & 63)] : ASCII.equals)
            out.append(i + 2 < bytes.count ? table[Int(v & 63)] : ASCII.equals)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The 6-bit value of a base64 digit, or `nil`.
    static func value(of b: UInt8) -> UInt8? {
        switch b {
        case 0x41...0x5A: return b &- 0x41
        case 0x61...0x7A: return b &- 0x61 &+ 26
        case 0x30...0x39: return b &- 0x30 &+ 52
        case 0x2B: return 62
        case 0x2F: return 63
        default: return nil
        }
    }
}
