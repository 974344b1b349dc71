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

@Suite struct ReservedEventTypeTests {
    @Test func resetAndCloseAreReservedOthersAreNot() {
        func reserved(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { EventType.isReserved($0) } }
        #expect(reserved("reset"))
        #expect(reserved("close"))
        #expect(!reserved("message"))
        #expect(!reserved("Reset"))       // types are case-sensitive, as SSE event names are
        #expect(!reserved("resets"))
        #expect(!reserved("clos"))
    }
}
