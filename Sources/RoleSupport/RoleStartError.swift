/// Why a role could not start (a table it cannot map, a thread it cannot start); the
/// supervisor's child prints it and exits.
public struct RoleStartError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
