/// One event to publish, validated by the ingest exactly as single-host.
public struct PublishEvent: Sendable {
    public var slot: [UInt8]
    public var type: [UInt8]
    public var data: [UInt8]

    public init(slot: [UInt8], type: [UInt8], data: [UInt8]) {
        self.slot = slot
        self.type = type
        self.data = data
    }
}

/// One POST (one event) or one NDJSON batch: never split across script calls, so a batch is
/// all or nothing in the cluster.
public struct PublishJob: Sendable {
    public var token: UInt64
    public var events: [PublishEvent]
    public var timeMilliseconds: UInt64

    public init(token: UInt64, events: [PublishEvent], timeMilliseconds: UInt64) {
        self.token = token
        self.events = events
        self.timeMilliseconds = timeMilliseconds
        bytes = events.reduce(0) { $0 + $1.slot.count + $1.type.count + $1.data.count }
    }

    /// The event bytes the job holds while it waits for Redis (counted against `maxQueuedBytes`).
    public let bytes: Int
}

public enum PublishOutcome: Sendable, Equatable {
    /// Seqs `firstSeq ..< firstSeq + events.count`, in the link's epoch.
    case appended(firstSeq: UInt64)
    /// Not connected, connection failed, or no answer within the timeout (the script may still
    /// have run in that last case: a timeout is ambiguous).
    case unavailable(String)
    /// `WAIT N` answered fewer replicas (the events are in the primary and may be delivered).
    case notReplicated(String)
    /// The script's EPOCH error: nothing written (nil: Redis has no epoch, it was wiped).
    case epochChanged(clusterEpoch: UInt32?)
}

/// Every submitted job gets exactly one.
public struct PublishCompletion: Sendable {
    public var token: UInt64
    public var outcome: PublishOutcome
    /// From `submit` to Redis's answer (or to the failure).
    public var roundTripNanoseconds: UInt64
    /// `.appended`: the stream id of the last entry of the script call that carried the job
    /// (at or after the job's own entries). A host has applied the job once its cursor reached
    /// it: the seq alone cannot say so, since after a fork of the history a seq at or below
    /// the head may name another event.
    public var lastStreamID: StreamID?

    public init(token: UInt64, outcome: PublishOutcome, roundTripNanoseconds: UInt64, lastStreamID: StreamID? = nil) {
        self.token = token
        self.outcome = outcome
        self.roundTripNanoseconds = roundTripNanoseconds
        self.lastStreamID = lastStreamID
    }
}

public struct UpstreamSettings: Sendable {
    public var url: UpstreamURL
    public var keys: ClusterKeys
    /// The cluster epoch this host's log holds; the script refuses to publish under another.
    public var epoch: UInt32
    /// The last stream id the local log applied: the tail reads after it.
    public var cursor: StreamID
    public var retain: Int
    public var timeoutNanoseconds: UInt64
    public var waitReplicas: Int
    public var maxQueuedEvents: Int
    public var tailBatch: Int
    public var hostName: String
    /// Event bytes submitted and not yet answered, at most (the ingest passes
    /// `--max-pending-body-bytes`: these are request bodies it still holds).
    public var maxQueuedBytes: Int

    public init(url: UpstreamURL, keys: ClusterKeys, epoch: UInt32, cursor: StreamID, retain: Int,
                timeoutNanoseconds: UInt64, waitReplicas: Int, maxQueuedEvents: Int, tailBatch: Int, hostName: String,
                maxQueuedBytes: Int = 64 << 20)
    {
        self.maxQueuedBytes = maxQueuedBytes
        self.url = url
        self.keys = keys
        self.epoch = epoch
        self.cursor = cursor
        self.retain = retain
        self.timeoutNanoseconds = timeoutNanoseconds
        self.waitReplicas = waitReplicas
        self.maxQueuedEvents = maxQueuedEvents
        self.tailBatch = tailBatch
        self.hostName = hostName
    }
}
