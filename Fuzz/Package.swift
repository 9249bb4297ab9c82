// swift-tools-version:6.1
// Coverage-guided fuzz targets for every decoder of files and messages (libFuzzer, from the
// Swift toolchain). Its own package, built with -sanitize=fuzzer: `make fuzz` (see the Makefile).
import PackageDescription

let package = Package(
    name: "swift-track-fuzz",
    dependencies: [.package(name: "swift-track", path: "..")],
    targets: [
        .executableTarget(
            name: "track-fuzz",
            dependencies: [.product(name: "TrackFuzzTargets", package: "swift-track")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
