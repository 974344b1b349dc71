import Testing
@testable import WireProtocol

@Suite struct JSONWriterTests {
    func escaped(_ bytes: [UInt8]) -> String {
        var w = JSONWriter()
        w.appendString(bytes)
        #expect(w.bytes.count == JSONWriter.escapedLength(bytes))
        return w.bytes.text
    }

    @Test func escapesPerRFC8259() {
        #expect(escaped(Array("plain".utf8)) == "\"plain\"")
        #expect(escaped(Array("a\"b\\c".utf8)) == "\"a\\\"b\\\\c\"")
        #expect(escaped(Array("\n\r\t\u{08}\u{0C}".utf8)) == "\"\\n\\r\\t\\b\\f\"")
        #expect(escaped([0x00, 0x1F, 0x7F]) == "\"\\u0000\\u001f\u{7F}\"")
        #expect(escaped(Array("é😀/".utf8)) == "\"é😀/\"")
        #expect(escaped([]) == "\"\"")
    }

    @Test func roundTripsThroughTheScanner() throws {
        var rng = SeededGenerator(seed: 5)
        let pieces: [[UInt8]] = [[0x00], [0x0A], [0x0D], [0x09], [0x22], [0x5C], [0x1B], [0x2F], Array("é".utf8),
                                 Array("😀".utf8), Array("abc".utf8)]
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...20, using: &rng) { bytes += pieces.randomElement(using: &rng)! }
            var w = JSONWriter()
            w.appendString(bytes)
            let decoded: [UInt8] = try w.bytes.withUnsafeBytes { raw in
                var s = JSONScanner(raw)
                let v = try s.parseString()
                #expect(s.atEnd)
                return v
            }
            #expect(decoded == bytes)
            #expect(w.bytes.count == JSONWriter.escapedLength(bytes))
        }
    }

    @Test func writesIntoARawBufferAtAnOffset() {
        let src = Array("a\"b".utf8)
        var buf = [UInt8](repeating: 0x2E, count: 12)
        let n = src.withUnsafeBytes { s in buf.withUnsafeMutableBytes { JSONWriter.writeString(s, into: $0, at: 2) } }
        #expect(n == 6)
        #expect(buf.text == "..\"a\\\"b\"....")
    }

    @Test func integersAndLiterals() {
        var w = JSONWriter()
        w.appendRaw("[")
        w.appendInt(0); w.appendRaw(",")
        w.appendInt(-42); w.appendRaw(",")
        w.appendInt(Int64.min); w.appendRaw(",")
        w.appendInt(UInt64.max); w.appendRaw(",")
        w.appendBool(true); w.appendRaw(",")
        w.appendNull(); w.appendRaw(",")
        w.appendID(EventID(epoch: 1, seq: 2))
        w.appendRaw("]")
        #expect(w.bytes.text == "[0,-42,-9223372036854775808,18446744073709551615,true,null,\"00000001-2\"]")
    }
}
