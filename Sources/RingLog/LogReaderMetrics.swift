extension LogReader {
    /// Slots currently live in the slot directory (for `/metrics`).
    public func liveSlotsAcquire() -> UInt64 { region.loadAcquire(LogDescriptor.liveSlotsOffset) }
}
