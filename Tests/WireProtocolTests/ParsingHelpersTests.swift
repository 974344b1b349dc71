import Testing
@testable import WireProtocol

@Suite struct QueryStringTests {
    @Test func parsesPairs() {
        let q = QueryString.parse("after=5f3a9c01-1&limit=10&flag&&x=a+b%20c&e=")
        #expect(q.map(\.0) == ["after", "limit", "flag", "x", "e"])
        #expect(q.map(\.1) == ["5f3a9c01-1", "10", "", "a b c", ""])
    }

    @Test func keepsMalformedPercentLiterally() {
        let q = QueryString.parse("a=%zz&b=%4&c=%41")
        #expect(q.map(\.1) == ["%zz", "%4", "A"])
    }

    @Test func percentDecoding() {
        #expect(PercentDecoding.decode("a%20b") == "a b")
        #expect(PercentDecoding.decode("%e2%82%AC") == "€")
        #expect(PercentDecoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(PercentDecoding.decode("a+b") == "a+b")
        #expect(PercentDecoding.decode("%") == nil)
        #expect(PercentDecoding.decode("%4") == nil)
        #expect(PercentDecoding.decode("%g1") == nil)
        #expect(PercentDecoding.decode("%ff") == nil)  // not UTF-8
    }
}

@Suite struct ByteSizeTests {
    @Test func parsesSizes() {
        #expect(ByteSize.parse("256MiB") == 256 << 20)
        #expect(ByteSize.parse("64KiB") == 64 << 10)
        #expect(ByteSize.parse("1GiB") == 1 << 30)
        #expect(ByteSize.parse("16mib") == 16 << 20)
        #expect(ByteSize.parse("2K") == 2048)
        #expect(ByteSize.parse("3m") == 3 << 20)
        #expect(ByteSize.parse("1g") == 1 << 30)
        #expect(ByteSize.parse("100") == 100)
        #expect(ByteSize.parse("100B") == 100)
        #expect(ByteSize.parse("0") == 0)
    }

    @Test(arguments: ["", "MiB", "-1", "1.5MiB", "12 MiB", "1TiB", "1KB", "99999999999999999999", "9223372036854775807GiB"])
    func rejects(_ s: String) {
        #expect(ByteSize.parse(s) == nil)
    }
}

@Suite struct DurationParserTests {
    @Test func parsesDurations() {
        #expect(DurationParser.parseNanoseconds("15s") == 15_000_000_000)
        #expect(DurationParser.parseNanoseconds("500ms") == 500_000_000)
        #expect(DurationParser.parseNanoseconds("2m") == 120_000_000_000)
        #expect(DurationParser.parseNanoseconds("24h") == 86_400_000_000_000)
        #expect(DurationParser.parseNanoseconds("10") == 10_000_000_000)
        #expect(DurationParser.parseNanoseconds("10S") == 10_000_000_000)
        #expect(DurationParser.parseNanoseconds("0ms") == 0)
    }

    @Test(arguments: ["", "s", "-1s", "1.5s", "1d", "10 s", "99999999999999999999h", "18446744073709551615s"])
    func rejects(_ s: String) {
        #expect(DurationParser.parseNanoseconds(s) == nil)
    }
}

/// The parser's bulk byte-class checks agree with the per-byte definitions for every byte.
@Suite struct ByteClassTests {
    @Test func tokenBitmapMatchesIsTokenChar() {
        for b in 0...255 {
            let one = [UInt8(b)]
            let bulk = one.withUnsafeBytes { ASCII.allTokenChars($0) }
            #expect(bulk == ASCII.isTokenChar(UInt8(b)), "byte \(b)")
            let inRun = ([UInt8]("abc".utf8) + one + [UInt8]("xyz".utf8)).withUnsafeBytes { ASCII.allTokenChars($0) }
            #expect(inRun == ASCII.isTokenChar(UInt8(b)), "byte \(b) between token characters")
        }
    }

    @Test func fieldValueCharacters() {
        for b in 0...255 {
            let ok = b == 0x09 || (b >= 0x20 && b != 0x7F)
            #expect(([UInt8]("v ".utf8) + [UInt8(b)]).withUnsafeBytes { ASCII.allFieldValueChars($0) } == ok, "byte \(b)")
        }
    }
}
