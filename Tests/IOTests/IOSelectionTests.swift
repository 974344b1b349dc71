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

    /// A kernel without provided-buffer rings (EINVAL) or locked memory too small for the
    /// real sizes (ENOMEM) also falls back: `auto` must not pick io_uring for children that
    /// cannot build it. The line names the call that failed.
    @Test func whatAChildCannotBuildFallsBackAndTheCauseNamesTheSyscall() {
        for errno in [EPERM, ENOSYS, EINVAL, ENOMEM] { #expect(IOSelection.refusesIOUring(errno)) }
        #expect(!IOSelection.refusesIOUring(EFAULT))
        let register = IOSelection.refusalCause(errno: EINVAL, syscall: "io_uring_register", sysctl: 0)
        #expect(register.contains("io_uring_register: EINVAL") && register.contains("provided-buffer"))
        let blocked = IOSelection.refusalCause(errno: EPERM, syscall: "io_uring_register", sysctl: 0)
        #expect(blocked.contains("io_uring_register: EPERM") && blocked.contains("seccomp"))
        let memory = IOSelection.refusalCause(errno: ENOMEM, syscall: "io_uring_setup", sysctl: 0)
        #expect(memory.contains("io_uring_setup: ENOMEM") && memory.contains("RLIMIT_MEMLOCK"))
    }

    /// The probe builds a child's backend at the sizes given: where the kernel allows io_uring
    /// (this host), auto picks it at the real sizes too.
    @Test(.enabled(if: (try? UringBackend(configuration: IOBackendConfiguration())) != nil))
    func autoProbesTheRealSizesAndPicksIOUringWhereTheyWork() {
        var ingest = IOBackendConfiguration()
        ingest.receiveBufferBytes = 65536
        let resolved = IOSelection.resolve(.auto, probing: [IOBackendConfiguration(), ingest])
        #expect(resolved.kind == .ioUring && resolved.fallbackCause == nil)
    }

    @Test func theAdviceSuggestsAutoOnlyWhenAutoWasNotWhatRan() {
        #expect(IOSelection.refusalAdvice(resolvedFromAuto: false).contains("(or --io auto)"))
        let fromAuto = IOSelection.refusalAdvice(resolvedFromAuto: true)
        #expect(fromAuto.contains("--io epoll") && !fromAuto.contains("--io auto"))
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
