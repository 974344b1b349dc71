// swift-tools-version:6.0
import PackageDescription

// The publish and delivery paths (parser, engine, log, ingest, worker): release builds leave
// out the dynamic exclusivity checks (swift_beginAccess on class properties, about 4 % of the
// ingest's instructions per publish); debug builds, which `swift test` runs, keep them.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "ringgate",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ringgate", targets: ["ringgate"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        // C shim: liburing's inline helpers, atomics on raw shared memory, syscalls Glibc lacks.
        // Its public header is plain C; only the .c files include <liburing.h> / <linux/tcp.h>.
        .target(
            name: "CRinggateSys",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // hiredis (Debian libhiredis-dev) for the cluster's Redis protocol.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(name: "RingLog", dependencies: ["CRinggateSys"], swiftSettings: hotPath),
        .target(name: "WireProtocol", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: hotPath),
        .target(name: "StreamPolicy", dependencies: ["RingLog"]),
        // Subscriber authorization: JWT verification (swift-crypto signatures), slot patterns.
        .target(name: "Auth", dependencies: [.product(name: "Crypto", package: "swift-crypto"),
                                             .product(name: "_CryptoExtras", package: "swift-crypto")]),
        // The kernel seam: what a loop asks of the kernel, on io_uring or epoll.
        .target(name: "IO", dependencies: ["CRinggateSys"]),
        // The deterministic fake kernel of the simulation tests (never linked into ringgate).
        .target(name: "IOSimulation", dependencies: ["IO"]),
        // The HTTP/1.1 server on the seam: connection table, dispatch, response queue, stream
        // buffers, deadlines.
        .target(
            name: "HTTPServer",
            dependencies: ["IO", "WireProtocol", "StreamPolicy", "RingLog",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath
        ),
        // What the roles share: the configuration, the cross-process admission table.
        .target(name: "GatewayCore", dependencies: ["CRinggateSys", "IO", "RingLog", "WireProtocol", "StreamPolicy"]),
        // What the two serving roles share on top of the server: log attach, counter block,
        // SIGTERM stop, /healthz, URL paths. Not in GatewayCore: the supervisor, which has no
        // HTTP server, depends on that.
        .target(name: "RoleSupport", dependencies: ["Auth", "HTTPServer", "GatewayCore", "RingLog", "WireProtocol", "CRinggateSys"]),
        // Cluster mode: the ingest's link to Redis Streams (publisher and tail threads).
        .target(
            name: "Upstream",
            dependencies: ["CHiredis", "RingLog", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Worker",
            dependencies: ["Auth", "HTTPServer", "RoleSupport", "GatewayCore", "IO", "RingLog", "WireProtocol", "StreamPolicy", "CRinggateSys",
                           .product(name: "Logging", package: "swift-log")],
            // Served from the binary: the status page (GET /) and the API description
            // (GET /openapi.yaml; Resources/openapi.yaml links to the repository's openapi.yaml).
            resources: [.embedInCode("Resources/status.html"), .embedInCode("Resources/openapi.yaml")],
            swiftSettings: hotPath
        ),
        .target(
            name: "Ingest",
            dependencies: ["Auth", "HTTPServer", "RoleSupport", "GatewayCore", "IO", "RingLog", "WireProtocol", "CRinggateSys", "Upstream",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath
        ),
        .target(
            name: "Supervisor",
            dependencies: ["RingLog", "GatewayCore", "IO", "CRinggateSys", "Upstream", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "ringgate",
            dependencies: ["Auth", "Supervisor", "Worker", "Ingest", "GatewayCore", "RoleSupport", "Upstream", "IO", "RingLog", "WireProtocol", "StreamPolicy", "CRinggateSys",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Multi-process stress of the ring log: one writer process, N reader processes.
        .executableTarget(name: "ringlog-stress", dependencies: ["RingLog", "CRinggateSys"]),
        // Load generator for `make bench`: many SSE subscribers on one io_uring loop.
        .executableTarget(name: "ringgate-bench", dependencies: ["IO", "CRinggateSys", "WireProtocol"],
                          path: "bench/loadgen"),
        // Loopback throughput of the Redis link (publish completions/s, tail entries/s).
        .executableTarget(name: "ringgate-upstream-bench", dependencies: ["Upstream", "RingLog",
                                                                          .product(name: "Logging", package: "swift-log")],
                          path: "bench/upstream"),
        // Test-only WebSocket echo server for the Autobahn conformance suite; not a gateway route.
        .executableTarget(name: "ringgate-wsecho", dependencies: ["WireProtocol"]),
        .testTarget(name: "RingLogTests", dependencies: ["RingLog", "CRinggateSys"]),
        .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol"]),
        .testTarget(name: "AuthTests", dependencies: ["Auth", .product(name: "Crypto", package: "swift-crypto"),
                                                     .product(name: "_CryptoExtras", package: "swift-crypto")]),
        .testTarget(name: "StreamPolicyTests", dependencies: ["StreamPolicy", "RingLog"]),
        // READER: the worker's pure parts (the history body over a heap log), without sockets.
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "RingLog", "WireProtocol"]),
        // The supervisor's pure parts (the watchdog's verdicts).
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "IO", "RingLog", "WireProtocol", "CRinggateSys",
                                                           .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore"]),
        // The backend contract: io_uring and epoll give the same completions on real sockets.
        .testTarget(name: "IOTests", dependencies: ["IO", "CRinggateSys"]),
        .testTarget(name: "RoleSupportTests", dependencies: ["RoleSupport", "WireProtocol"]),
        // The ingest's pure parts (its routes).
        .testTarget(name: "IngestTests", dependencies: ["Ingest"]),
        // The Redis link: URL parsing, entry decoding (pure) and the client against a real redis-server.
        .testTarget(name: "UpstreamTests", dependencies: ["Upstream", "RingLog", "CRinggateSys"]),
        // Seeded schedules of the real worker and ingest on the simulated backend (no sockets).
        .testTarget(name: "SimulationTests",
                    dependencies: ["IOSimulation", "IO", "HTTPServer", "Worker", "Ingest", "GatewayCore", "RingLog",
                                   "WireProtocol", "CRinggateSys", .product(name: "Logging", package: "swift-log")]),
    ]
)
