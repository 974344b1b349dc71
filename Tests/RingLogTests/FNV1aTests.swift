import Testing
@testable import RingLog

/// The one FNV-1a: the published test vectors, and the slot directory's probe start is it.
@Suite struct FNV1aTests {
    @Test func publishedVectors() {
        #expect(FNV1a.hash64(Array("".utf8)) == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a.hash64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(FNV1a.hash64(Array("foobar".utf8)) == 0x8594_4171_f739_67e8)
    }

    @Test func theDirectoryHashesNamesWithIt() {
        let name = Array("news".utf8)
        #expect(name.withUnsafeBytes { LogDescriptor.nameHash($0) } == FNV1a.hash64(name))
    }
}
