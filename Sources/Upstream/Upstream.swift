// Cluster mode's link to Redis Streams: see docs in README ("Cluster") and issue 12.
// (Being written: UpstreamURL, RedisConnection, ClusterScripts, UpstreamLink.)
