import Glibc
import Testing
import IO

/// What `--io` picks and what the operator is told when io_uring is refused.
@Suite struct IOSelectionTests {
    @Test func eachRefusalNamesItsErrnoAndTheCauseAnOperatorCanFix() {
        let seccomp = IOSelection.refusalCause(errno: EPERM, sysctl: 0)
        #expect(seccomp.contains("EPERM") && seccomp.contains("seccomp"))
        let group = IOSelection.refusalCause(errno: EPERM, sysctl: 1)
        #expect(group.contains("EPERM") && group.contains("kernel.io_uring_disabled=1") && group.contains("io_uring_group"))
        let disabled = IOSelection.refusalCause(errno: EPERM, sysctl: 2)
        #expect(disabled.contains("EPERM") && disabled.contains("kernel.io_uring_disabled=2"))
        let old = IOSelection.refusalCause(errno: ENOSYS, sysctl: 0)
        #expect(old.contains("ENOSYS") && old.contains("kernel"))
    }

    @Test func onlyARefusalFallsBackNotALackOfMemory() {
        #expect(IOSelection.refusesIOUring(EPERM))
        #expect(IOSelection.refusesIOUring(ENOSYS))
        #expect(!IOSelection.refusesIOUring(ENOMEM))
    }

    @Test func anExplicitChoiceIsTakenAsGivenAndMakeBuildsIt() throws {
        #expect(IOSelection.resolve(.epoll).kind == .epoll)
        #expect(IOSelection.resolve(.epoll).fallbackCause == nil)
        #expect(IOSelection.resolve(.ioUring).kind == .ioUring)
        #expect(try IOSelection.make(.epoll, configuration: IOBackendConfiguration()).kind == .epoll)
        #expect(throws: IOSelection.Failure.self) {
            try IOSelection.make(.simulated, configuration: IOBackendConfiguration())
        }
    }
}
