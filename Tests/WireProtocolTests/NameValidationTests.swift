import Testing
@testable import WireProtocol

@Suite struct NameValidationTests {
    @Test func slotNames() {
        #expect(SlotName.isValid("news"))
        #expect(SlotName.isValid("a.B_c:d-9"))
        #expect(SlotName.isValid(String(repeating: "x", count: 128)))
        #expect(!SlotName.isValid(String(repeating: "x", count: 129)))
        #expect(!SlotName.isValid(""))
        for bad in ["a b", "a/b", "a%20", "é", "a\n", "a\"", "a?", "a#"] {
            #expect(!SlotName.isValid(bad), "\(bad)")
        }
        #expect([UInt8]("news").withUnsafeBytes { SlotName.isValid($0) })
    }

    @Test func eventTypes() {
        #expect(EventType.isValid("message"))
        #expect(EventType.isValid(String(repeating: "t", count: 64)))
        #expect(!EventType.isValid(String(repeating: "t", count: 65)))
        #expect(!EventType.isValid(""))
        #expect(!EventType.isValid("a b"))
    }
}
