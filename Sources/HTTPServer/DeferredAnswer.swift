/// A request whose answer comes later (`HTTPEngine.deferAnswer`); stale once its connection
/// closed or its table entry was reused.
///
/// `generation` is the table entry's generation when the request was deferred (a reused entry
/// has another), `ordinal` the request's place among the connection's deferred answers.
public struct DeferredAnswer: Sendable, Hashable {
    public let connection: Int32
    let generation: UInt32
    let ordinal: UInt32
}

/// One answer of a connection held back because an earlier request's deferred answer has not
/// been given: answers leave in request order.
enum HeldAnswer {
    /// Not given yet. `closes`: the connection was to close after this answer when it was
    /// deferred (its request or an earlier one said so), what `answerError` says in its head.
    case waiting(ordinal: UInt32, closes: Bool)
    /// Given (or answered at once behind a waiting one): its bytes, sent once those ahead are.
    case ready([UInt8])
}
