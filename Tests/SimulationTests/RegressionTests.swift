import IOSimulation
import Testing

/// Schedules that found bugs, kept as fixed regressions (each names the bug it found).
@Suite struct SimulationRegressionTests {
    /// A fast reader's history answer was cut short (809 of 812 bytes, then the connection
    /// closed as a send timeout): the send-progress check started its stall clock while the
    /// unsent bytes were only the server's (written, not yet handed to the kernel, whose queue
    /// was empty), and a loop delayed past the send timeout (a clock jump) then closed a peer
    /// that had acknowledged everything it was given.
    @Test(arguments: [UInt64(0x1_0000_9009_b0), 0x1_0000_9011_ea])
    func aHealthyReaderIsNotClosedWhenTheLoopWasLate(seed: UInt64) throws {
        let outcome = try WorkerSchedule(seed: seed, version: 1).run()
        #expect(outcome.failures.isEmpty, "\(outcome.failures.joined(separator: "\n"))")
    }

    /// A publisher that sent its request and half-closed (FIN, like `nc -N`) got no answer:
    /// the FIN's receive closed the connection while the 201 of an event already appended was
    /// still queued or being sent.
    @Test(arguments: [UInt64(0x2_005e_ed00_03), 0x2_005e_ed00_01])
    func aPublisherThatHalfClosesAfterItsRequestsGetsEveryAnswer(seed: UInt64) throws {
        let outcome = try IngestSchedule(seed: seed).run()
        #expect(outcome.failures.isEmpty, "\(outcome.failures.joined(separator: "\n"))")
    }

    /// A fast-reading WebSocket client that sends a close frame gets the server's close frame
    /// (a browser otherwise reports 1006, not a clean close), even when the send-buffer pool is
    /// exhausted or the stream's buffer full: the reply used to be dropped when it could not be
    /// appended at once; it now waits in order behind the buffer (`streamAppendFinal`).
    @Test func aWebSocketCloseIsAnsweredWithACloseFrame() throws {
        let outcome = try WorkerSchedule(seed: 0x100_5eed_00b4, version: 3).run()
        #expect(outcome.failures.isEmpty, "\(outcome.failures.joined(separator: "\n"))")
    }
}
