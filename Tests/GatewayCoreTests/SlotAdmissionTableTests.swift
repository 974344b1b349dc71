import Testing
@testable import GatewayCore

/// The shared per-slot admission table over heap memory: no sockets, no other processes.
@Suite struct SlotAdmissionTableTests {
    /// A zeroed table of `entries` for `workers`, freed by `body`'s caller.
    func withTable(entries: Int = 1024, workers: Int = 2, _ body: (SlotAdmissionTable) throws -> Void) rethrows {
        let length = SlotAdmissionTable.bytes(entries: entries, workers: workers)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        defer { memory.deallocate() }
        try body(SlotAdmissionTable(base: memory, entries: entries, workers: workers))
    }

    @Test func workersShareOneEntryPerSlotAndCountsSum() {
        withTable { table in
            let news = Array("news".utf8)
            let first = table.entryIndex(for: news, worker: 0)
            guard case .entry(let i) = first else { Issue.record("no entry: \(first)"); return }
            #expect(table.entryIndex(for: news, worker: 1) == .entry(i))
            #expect(table.entryIndex(for: Array("sport".utf8), worker: 1) != .entry(i))
            table.add(worker: 0, entry: i, 2)
            table.add(worker: 1, entry: i, 1)
            #expect(table.total(entry: i) == 3)
            table.clear(worker: 0)
            #expect(table.total(entry: i) == 1)
        }
    }

    /// A worker killed between its claim and `ready` left the entry half-made. Once the
    /// supervisor clears that worker, a lookup of the same name by another worker gets an
    /// entry at once (the same home entry, not a second one for the name), and counts start
    /// from zero.
    @Test func deadWorkersHalfMadeClaimIsReleased() {
        withTable { table in
            let name = Array("orders".utf8)
            guard let stuck = table.claimWithoutFinishing(name, worker: 0) else {
                Issue.record("could not claim"); return
            }
            #expect(table.entryIndex(for: name, worker: 1) == .busy, "a half-made claim must not be passed")
            #expect(table.clear(worker: 0) == 1)
            #expect(table.entryIndex(for: name, worker: 1) == .entry(stuck))
            #expect(table.total(entry: stuck) == 0)
            table.add(worker: 1, entry: stuck, 1)
            #expect(table.total(entry: stuck) == 1)
            #expect(table.entryIndex(for: name, worker: 0) == .entry(stuck))
        }
    }

    /// Clearing one worker frees only its own half-made claims, never another worker's, nor
    /// an entry that is ready.
    @Test func clearReleasesOnlyThatWorkersClaims() {
        withTable { table in
            guard case .entry(let ready) = table.entryIndex(for: Array("a".utf8), worker: 0),
                  let other = table.claimWithoutFinishing(Array("b".utf8), worker: 1) else {
                Issue.record("setup failed"); return
            }
            #expect(table.clear(worker: 0) == 0)
            #expect(table.entryIndex(for: Array("a".utf8), worker: 1) == .entry(ready))
            #expect(table.entryIndex(for: Array("b".utf8), worker: 0) == .busy)
            #expect(table.clear(worker: 1) == 1)
            #expect(table.entryIndex(for: Array("b".utf8), worker: 0) == .entry(other))
        }
    }

    @Test func fullTableSaysSo() {
        withTable(entries: 4, workers: 1) { table in
            for n in 0..<4 {
                guard case .entry = table.entryIndex(for: Array("s\(n)".utf8), worker: 0) else {
                    Issue.record("entry \(n) not claimed"); return
                }
            }
            #expect(table.entryIndex(for: Array("one-more".utf8), worker: 0) == .full)
            #expect(table.entryIndex(for: Array("s2".utf8), worker: 0) != .full)
        }
    }
}
