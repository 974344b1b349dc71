import WireProtocol

/// The slots a stream or history pull of several slots names in its query: `slot` repeated,
/// or a comma list (`?slot=a&slot=b`, `?slot=a,b`), in the order given.
struct StreamSlots: Equatable {
    var names: [String]

    /// Why a list is refused (400, and nothing is opened).
    struct Refusal: Error, Equatable {
        var code: String
        var detail: String
        /// Counted in `ringgate_stream_slot_limit_total`.
        var overLimit: Bool { code == "too_many_slots" }
    }

    /// On an SSE stream of several slots an event of the default type is `event: <slot>`, so
    /// these slots could not be told from the stream's own control events.
    static let reservedForSSE = EventType.reserved

    /// The named slots, checked: at least one, each a valid name, none twice, at most `max`;
    /// `sse`: none of `reservedForSSE`.
    static func parse(query: [(String, String)], max: Int, sse: Bool) -> Result<StreamSlots, Refusal> {
        var names: [String] = []
        var seen: Set<String> = []
        for (key, value) in query where key == "slot" {
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let name = String(part)
                guard SlotName.isValid(name) else {
                    return .failure(Refusal(code: "bad_slot",
                                            detail: "slot names are 1-\(SlotName.maxBytes) bytes of [A-Za-z0-9._:-]"))
                }
                guard seen.insert(name).inserted else {
                    return .failure(Refusal(code: "duplicate_slot", detail: "slot \(name) is named twice"))
                }
                guard names.count < max else {
                    return .failure(Refusal(code: "too_many_slots",
                                            detail: "a stream may name at most \(max) slots (--max-slots-per-stream)"))
                }
                if sse && reservedForSSE.contains(name) {
                    return .failure(Refusal(code: "reserved_slot",
                                            detail: "slot \(name) cannot be on an SSE stream of several slots: its events would read as `event: \(name)`, a control event; use /v1/slots/\(name)/stream"))
                }
                names.append(name)
            }
        }
        guard !names.isEmpty else {
            return .failure(Refusal(code: "missing_slot", detail: "name the slots to read: ?slot=a&slot=b"))
        }
        return .success(StreamSlots(names: names))
    }
}
