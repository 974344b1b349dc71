import IOSimulation
import Testing

/// The real worker under seeded schedules of the simulated backend. A failing seed is in the
/// message (`seed=0x…`); `RINGGATE_SIM_SEED=0x… swift test --filter Simulation` replays it.
@Suite struct WorkerSimulationTests {
    @Test func seededSchedulesKeepEveryInvariant() throws {
        var failures: [String] = []
        var turns = 0, events = 0, delivered = 0, resets = 0
        for seed in SimSeeds.list(defaultCount: 1500, salt: 1) {
            let outcome = try WorkerSchedule(seed: seed).run()
            turns += outcome.turns
            events += outcome.events
            delivered += outcome.delivered
            resets += outcome.resets
            failures += outcome.failures
            if failures.count >= 10 { break }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        // The schedules exercised what they claim to (not vacuous).
        #expect(events > 0 && delivered > 0 && turns > 0)
        print("worker simulation: \(turns) turns, \(events) events appended, \(delivered) delivered, \(resets) resets")
    }

    @Test func aScheduleReplaysByteForByte() throws {
        let seed: UInt64 = SimSeeds.list(defaultCount: 1, salt: 1)[0]
        let first = try WorkerSchedule(seed: seed, recordsTranscript: true).run()
        let second = try WorkerSchedule(seed: seed, recordsTranscript: true).run()
        #expect(first.transcript.count > 100)
        #expect(first.transcript == second.transcript)
        #expect(first.transcriptHash == second.transcriptHash)
        let other = try WorkerSchedule(seed: seed &+ 1, recordsTranscript: true).run()
        #expect(other.transcript != first.transcript, "a different seed gives a different schedule")
    }
}
