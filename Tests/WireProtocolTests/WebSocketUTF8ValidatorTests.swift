import Testing
@testable import WireProtocol

@Suite struct WebSocketUTF8ValidatorTests {
    /// Feeds `bytes` in pieces cut at `cuts`; whether the whole is valid and complete.
    func incremental(_ bytes: [UInt8], cuts: [Int]) -> Bool {
        var v = WebSocketUTF8Validator()
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            let ok = bytes[start..<end].withUnsafeBytes { v.validate($0) }
            if !ok { return false }
            start = end
        }
        return v.isComplete
    }

    @Test func agreesWithTheWholeBufferValidatorAtRandomSplits() {
        var rng = SeededGenerator(seed: 0x07F8)
        // Bytes drawn mostly from the interesting ranges: ASCII, leads, continuations, invalid.
        let pool: [UInt8] = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
                             0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...12, using: &rng)
            let bytes = (0..<n).map { _ in pool.randomElement(using: &rng)! }
            let cuts = (0..<Int.random(in: 0...3, using: &rng)).map { _ in Int.random(in: 0...n, using: &rng) }.sorted()
            #expect(incremental(bytes, cuts: cuts) == UTF8Validator.isValid(bytes), "\(bytes) cut at \(cuts)")
        }
    }

    @Test func boundaries() {
        #expect(incremental([0xF4, 0x8F, 0xBF, 0xBF], cuts: [1, 2, 3]))        // U+10FFFF
        #expect(!incremental([0xF4, 0x90, 0x80, 0x80], cuts: [1]))              // above U+10FFFF
        #expect(!incremental([0xED, 0xA0, 0x80], cuts: [1]))                    // surrogate
        #expect(incremental([0xED, 0x9F, 0xBF], cuts: [2]))                     // U+D7FF
        #expect(!incremental([0xE0, 0x9F, 0xBF], cuts: [1]))                    // overlong
        #expect(!incremental([0xE2, 0x82], cuts: [1]))                          // incomplete at the end
        #expect(incremental(Array("plain ascii over eight bytes".utf8), cuts: [3, 11]))
    }
}
