#if canImport(Glibc)
import Glibc
#endif
/// Parses an NDJSON batch body: one `{"slot":…,"type":…,"data":…}` object per line.
///
/// Each non-blank line must be exactly one JSON object (strict RFC 8259, whitespace around
/// it allowed). `slot` (string) and `data` (any value) are required, `type` (string or
/// `null`) is optional, other keys are ignored, and a repeated key is an error. A string
/// `data` becomes its unescaped UTF-8; any other value is kept as its exact JSON text.
/// Blank lines (empty or only whitespace, `\n` or `\r\n` ends) are skipped. One bad line
/// fails the whole batch, so nothing of it is appended.
public enum NDJSONBatchParser {
    /// The keys a line may have; others are skipped. Compared in place (no array per key).
    enum Key {
        case slot, type, data, other

        init(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count == 4, let p = bytes.baseAddress else { self = .other; return }
            switch p.loadUnaligned(as: UInt32.self) {
            case Key.word("slot"): self = .slot
            case Key.word("type"): self = .type
            case Key.word("data"): self = .data
            default: self = .other
            }
        }

        /// A four-byte literal as the native-endian word its bytes load as.
        static func word(_ s: StaticString) -> UInt32 {
            UnsafeRawPointer(s.utf8Start).loadUnaligned(as: UInt32.self)
        }
    }
    /// The deepest nesting of arrays and objects, counting the line's own object.
    public static let maxDepth = 64

    /// Parses `body` into items, in order; at most `maxEvents` of them.
    ///
    /// An empty batch (no non-blank line) parses to `[]`; the caller decides whether to
    /// accept it. When `validateNames` is set, slot names and event types are checked too.
    public static func parse(_ body: UnsafeRawBufferPointer, maxEvents: Int,
                             validateNames: Bool = false) -> Result<[BatchItem], BatchError> {
        var lines: [Line] = []
        // A line takes at least 20 bytes ({"slot":"a","data":1}): room for most batches at once.
        lines.reserveCapacity(min(maxEvents, body.count / 24 + 1))
        // Every line's data, one after the other: unescaping only shortens a string, so the
        // body's size always suffices and the items' slices share one allocation. The slices
        // are taken at the end: one held while the arena grows would copy it.
        var arena: [UInt8] = []
        arena.reserveCapacity(body.count)
        var lineNumber = 0
        var start = 0
        let n = body.count
        while start < n {
            let found = memchr(body.baseAddress! + start, Int32(ASCII.lf), n - start)
            let end = found.map { body.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? n
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start, body[lineEnd - 1] == ASCII.cr { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: body[start..<lineEnd])
            start = end + 1
            if line.allSatisfy(JSONScanner.isWhitespace) { continue }
            if lines.count == maxEvents {
                return .failure(BatchError(line: lineNumber, reason: "more than \(maxEvents) events in the batch"))
            }
            switch parseLine(line, validateNames: validateNames, previousSlot: lines.last?.slot, arena: &arena) {
            case .success(let parsed): lines.append(parsed)
            case .failure(let reason): return .failure(BatchError(line: lineNumber, reason: reason.message))
            }
        }
        return .success(lines.map { BatchItem(slot: $0.slot, type: $0.type, data: arena[$0.data]) })
    }

    /// Parses `body` into items, in order; at most `maxEvents` of them.
    public static func parse(_ body: [UInt8], maxEvents: Int,
                             validateNames: Bool = false) -> Result<[BatchItem], BatchError> {
        body.withUnsafeBytes { parse($0, maxEvents: maxEvents, validateNames: validateNames) }
    }

    /// A parsed line: its data is `data` of the batch's arena.
    struct Line {
        var slot: [UInt8]
        var type: [UInt8]?
        var data: Range<Int>
    }

    /// One line: its data appended to `arena`, its slot `previousSlot`'s array again when the
    /// bytes are the same.
    static func parseLine(_ line: UnsafeRawBufferPointer, validateNames: Bool, previousSlot: [UInt8]?,
                          arena: inout [UInt8]) -> Result<Line, JSONScanner.Failure> {
        guard UTF8Validator.isValid(line) else { return .failure(.init("not valid UTF-8")) }
        var scanner = JSONScanner(line)
        do {
            scanner.skipWhitespace()
            guard scanner.peek() == 0x7B else { throw JSONScanner.Failure("not a JSON object") }  // {
            scanner.position += 1
            var slot: [UInt8]?
            var type: [UInt8]??
            var data: Range<Int>?
            scanner.skipWhitespace()
            if scanner.peek() == 0x7D {  // }
                scanner.position += 1
            } else {
                while true {
                    scanner.skipWhitespace()
                    guard scanner.peek() == ASCII.quote else { throw JSONScanner.Failure("expected a key string") }
                    let key = try scanner.scanStringInPlace().withBytes(Key.init)
                    scanner.skipWhitespace()
                    guard scanner.peek() == ASCII.colon else { throw JSONScanner.Failure("expected ':' after a key") }
                    scanner.position += 1
                    scanner.skipWhitespace()
                    switch key {
                    case .slot:
                        guard slot == nil else { throw JSONScanner.Failure("duplicate key \"slot\"") }
                        guard scanner.peek() == ASCII.quote else { throw JSONScanner.Failure("\"slot\" must be a string") }
                        slot = try scanner.scanStringInPlace().withBytes { bytes in
                            if let previousSlot, previousSlot.elementsEqualBytes(bytes) { return previousSlot }
                            return Array(bytes)
                        }
                    case .type:
                        guard type == nil else { throw JSONScanner.Failure("duplicate key \"type\"") }
                        if scanner.peek() == ASCII.quote {
                            type = .some(try scanner.parseString())
                        } else if scanner.peek() == 0x6E {  // null means "no type"
                            try scanner.skipValue(depth: 1)
                            type = .some(nil)
                        } else {
                            throw JSONScanner.Failure("\"type\" must be a string")
                        }
                    case .data:
                        guard data == nil else { throw JSONScanner.Failure("duplicate key \"data\"") }
                        let dataStart = arena.count
                        if scanner.peek() == ASCII.quote {
                            try scanner.scanStringInPlace().withBytes { arena.append(contentsOf: $0) }
                        } else {
                            let valueStart = scanner.position
                            try scanner.skipValue(depth: 1)
                            arena.append(contentsOf: UnsafeRawBufferPointer(rebasing: line[valueStart..<scanner.position]))
                        }
                        data = dataStart..<arena.count
                    case .other:
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
            return .success(Line(slot: slot, type: itemType, data: data))
        } catch let e as JSONScanner.Failure {
            return .failure(e)
        } catch {
            return .failure(.init("invalid JSON"))
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether the array holds exactly `bytes` (memcmp).
    func elementsEqualBytes(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard count == bytes.count else { return false }
        guard count > 0 else { return true }
        return withUnsafeBytes { memcmp($0.baseAddress!, bytes.baseAddress!, count) == 0 }
    }
}
