import IOSimulation
import Testing

/// The real ingest under seeded schedules of the simulated backend.
@Suite struct IngestSimulationTests {
    @Test func seededSchedulesAcknowledgeOnlyWhatIsInTheLog() throws {
        var failures: [String] = []
        var turns = 0, appended = 0, acknowledged = 0
        for seed in SimSeeds.list(defaultCount: 1500, salt: 2) {
            let outcome = try IngestSchedule(seed: seed).run()
            turns += outcome.turns
            appended += outcome.events
            acknowledged += outcome.delivered
            failures += outcome.failures
            if failures.count >= 10 { break }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(appended > 0 && acknowledged > 0 && turns > 0)
        print("ingest simulation: \(turns) turns, \(appended) events appended, \(acknowledged) acknowledged")
    }

    @Test func aScheduleReplaysByteForByte() throws {
        let seed: UInt64 = SimSeeds.list(defaultCount: 1, salt: 2)[0]
        let first = try IngestSchedule(seed: seed, recordsTranscript: true).run()
        let second = try IngestSchedule(seed: seed, recordsTranscript: true).run()
        #expect(first.transcript.count > 100)
        #expect(first.transcript == second.transcript)
        #expect(first.transcriptHash == second.transcriptHash)
    }
}
