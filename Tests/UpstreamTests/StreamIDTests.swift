import Testing
@testable import Upstream

@Suite struct StreamIDTests {
    @Test func parsesAndPrintsMsDashSeq() {
        let id = StreamID(parsing: "1700000000123-7")
        #expect(id == StreamID(milliseconds: 1_700_000_000_123, sequence: 7))
        #expect(id?.description == "1700000000123-7")
        #expect(StreamID.zero.description == "0-0")
        #expect(StreamID(parsing: "18446744073709551615-18446744073709551615")?.sequence == .max)
    }

    @Test func rejectsWhatRedisNeverSends() {
        for text in ["", "5", "-", "5-", "-5", "a-1", "1-b", "1-2-3", "+1-2", "18446744073709551616-0", " 1-2"] {
            #expect(StreamID(parsing: text) == nil, "\(text)")
        }
    }

    @Test func ordersByMillisecondsThenSequence() {
        let a = StreamID(milliseconds: 5, sequence: 9), b = StreamID(milliseconds: 6, sequence: 0)
        #expect(a < b && StreamID.zero < a && !(b < a))
        #expect(StreamID(milliseconds: 5, sequence: 1) < StreamID(milliseconds: 5, sequence: 2))
    }

    @Test func epochHexIsEightLowercaseDigits() {
        #expect(ClusterMeta.epochHex(0xDEADBEEF) == "deadbeef")
        #expect(ClusterMeta.epochHex(1) == "00000001")
        #expect(ClusterMeta.parseEpoch(Array("0000002a".utf8)) == 42)
        #expect(ClusterMeta.parseEpoch(Array("2a".utf8)) == nil)
        #expect(ClusterMeta.parseEpoch(Array("0000002g".utf8)) == nil)
    }
}
