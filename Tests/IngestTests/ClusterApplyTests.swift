import Testing
@testable import Ingest

/// The ingest's decision for each tailed entry, and the queue of 201s waiting for the log.
@Suite struct ClusterApplyTests {
    func decide(epoch: UInt32 = 7, seq: UInt64, head: UInt64, same: Bool = false) -> ClusterApply.Decision {
        var asked = false
        let d = ClusterApply.decide(entryEpoch: epoch, entrySeq: seq, logEpoch: 7, headSeq: head) {
            asked = true
            return same
        }
        // Contents are compared only when the seq is not ahead: the common path reads nothing.
        #expect(asked == (epoch == 7 && seq <= head))
        return d
    }

    @Test func theNextSeqIsAppended() {
        #expect(decide(seq: 1, head: 0) == .append(gapFrom: nil))
        #expect(decide(seq: 11, head: 10) == .append(gapFrom: nil))
    }

    @Test func aSeqPastTheNextIsAGapFromTheNext() {
        #expect(decide(seq: 15, head: 10) == .append(gapFrom: 11))
        // A fresh log that starts from the stream's oldest retained entry.
        #expect(decide(seq: 500_001, head: 0) == .append(gapFrom: 1))
    }

    @Test func aSeqNotAheadIsAReplayOnlyWhenTheLogHoldsTheSameEvent() {
        #expect(decide(seq: 10, head: 10, same: true) == .replay)
        #expect(decide(seq: 3, head: 10, same: true) == .replay)
        #expect(decide(seq: 10, head: 10, same: false) == .diverged)
        #expect(decide(seq: 3, head: 10, same: false) == .diverged)
    }

    @Test func anotherEpochIsNeverAppended() {
        #expect(decide(epoch: 8, seq: 11, head: 10) == .otherEpoch)
        #expect(decide(epoch: 8, seq: 1, head: 10) == .otherEpoch)
    }

    @Test func waitingAnswersLeaveInOrderOnceAppliedOrDue() {
        var q = AppliedWaitQueue<UInt64, Int>()
        q.append(key: 5, dueNanoseconds: 100, 1)
        q.append(key: 9, dueNanoseconds: 200, 2)
        q.append(key: 12, dueNanoseconds: 300, 3)
        var out: [(Int, Bool)] = []
        q.drain(reached: 4, nowNanoseconds: 50) { out.append(($0, $1)) }
        #expect(out.isEmpty)
        q.drain(reached: 9, nowNanoseconds: 60) { out.append(($0, $1)) }
        #expect(out.map(\.0) == [1, 2] && out.allSatisfy { $0.1 })
        out = []
        // Not applied, but due: it leaves, marked as not applied.
        q.drain(reached: 9, nowNanoseconds: 300) { out.append(($0, $1)) }
        #expect(out.count == 1 && out[0].0 == 3 && out[0].1 == false)
        #expect(q.isEmpty)
    }

    @Test func anItemNotDueHoldsBackTheOnesBehindIt() {
        var q = AppliedWaitQueue<UInt64, Int>()
        q.append(key: 5, dueNanoseconds: 1000, 1)
        q.append(key: 6, dueNanoseconds: 10, 2)
        var out: [Int] = []
        q.drain(reached: 4, nowNanoseconds: 500) { item, _ in out.append(item) }
        #expect(out.isEmpty)
        q.drain(reached: 6, nowNanoseconds: 500) { item, _ in out.append(item) }
        #expect(out == [1, 2])
    }

    @Test func aLongQueueCompactsAsItDrains() {
        var q = AppliedWaitQueue<UInt64, Int>()
        for i in 1...5000 { q.append(key: UInt64(i), dueNanoseconds: .max, i) }
        var seen = 0
        for head in stride(from: 100, through: 5000, by: 100) {
            q.drain(reached: UInt64(head), nowNanoseconds: 0) { item, applied in
                seen += 1
                #expect(item == seen && applied)
            }
            #expect(q.count == 5000 - head)
        }
        var rest: [Int] = []
        q.removeAll { rest.append($0) }
        #expect(seen == 5000 && rest.isEmpty)
    }
}
