import WireProtocol

/// Parses the input whole and split at points taken from its first two bytes, re-feeding
/// unconsumed bytes as the event loop does; the outcomes must be equal, and no input may
/// crash the parser.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let stream = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    let a = Int(data[0]) * stream.count / 256
    let b = a + Int(data[1]) * (stream.count - a) / 256
    let whole = parse([stream])
    let split = parse([UnsafeRawBufferPointer(rebasing: stream[0..<a]),
                       UnsafeRawBufferPointer(rebasing: stream[a..<b]),
                       UnsafeRawBufferPointer(rebasing: stream[b...])])
    if whole != split {
        fatalError("split at \(a), \(b) changed the outcomes: \(whole) vs \(split)")
    }
    return 0
}

/// Small limits so that every limit is reachable by short inputs.
let limits = HTTPLimits(maxRequestLineBytes: 64, maxHeaderBytes: 256, maxHeaderCount: 8, maxBodyBytes: 128,
                        maxChunkLineBytes: 16, maxTrailerBytes: 64)

/// A comparable outcome: each request's method, target, headers and body, or the error.
func parse(_ chunks: [UnsafeRawBufferPointer]) -> [String] {
    var parser = HTTPRequestParser(limits: limits)
    var outcomes: [String] = []
    var pending: [UInt8] = []
    for chunk in chunks {
        pending += chunk
        var offset = 0
        while offset < pending.count {
            let (consumed, result) = pending.withUnsafeBytes {
                parser.parse(UnsafeRawBufferPointer(rebasing: $0[offset...]))
            }
            precondition(consumed >= 0 && consumed <= pending.count - offset, "consumed out of range")
            offset += consumed
            switch result {
            case .needMore:
                precondition(offset == pending.count, "needMore with bytes left")
            case .head:
                preconditionFailure("head reported by a parser that was not asked to")
            case .request(let r):
                outcomes.append("\(r.method) \(r.target) \(r.path) \(r.query.map { "\($0.0)=\($0.1)" }) "
                    + "\(r.version) \(r.keepAlive) \(r.headers.map { "\($0.name):\($0.value)" }) \(r.body)")
                precondition(r.body.count <= limits.maxBodyBytes, "body over the limit")
                _ = WebSocketHandshake.accept(r)
            case .error(let e):
                outcomes.append("error \(e)")
                return outcomes
            }
            if consumed == 0, case .needMore = result { break }
        }
        pending.removeFirst(offset)
    }
    return outcomes
}
