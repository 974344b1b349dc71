/// What a submission was for, packed into io_uring's 64-bit `user_data`.
///
/// Layout: `op` (8 bits) | `generation` (24 bits) | `connection` (32 bits). The generation is
/// bumped each time a connection table entry is reused, so a late completion for a closed connection
/// is recognised and dropped instead of being applied to its successor.
public enum IOOperation: UInt8, Sendable {
    case accept = 1
    case recv
    case send
    case wake
    case tick
    case cancel
}

public struct UserData: Equatable, Sendable {
    public let operation: IOOperation?
    public let generation: UInt32
    public let connection: UInt32

    public static let generationMask: UInt32 = 0xFF_FFFF

    @inline(__always)
    public static func pack(_ operation: IOOperation, connection: UInt32 = 0, generation: UInt32 = 0) -> UInt64 {
        UInt64(operation.rawValue) << 56 | UInt64(generation & generationMask) << 32 | UInt64(connection)
    }

    @inline(__always)
    public init(_ raw: UInt64) {
        operation = IOOperation(rawValue: UInt8(truncatingIfNeeded: raw >> 56))
        generation = UInt32(truncatingIfNeeded: raw >> 32) & UserData.generationMask
        connection = UInt32(truncatingIfNeeded: raw)
    }
}
