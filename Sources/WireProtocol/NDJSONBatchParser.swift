/// Parses an NDJSON batch body: one `{"slot":…,"type":…,"data":…}` object per line.
///
/// Each non-blank line must be exactly one JSON object (strict RFC 8259, whitespace around
/// it allowed). `slot` (string) and `data` (any value) are required, `type` (string or
/// `null`) is optional, other keys are ignored, and a repeated key is an error. A string
/// `data` becomes its unescaped UTF-8; any other value is kept as its exact JSON text.
/// Blank lines (empty or only whitespace, `\n` or `\r\n` ends) are skipped. One bad line
/// fails the whole batch, so nothing of it is appended.
public enum NDJSONBatchParser {
    static let slotKey: [UInt8] = Array("slot".utf8)
    static let typeKey: [UInt8] = Array("type".utf8)
    static let dataKey: [UInt8] = Array("data".utf8)
    /// The deepest nesting of arrays and objects, counting the line's own object.
    public static let maxDepth = 64

    /// Parses `body` into items, in order; at most `maxEvents` of them.
    ///
    /// An empty batch (no non-blank line) parses to `[]`; the caller decides whether to
    /// accept it. When `validateNames` is set, slot names and event types are checked too.
    public static func parse(_ body: UnsafeRawBufferPointer, maxEvents: Int,
                             validateNames: Bool = false) -> Result<[BatchItem], BatchError> {
        var items: [BatchItem] = []
        var lineNumber = 0
        var start = 0
        let n = body.count
        while start < n {
            var end = start
            while end < n, body[end] != ASCII.lf { end += 1 }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start, body[lineEnd - 1] == ASCII.cr { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: body[start..<lineEnd])
            start = end + 1
            if line.allSatisfy(JSONScanner.isWhitespace) { continue }
            if items.count == maxEvents {
                return .failure(BatchError(line: lineNumber, reason: "more than \(maxEvents) events in the batch"))
            }
            switch parseLine(line, validateNames: validateNames) {
            case .success(let item): items.append(item)
            case .failure(let reason): return .failure(BatchError(line: lineNumber, reason: reason.message))
            }
        }
        return .success(items)
    }

    /// Parses `body` into items, in order; at most `maxEvents` of them.
    public static func parse(_ body: [UInt8], maxEvents: Int,
                             validateNames: Bool = false) -> Result<[BatchItem], BatchError> {
        body.withUnsafeBytes { parse($0, maxEvents: maxEvents, validateNames: validateNames) }
    }

    static func parseLine(_ line: UnsafeRawBufferPointer, validateNames: Bool) -> Result<BatchItem, JSONScanner.Failure> {
        guard UTF8Validator.isValid(line) else { return .failure(.init("not valid UTF-8")) }
        var scanner = JSONScanner(line)
        do {
            scanner.skipWhitespace()
            guard scanner.peek() == 0x7B else { throw JSONScanner.Failure("not a JSON object") }  // {
            scanner.position += 1
            var slot: [UInt8]?
            var type: [UInt8]??
            var data: [UInt8]?
            scanner.skipWhitespace()
            if scanner.peek() == 0x7D {  // }
                scanner.position += 1
            } else {
                while true {
                    scanner.skipWhitespace()
                    guard scanner.peek() == ASCII.quote else { throw JSONScanner.Failure("expected a key string") }
                    let key = try scanner.parseString()
                    scanner.skipWhitespace()
                    guard scanner.peek() == ASCII.colon else { throw JSONScanner.Failure("expected ':' after a key") }
                    scanner.position += 1
                    scanner.skipWhitespace()
                    switch key {
                    case _ where key == NDJSONBatchParser.slotKey:
                        guard slot == nil else { throw JSONScanner.Failure("duplicate key \"slot\"") }
                        guard scanner.peek() == ASCII.quote else { throw JSONScanner.Failure("\"slot\" must be a string") }
                        slot = try scanner.parseString()
                    case _ where key == NDJSONBatchParser.typeKey:
                        guard type == nil else { throw JSONScanner.Failure("duplicate key \"type\"") }
                        if scanner.peek() == ASCII.quote {
                            type = .some(try scanner.parseString())
                        } else if scanner.peek() == 0x6E {  // null means "no type"
                            try scanner.skipValue(depth: 1)
                            type = .some(nil)
                        } else {
                            throw JSONScanner.Failure("\"type\" must be a string")
                        }
                    case _ where key == NDJSONBatchParser.dataKey:
                        guard data == nil else { throw JSONScanner.Failure("duplicate key \"data\"") }
                        if scanner.peek() == ASCII.quote {
                            data = try scanner.parseString()
                        } else {
                            let valueStart = scanner.position
                            try scanner.skipValue(depth: 1)
                            data = Array(UnsafeRawBufferPointer(rebasing: line[valueStart..<scanner.position]))
                        }
                    default:
                        try scanner.skipValue(depth: 1)
                    }
                    scanner.skipWhitespace()
                    let b = scanner.peek()
                    scanner.position += 1
                    if b == ASCII.comma { continue }
                    if b == 0x7D { break }
                    throw JSONScanner.Failure("expected ',' or '}' in object")
                }
            }
            scanner.skipWhitespace()
            guard scanner.atEnd else { throw JSONScanner.Failure("trailing characters after the object") }
            guard let slot else { throw JSONScanner.Failure("missing \"slot\"") }
            guard let data else { throw JSONScanner.Failure("missing \"data\"") }
            let itemType: [UInt8]? = type ?? nil
            if validateNames {
                guard SlotName.isValid(slot) else { throw JSONScanner.Failure("invalid slot name") }
                if let itemType, !EventType.isValid(itemType) { throw JSONScanner.Failure("invalid event type") }
            }
            return .success(BatchItem(slot: slot, type: itemType, data: data))
        } catch let e as JSONScanner.Failure {
            return .failure(e)
        } catch {
            return .failure(.init("invalid JSON"))
        }
    }
}
