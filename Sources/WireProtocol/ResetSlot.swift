/// What a reset says of its slot. Streams of one slot say nothing (the v1 shape); on a stream
/// of several slots a reset names the slot that lost events, or `null` when the loss concerns
/// the whole stream (a resume id from another log, a cluster gap whose events' slots this host
/// cannot know).
public enum ResetSlot: Sendable, Equatable {
    case omitted
    case named([UInt8])
    case wholeStream
}
