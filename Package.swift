// swift-tools-version:6.1
// The layers of DESIGN.md, each a module; dependencies point one way, down this list.
import PackageDescription

let package = Package(
    name: "swift-track",
    products: [
        .library(name: "Track", targets: ["Track"]),
        .library(name: "TrackBackends", targets: ["TrackBackends"]),
        .library(name: "TrackLog", targets: ["TrackLog"]),
        .library(name: "TrackStore", targets: ["TrackStore"]),
        .library(name: "TrackModel", targets: ["TrackModel"]),
        .library(name: "TrackConformance", targets: ["TrackConformance"]),
        .library(name: "TrackServer", targets: ["TrackServer"]),
        .library(name: "TrackSQL", targets: ["TrackSQL"]),
        // Test support: the decoders as fuzz targets, for Fuzz/ (libFuzzer) and the corpus-replay test.
        .library(name: "TrackFuzzTargets", targets: ["TrackFuzzTargets"]),
        // Test support: a throwaway PostgreSQL server (initdb, runuser, openssl), for the tests and
        // the benchmark suite; no product above links it.
        .library(name: "TrackTestSupport", targets: ["TrackTestSupport"]),
        // The C ABI (include/swift_track.h), loaded by the Python package in python/.
        .library(name: "TrackC", type: .dynamic, targets: ["TrackC"]),
        .executable(name: "track-server", targets: ["track-server"]),
        .executable(name: "track-replay", targets: ["track-replay"]),
        .executable(name: "track-ui", targets: ["track-ui"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.0"..<"5.0.0"),
        // The web view's HTTP server; without its default traits (swift-configuration).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        // Hummingbird's own dependency: the web view ends its event streams on graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // liblz4 from the system (apt liblz4-dev, brew lz4).
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]
        ),
        .target(
            name: "TrackModel",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")]
        ),
        .target(name: "TrackLog", dependencies: ["CLZ4"]),
        // track's state over the engine: the projection and its materializer, the projection's
        // snapshot codec, compaction over them.
        .target(name: "TrackStore", dependencies: ["TrackModel", "TrackLog", .product(name: "OrderedCollections", package: "swift-collections")]),
        .target(name: "TrackBackends", dependencies: ["TrackModel", "TrackLog", "TrackStore", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Track", dependencies: ["TrackBackends", "TrackLog", .product(name: "OrderedCollections", package: "swift-collections")]),
        // track's socket protocol: the server and the socket:// client, with TLS.
        .target(
            name: "TrackServer",
            dependencies: [
                "TrackBackends",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "track-server",
            dependencies: [
                "TrackServer",
                "TrackSQL",
                "TrackModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/track-server"
        ),
        // The SQL backend (cockroach://, postgres://) over the PostgreSQL wire protocol, with an
        // optional local event-log buffer shipped in the background.
        .target(
            name: "TrackSQL",
            dependencies: [
                "TrackBackends",
                "TrackLog",
                "TrackStore",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The C ABI over the engine, for Python (ctypes) and C callers.
        .target(name: "TrackC", dependencies: ["TrackBackends", "TrackModel"]),
        // A throwaway PostgreSQL server for the tests and benchmarks (test support; no product links it).
        .target(name: "TrackTestSupport", dependencies: ["TrackSQL", "TrackBackends", "TrackModel", .product(name: "PostgresNIO", package: "postgres-nio")]),
        // Every decoder of files and messages as a fuzz target (test support; no product links it).
        .target(name: "TrackFuzzTargets", dependencies: ["TrackLog", "TrackStore", "TrackModel", "TrackBackends", "TrackServer"]),
        // The conformance suite every backend must pass; a module so later backends' tests reuse it.
        .target(name: "TrackConformance", dependencies: ["TrackBackends"]),
        .executableTarget(
            name: "track-replay",
            dependencies: [
                "Track",
                "TrackStore",
                "TrackModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/track-replay"
        ),
        // A worker the multi-process tests start: increments, logs, holds locks, crashes on cue.
        // The web view (`track-ui DB`): its own tool, so that track-replay and `make demo` do
        // not build an HTTP stack.
        .executableTarget(
            name: "track-ui",
            dependencies: [
                "TrackStore",
                "TrackModel",
                "TrackServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tools/track-ui"
        ),
        .executableTarget(name: "track-test-worker", dependencies: ["TrackBackends", "TrackLog", "TrackStore"], path: "Tests/TrackTestWorker"),
        .testTarget(name: "TrackModelTests", dependencies: ["TrackModel"]),
        .testTarget(name: "TrackLogTests", dependencies: ["TrackLog", "TrackStore", "CLZ4", "TrackTestSupport"]),
        // Fixtures: databases written by earlier builds, read through #filePath.
        .testTarget(name: "TrackStoreTests", dependencies: ["TrackStore", "TrackLog", "TrackModel"], exclude: ["Fixtures"]),
        .testTarget(name: "TrackBackendsTests", dependencies: ["TrackBackends", "TrackStore", "TrackConformance", "TrackTestSupport"]),
        .testTarget(name: "TrackTests", dependencies: ["Track"]),
        // Fixtures: test-only TLS certificates, read through #filePath.
        // Runs a real PostgreSQL server (initdb into a temporary folder, 127.0.0.1, a free port).
        .testTarget(name: "TrackSQLTests", dependencies: ["TrackSQL", "Track", "TrackConformance", "TrackTestSupport", "TrackLog", "TrackStore"]),
        .testTarget(name: "TrackServerTests", dependencies: ["TrackServer", "TrackConformance", "TrackTestSupport"], exclude: ["Fixtures"]),
        // Runs the built track-replay as a user would.
        .testTarget(name: "TrackReplayTests", dependencies: ["TrackModel", "TrackLog", "TrackStore", "TrackTestSupport"]),
        // The committed fuzz corpus, every crash input kept and seeded mutations, through every decoder.
        .testTarget(name: "TrackFuzzTests", dependencies: ["TrackFuzzTargets"]),
    ]
)
