import Testing
import WireProtocol
@testable import RoleSupport

@Suite struct GatewayPathTests {
    func split(_ path: String) -> (String, String)? {
        Array(path.utf8).withUnsafeBytes { p in
            GatewayPath.slotResource(p).map { (String(decoding: $0.slot, as: UTF8.self), String(decoding: $0.leaf, as: UTF8.self)) }
        }
    }

    @Test func slotAndLeafSplitAtTheLastSlash() {
        #expect(split("/v1/slots/news/events")! == ("news", "events"))
        #expect(split("/v1/slots/a/b/ws")! == ("a/b", "ws"))
        #expect(split("/v1/slots//events")! == ("", "events"))
        #expect(split("/v1/slots/news/")! == ("news", ""))
    }

    @Test func pathsOutsideTheSlotsTree() {
        #expect(split("/v1/slots/news") == nil)
        #expect(split("/v1/slots/") == nil)
        #expect(split("/v1/slot/news/events") == nil)
        #expect(split("/healthz") == nil)
        #expect(split("") == nil)
    }
}
