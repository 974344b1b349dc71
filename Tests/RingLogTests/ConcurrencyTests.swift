import CRinggateSys
import Testing
@testable import RingLog

@Suite struct ConcurrencyTests {
    /// A writer thread laps a small log while this thread follows the tail and runs windows:
    /// every accepted record must be exactly what was written.
    @Test func readerFollowingALappingWriterNeverSeesTornRecords() async throws {
        let log = HeapLog(capacityBytes: 1 << 14)
        let region = log.region
        let total: UInt64 = 100_000
        let writerTask = Task.detached {
            var writer = LogWriter(region: region)
            for i in 0..<total {
                let pad = String(repeating: "p", count: Int(i % 300))
                try! writer.append("s\(i % 3)", "\(i)|\(pad)")
            }
            return writer.headSeq
        }
        let reader = log.reader
        var cursor: UInt64 = 0
        var accepted = 0, lapped = 0, windows = 0
        var lastSeq: UInt64 = 0
        while lastSeq < total {
            switch reader.copyRecord(at: cursor, into: log.scratch) {
            case .record(let view):
                let name = String(decoding: log.scratch[view.name], as: UTF8.self)
                let data = String(decoding: log.scratch[view.data], as: UTF8.self)
                let i = view.seq - 1
                #expect(view.seq > lastSeq)
                #expect(name == "s\(i % 3)")
                #expect(data == "\(i)|" + String(repeating: "p", count: Int(i % 300)))
                lastSeq = view.seq
                accepted += 1
                cursor = view.nextPosition
                if accepted % 97 == 1 {   // the first accepted record too, however few a loaded machine allows
                    let (w, _) = reader.window("s\(i % 3)", after: view.seq > 60 ? view.seq - 60 : 0, limit: 8)
                    let seqs = reader.seqs(w.positions, scratch: log.scratch).filter { $0 != 0 }
                    #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
                    #expect(seqs.allSatisfy { ($0 - 1) % 3 == i % 3 })
                    windows += 1
                }
            case .padding(let next):
                cursor = next
            case .notYetWritten:
                await Task.yield()
            case .lapped:
                lapped += 1
                cursor = reader.latestAcquire()
            case .damaged(let damaged):
                Issue.record("an intact record under a racing writer was reported damaged: \(damaged)")
                cursor = reader.resumePoint(after: damaged, lastSeq: lastSeq).position
            }
        }
        #expect(await writerTask.value == total)
        #expect(accepted > 0 && windows > 0)
        withExtendedLifetime(log) {}
    }
}
