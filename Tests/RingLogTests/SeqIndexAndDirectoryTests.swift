import CRinggateSys
import Testing
@testable import RingLog

@Suite struct SeqIndexTests {
    @Test func lookupResolvesRetainedSeqsOnly() throws {
        let log = HeapLog(capacityBytes: 4096)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 1...100 { try writer.append(i % 2 == 0 ? "even" : "odd", "event \(i)") }
        #expect(reader.position(ofSeq: 0) == nil)
        #expect(reader.position(ofSeq: 101) == nil)
        let oldest = reader.oldestSeqAcquire()
        #expect(oldest > 1)
        for seq in UInt64(1)...100 {
            let position = reader.position(ofSeq: seq)
            if seq < oldest {
                #expect(position == nil, "seq \(seq) is overwritten")
            } else {
                let p = try #require(position)
                let e = try #require(reader.event(at: p, scratch: log.scratch))
                #expect(e.seq == seq)
                #expect(e.data == "event \(seq)")
            }
        }
    }
}

@Suite struct SlotDirectoryTests {
    @Test func manySlotsAreFoundByName() throws {
        let log = HeapLog(capacityBytes: 1 << 20, maxSlots: 256)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for i in 0..<256 { try writer.append("slot-\(i)", "x") }
        for i in 0..<256 { try writer.append("slot-\(i)", "y") }
        var indexes = Set<UInt32>()
        for i in 0..<256 {
            let info = try #require(reader.findSlot("slot-\(i)"))
            #expect(info.count == 2)
            #expect(info.newestSeq == UInt64(257 + i))
            #expect(reader.event(at: info.newestPosition, scratch: log.scratch)?.slot == "slot-\(i)")
            indexes.insert(info.index)
        }
        #expect(indexes.count == 256)
        #expect(reader.findSlot("slot-256") == nil)
        #expect(log.region.base.loadU64(LogDescriptor.liveSlotsOffset) == 256)
    }

    @Test func fullDirectoryRejectsNewSlotsButNotKnownOnes() throws {
        let log = HeapLog(capacityBytes: 1 << 16, maxSlots: 4)
        var writer = LogWriter(region: log.region)
        for name in ["a", "b", "c", "d"] { try writer.append(name, "1") }
        #expect(!writer.canAppend("e", dataBytes: 1))
        #expect(writer.canAppend("a", dataBytes: 1))
        #expect(throws: LogWriter.AppendError.slotDirectoryFull) { try writer.append("e", "1") }
        #expect(try writer.append("a", "2") == 5)  // nothing was appended by the failure
        #expect(!writer.canAppend("a", dataBytes: 1 << 15))
        #expect(throws: LogWriter.AppendError.recordTooLarge) {
            try writer.append("a", String(repeating: "q", count: 1 << 14))
        }
    }

    @Test func deadSlotsAreRecycled() throws {
        let log = HeapLog(capacityBytes: 4096, maxSlots: 4)
        var writer = LogWriter(region: log.region)
        let reader = log.reader
        for name in ["a", "b", "c", "d"] { try writer.append(name, "1") }
        let oldB = try #require(reader.findSlot("b"))
        #expect(throws: LogWriter.AppendError.slotDirectoryFull) { try writer.append("e", "1") }
        // Overwrite every record of b, c, d with records of a.
        for _ in 0..<60 { try writer.append("a", String(repeating: "a", count: 100)) }
        #expect(writer.canAppend("e", dataBytes: 1))
        try writer.append("e", "1")
        try writer.append("f", "1")
        try writer.append("g", "1")
        #expect(throws: LogWriter.AppendError.slotDirectoryFull) { try writer.append("h", "1") }
        let e = try #require(reader.findSlot("e"))
        #expect(e.count == 1)
        #expect(reader.findSlot("a") != nil)
        // The recycled names are gone or dead; any reused entry has a newer generation.
        for name in ["b", "c", "d"] {
            if let info = reader.findSlot(name) { #expect(reader.position(ofSeq: info.newestSeq) == nil) }
        }
        for name in ["e", "f", "g"] {
            let info = try #require(reader.findSlot(name))
            if info.index == oldB.index { #expect(info.generation > oldB.generation) }
        }
        // A dead slot appended to again continues its ordinals.
        for _ in 0..<60 { try writer.append("a", String(repeating: "a", count: 100)) }
        try writer.append("e", "2")
        #expect(reader.findSlot("e")?.count == 2)
    }
}

@Suite struct NewestSlotsTests {
    @Test func newestSlotsAreTheOnesWithTheNewestEventsNewestFirst() throws {
        let log = HeapLog(capacityBytes: 1 << 20, maxSlots: 256)
        var writer = LogWriter(region: log.region)
        for i in 0..<40 { try writer.append("slot-\(i)", "x") }      // seqs 1...40
        try writer.append("slot-3", "again")                          // seq 41
        let top = log.reader.newestSlots(limit: 5)
        #expect(top.map(\.name) == ["slot-3", "slot-39", "slot-38", "slot-37", "slot-36"])
        #expect(top[0] == LogReader.SlotSummary(name: "slot-3", newestSeq: 41, count: 2))
        #expect(log.reader.newestSlots(limit: 100).count == 40)
        #expect(log.reader.newestSlots(limit: 0).isEmpty)
    }

    @Test func slotsWhoseEventsTheRingOverwroteAreLeftOut() throws {
        let log = HeapLog(capacityBytes: 4096, maxSlots: 64)
        var writer = LogWriter(region: log.region)
        try writer.append("early", "gone soon")
        for i in 0..<200 { try writer.append("busy", "event \(i)") }
        let top = log.reader.newestSlots(limit: 10)
        #expect(top.map(\.name) == ["busy"])
        #expect(top[0].newestSeq == 201)
    }
}
