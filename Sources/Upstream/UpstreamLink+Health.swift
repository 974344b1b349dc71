extension UpstreamLink {
    /// True while the publisher's connection works: then `clusterHeadSeq` is current (polled
    /// about twice a second), whatever the tail's connection is doing. A host is stalled only
    /// when Redis says the cluster is ahead *now*.
    public var clusterHeadIsCurrent: Bool { monitor.withLock { publisherUp } }
}
