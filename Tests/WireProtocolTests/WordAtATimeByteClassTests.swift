import Testing
@testable import WireProtocol

/// The eight-bytes-at-a-time byte classes agree with the byte-by-byte definitions.
@Suite struct WordAtATimeByteClassTests {
    func bytes(_ k: Int, _ seed: inout UInt64) -> [UInt8] {
        (0..<k).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: seed >> 56)
        }
    }

    @Test func swarTestsMatchTheirDefinitionOnEveryByteInEveryLane() {
        for lane in 0..<8 {
            for b in 0...255 {
                // One byte under test, the others a harmless 'a'.
                var word = [UInt8](repeating: 0x61, count: 8)
                word[lane] = UInt8(b)
                let w = word.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(SWAR.hasLess(w, 0x21) == (b < 0x21), "hasLess lane \(lane) byte \(b)")
                #expect(SWAR.hasLess(w, 0x20) == (b < 0x20), "hasLess lane \(lane) byte \(b)")
                #expect(SWAR.hasMore(w, 0x7E) == (b > 0x7E), "hasMore lane \(lane) byte \(b)")
                #expect(SWAR.hasByte(w, 0x3F) == (b == 0x3F), "hasByte lane \(lane) byte \(b)")
            }
        }
    }

    @Test func wordAtATimeClassesMatchByteAtATimeOnRandomInput() {
        var seed: UInt64 = 42
        for k in 0..<40 {
            for _ in 0..<200 {
                // Mostly printable, sometimes anything: both outcomes are exercised.
                var b = bytes(k, &seed).map { $0 & 0x7F | 0x20 }
                if k > 0, seed & 3 == 0 { b[Int(seed >> 40) % k] = UInt8(truncatingIfNeeded: seed >> 8) }
                b.withUnsafeBytes { raw in
                    #expect(ASCII.allVisible(raw) == b.allSatisfy { $0 >= 0x21 && $0 <= 0x7E })
                    #expect(ASCII.allFieldValueChars(raw) == b.allSatisfy { ($0 >= 0x20 || $0 == 0x09) && $0 != 0x7F })
                    let special = b.firstIndex { $0 == 0x3F || $0 == 0x23 || $0 == 0x25 } ?? k
                    #expect(ASCII.firstPathSpecial(raw, from: 0) == special)
                }
            }
        }
    }

    @Test func lowercaseLiteralComparisonIgnoresOnlyTheCaseOfLetters() {
        func eq(_ s: String, _ l: StaticString) -> Bool { Array(s.utf8).withUnsafeBytes { ASCII.equalsLowercase($0, l) } }
        #expect(eq("Content-Length", "content-length"))
        #expect(eq("CONTENT-LENGTH", "content-length"))
        #expect(!eq("Content_Length", "content-length"))
        #expect(!eq("Content-Lengt", "content-length"))
        #expect(!eq("Content\rLength", "content-length"))
        #expect(eq("Keep-Alive", "keep-alive"))
    }
}

/// Decimal digits two at a time agree with `String(value)`.
@Suite struct DecimalWritingTests {
    @Test func writesEveryLengthFromZeroToTheLargestValue() {
        var values: [UInt64] = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 4_294_967_295, UInt64.max, UInt64.max - 1]
        var p: UInt64 = 1
        for _ in 0..<19 { p *= 10; values += [p - 1, p, p + 1] }
        for v in values {
            let n = ASCII.decimalDigitCount(v)
            #expect(n == String(v).count, "digits of \(v)")
            var out = [UInt8](repeating: 0x2A, count: n + 4)
            let written = out.withUnsafeMutableBytes { ASCII.writeDecimal(v, into: $0, at: 2) }
            #expect(written == n)
            #expect(String(decoding: out, as: UTF8.self) == "**" + String(v) + "**", "value \(v)")
        }
    }
}
