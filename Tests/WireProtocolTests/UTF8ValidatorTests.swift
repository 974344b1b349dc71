import Testing
@testable import WireProtocol

@Suite struct UTF8ValidatorTests {
    func reference(_ bytes: [UInt8]) -> Bool { String(validating: bytes, as: UTF8.self) != nil }

    @Test func knownGoodSequences() {
        for s in ["", "a", "hello world, this is longer than eight", "é", "€", "😀", "\u{10FFFF}", "\u{FFFF}",
                  "aaaaaaaé", "aaaaaaaaaaaaaaa€b"] {
            #expect(UTF8Validator.isValid(Array(s.utf8)), "\(s)")
        }
    }

    @Test(arguments: [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0xC3], [0xE2, 0x82],
        [0xF0, 0x9F, 0x98], [0xC3, 0x41], [0xE2, 0x28, 0xA1], [0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x80],
    ] as [[UInt8]])
    func knownBadSequences(_ bytes: [UInt8]) {
        #expect(!UTF8Validator.isValid(bytes))
        #expect(!reference(bytes))
    }

    @Test func agreesWithStandardLibraryOnRandomBytes() {
        var rng = SeededGenerator(seed: 42)
        let pieces: [[UInt8]] = [
            Array("a".utf8), Array("é".utf8), Array("€".utf8), Array("😀".utf8), Array("abcdefghij".utf8),
            [0x80], [0xC0], [0xED, 0xA0], [0xF4, 0x90], [0xE0], [0xF0, 0x9F],
        ]
        for round in 0..<20_000 {
            var bytes: [UInt8] = []
            let n = Int.random(in: 0...24, using: &rng)
            for _ in 0..<n {
                if round % 3 == 0 {
                    bytes.append(UInt8.random(in: 0...255, using: &rng))
                } else {
                    bytes += pieces.randomElement(using: &rng)!
                }
            }
            #expect(UTF8Validator.isValid(bytes) == reference(bytes), "\(bytes)")
        }
    }

    @Test func everyScalarBoundary() {
        for v: UInt32 in [0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF] {
            let s = String(Unicode.Scalar(v)!)
            #expect(UTF8Validator.isValid(Array(s.utf8)))
        }
    }
}
