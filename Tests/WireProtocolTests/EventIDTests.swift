import Testing
@testable import WireProtocol

@Suite struct EventIDTests {
    @Test func formatsAndParsesRoundTrip() {
        let id = EventID(epoch: 0x5f3a_9c01, seq: 42)
        #expect(id.description == "5f3a9c01-42")
        #expect(EventID(parsing: "5f3a9c01-42") == id)
        #expect(EventID(epoch: 0, seq: 1).description == "00000000-1")
        let max = EventID(epoch: .max, seq: .max)
        #expect(max.description == "ffffffff-18446744073709551615")
        #expect(max.description.utf8.count == EventID.maxLength)
        #expect(EventID(parsing: max.description) == max)
    }

    @Test func randomRoundTrip() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let id = EventID(epoch: UInt32.random(in: 0...UInt32.max, using: &rng),
                             seq: UInt64.random(in: 1...(UInt64.max >> UInt64.random(in: 0...63, using: &rng)),
                                                using: &rng))
            let text = id.description
            #expect(EventID(parsing: text) == id)
            #expect(text.utf8.count == id.length)
            let parsed = Array(text.utf8).withUnsafeBytes { EventID(bytes: $0) }
            #expect(parsed == id)
        }
    }

    @Test func writesIntoBufferAtOffset() {
        var buf = [UInt8](repeating: 0x2A, count: 40)
        let id = EventID(epoch: 0xdead_beef, seq: 1234)
        let n = buf.withUnsafeMutableBytes { id.write(into: $0, at: 3) }
        #expect(n == 13)
        #expect(Array(buf[3..<16]).text == "deadbeef-1234")
        #expect(buf[2] == 0x2A && buf[16] == 0x2A)
    }

    @Test(arguments: [
        "", "5f3a9c01", "5f3a9c01-", "5f3a9c01-0", "5f3a9c01-042", "5F3A9C01-42", "5f3a9c0-42",
        "5f3a9c011-42", "5f3a9c01_42", "5f3a9c01--42", "5f3a9c01-+42", "5f3a9c01-4a", "5f3a9c01-42 ",
        " 5f3a9c01-42", "g0000000-1", "5f3a9c01-18446744073709551616", "5f3a9c01-99999999999999999999",
        "5f3a9c01-123456789012345678901",
    ])
    func rejects(_ text: String) {
        #expect(EventID(parsing: text) == nil)
    }

    @Test func parsesSubstring() {
        let s = "after=5f3a9c01-7&x"
        let sub = s.dropFirst(6).prefix(10)
        #expect(EventID(parsing: sub) == EventID(epoch: 0x5f3a9c01, seq: 7))
    }
}
