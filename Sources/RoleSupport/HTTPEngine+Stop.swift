import HTTPServer

extension HTTPEngine {
    /// The first steps of a role's stop, in this order: no new connection is accepted,
    /// `closeStream` ends each stream (a worker says goodbye to its subscribers), then
    /// keep-alive connections with no request in flight are closed.
    public func stopServing(closeStream: (Int32) -> Void = { _ in }) {
        stopAccepting()
        forEachStream(closeStream)
        closeIdleHTTP()
    }
}
