import Glibc

/// `IOBackend` on epoll (issue 11): written on its own branch.
public final class EpollBackend {
    public init(configuration: IOBackendConfiguration) throws {
        throw IOSelection.Failure("the epoll backend is not built yet")
    }
}
