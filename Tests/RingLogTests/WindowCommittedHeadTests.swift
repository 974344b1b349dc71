import Testing
@testable import RingLog

/// Finding 10: the directory entry is published at stage time, so an open batch's seqs (which a
/// rollback gives back, for another event to reuse) must not show as the slot's head or oldest.
@Suite struct WindowCommittedHeadTests {
    @Test func openBatchIsNotTheSlotsHead() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 1...3 { try writer.append("a", "committed \(i)") }   // seqs 1...3
        writer.beginBatch()
        try writer.stage("a", "staged 4")
        try writer.stage("a", "staged 5")
        try writer.stage("b", "staged 6")                              // a slot with nothing committed
        #expect(reader.findSlot("a")?.newestSeq == 5, "the directory already names the staged record")

        let newest = reader.window("a", limit: 10).0
        #expect(reader.seqs(newest.positions, scratch: log.scratch) == [1, 2, 3])
        #expect(newest.seqs == [1, 2, 3] && newest.slotOrdinals == [1, 2, 3])
        #expect(newest.slotHeadSeq == 3 && newest.slotOldestSeq == 1)
        let after = reader.window("a", after: 3, limit: 10).0
        #expect(after.positions.isEmpty && after.slotHeadSeq == 3 && !after.reset)
        let paged = reader.window("a", after: 1, limit: 10).0
        #expect(paged.seqs == [2, 3] && paged.slotHeadSeq == 3)
        // Nothing of "b" is committed: it has no head, no oldest, no events.
        #expect(reader.window("b", limit: 10).0 == LogReader.Window())

        // Rolled back, seq 4 goes to another event: a head of 5 would have named nothing real.
        writer.rollback()
        try writer.append("c", "reuses 4")
        #expect(reader.window("a", limit: 10).0.slotHeadSeq == 3)
        #expect(reader.window("c", limit: 10).0.seqs == [4])
    }

    @Test func committedBatchIsTheHeadAtOnce() throws {
        let log = HeapLog(capacityBytes: 1 << 16)
        var writer = LogWriter(region: log.region)
        try writer.append("a", "one")
        writer.beginBatch()
        try writer.stage("a", "two")
        try writer.stage("a", "three")
        writer.commit()
        let w = log.reader.window("a", limit: 10).0
        #expect(w.seqs == [1, 2, 3] && w.slotHeadSeq == 3)
    }
}
