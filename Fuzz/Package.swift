// swift-tools-version:6.0
// libFuzzer targets for the WireProtocol parsers. Build and run with ./run.sh; a plain
// `swift build` of these targets fails (they have no main: libFuzzer provides it).
//
// The root package exports no library product, so this package cannot use WireProtocol
// through `.package(path: "..")`; it compiles the same sources through the symlink
// Sources/WireProtocol -> ../../Sources/WireProtocol instead. When the root gains
// `.library(name: "WireProtocol", targets: ["WireProtocol"])`, switch to the path dependency.
import PackageDescription

// `swift build --sanitize=fuzzer --sanitize=address` hands swiftc two `-sanitize=` flags and
// (Swift 6.3.1) the last one wins: the code gets ASan but no coverage instrumentation, and
// libFuzzer sees only BoringSSL's C edges and never grows a corpus. Repeating both in one
// flag, after SwiftPM's, restores the coverage.
let coverage: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

let package = Package(
    name: "ringgate-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .target(name: "WireProtocol", dependencies: [.product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: coverage),
        .executableTarget(name: "fuzz-websocket-decoder", dependencies: ["WireProtocol"], swiftSettings: coverage),
        .executableTarget(name: "fuzz-http-parser", dependencies: ["WireProtocol"], swiftSettings: coverage),
    ]
)
