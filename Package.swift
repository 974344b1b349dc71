// swift-tools-version:6.0
import PackageDescription

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
        .target(name: "RingLog", dependencies: ["CRinggateSys"]),
        .target(name: "WireProtocol", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "StreamPolicy", dependencies: ["RingLog"]),
        .target(
            name: "EventLoop",
            dependencies: ["CRinggateSys", "WireProtocol", "StreamPolicy", "RingLog",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Worker",
            dependencies: ["EventLoop", "RingLog", "WireProtocol", "StreamPolicy", "CRinggateSys",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Ingest",
            dependencies: ["EventLoop", "RingLog", "WireProtocol", "CRinggateSys",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "Supervisor",
            dependencies: ["RingLog", "EventLoop", "CRinggateSys", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "ringgate",
            dependencies: ["Supervisor", "Worker", "Ingest", "RingLog", "WireProtocol", "StreamPolicy", "CRinggateSys",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        // Multi-process stress of the ring log: one writer process, N reader processes.
        .executableTarget(name: "ringlog-stress", dependencies: ["RingLog", "CRinggateSys"]),
        // Load generator for `make bench`: many SSE subscribers on one io_uring loop.
        .executableTarget(name: "ringgate-bench", dependencies: ["EventLoop", "CRinggateSys", "WireProtocol"],
                          path: "bench/loadgen"),
        // Test-only WebSocket echo server for the Autobahn conformance suite; not a gateway route.
        .executableTarget(name: "ringgate-wsecho", dependencies: ["WireProtocol"]),
        .testTarget(name: "RingLogTests", dependencies: ["RingLog", "CRinggateSys"]),
        .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol"]),
        .testTarget(name: "StreamPolicyTests", dependencies: ["StreamPolicy", "RingLog"]),
        // READER: the worker's pure parts (the history body over a heap log), without sockets.
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "RingLog", "WireProtocol"]),
        // The supervisor's pure parts (the watchdog's verdicts).
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor"]),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop", "RingLog", "WireProtocol", "CRinggateSys",
                                                          .product(name: "Logging", package: "swift-log")]),
    ]
)
