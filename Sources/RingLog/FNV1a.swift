/// FNV-1a, 64 bits: the hash of a slot name wherever a table is probed by name (the log's
/// slot directory, the supervisor's admission table). Not for secrets; fast on short names.
public enum FNV1a {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x100_0000_01b3

    /// Concrete, not generic over `Sequence`: the loop must compile to the byte loop in
    /// every caller's module (a generic one was 5x slower where it was not specialized).
    @inlinable
    public static func hash64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = offsetBasis
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* prime }
        return hash
    }

    @inlinable
    public static func hash64(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash64($0) }
    }
}
