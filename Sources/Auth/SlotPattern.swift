/// One entry of a token's `slots` claim: an exact slot name, a prefix ending in `*`
/// (`news.*` matches `news.x`, `news.a.b`, not `news`), or `*` alone (every slot).
public struct SlotPattern: Sendable, Equatable {
    public let prefix: [UInt8]
    public let isPrefix: Bool

    public init(_ text: String) {
        var bytes = Array(text.utf8)
        if bytes.last == UInt8(ascii: "*") {
            bytes.removeLast()
            isPrefix = true
        } else {
            isPrefix = false
        }
        prefix = bytes
    }

    /// Whether `slot` (a valid slot name, so never containing `*`) is allowed by this pattern.
    public func matches(_ slot: some Collection<UInt8>) -> Bool {
        if isPrefix { return slot.count >= prefix.count && slot.starts(with: prefix) }
        return slot.count == prefix.count && slot.elementsEqual(prefix)
    }
}
