// swift-tools-version:6.1
// The benchmark suite: its own package, so the main build does not pay for ordo-one/benchmark.
// Run from the repository root: `make bench` (or `cd Benchmarks && swift package benchmark`).
import PackageDescription

let package = Package(
    name: "swift-track-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "swift-track", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
    ],
    targets: [
        // The comparison with what users would pick instead (SQLite, track's FileProtocol
        // strategy, a JSON-lines file): `make compare`.
        .systemLibrary(name: "CSQLite", path: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .executableTarget(
            name: "track-compare",
            dependencies: [
                "CSQLite",
                .product(name: "Track", package: "swift-track"),
                .product(name: "TrackLog", package: "swift-track"),
                .product(name: "TrackStore", package: "swift-track"),
            ],
            path: "Compare",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "TrackLogBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "TrackLog", package: "swift-track"),
                .product(name: "TrackStore", package: "swift-track"),
                .product(name: "Track", package: "swift-track"),
                .product(name: "TrackModel", package: "swift-track"),
                .product(name: "TrackServer", package: "swift-track"),
                .product(name: "TrackBackends", package: "swift-track"),
                .product(name: "TrackSQL", package: "swift-track"),
                .product(name: "TrackTestSupport", package: "swift-track"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/TrackLogBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
