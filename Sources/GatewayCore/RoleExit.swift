/// Exit codes by which a child tells the supervisor more than "it crashed".
public enum RoleExit {
    /// The ingest (cluster mode): the host's log no longer matches the cluster (a new cluster
    /// epoch, or a diverged history). The supervisor stops the workers, re-makes the log under
    /// the cluster's epoch and starts the host's processes again.
    public static let reinitialize: Int32 = 76
}
