import IO

extension GatewayConfig {
    /// The backend's sizes for one role's loop: the roles share the ring and the buffer count
    /// and differ in the size of a receive buffer (the ingest reads NDJSON batches).
    public func ioConfiguration(receiveBufferBytes: Int) -> IOBackendConfiguration {
        var io = IOBackendConfiguration()
        io.entries = ringEntries
        io.receiveBufferCount = recvBuffers
        io.receiveBufferBytes = receiveBufferBytes
        return io
    }
}
