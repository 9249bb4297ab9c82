import Foundation
import TrackFuzzTargets

// One binary, one target per decoder (TrackFuzzTargets), chosen by the environment variable
// TRACK_FUZZ_TARGET. `make fuzz` runs each from the seed corpus in Fuzz/corpus.

nonisolated(unsafe) var feeder = FuzzFeeder(target: .frame)

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>>>) -> Int32 {
    let name = ProcessInfo.processInfo.environment["TRACK_FUZZ_TARGET"] ?? "frame"
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("track-fuzz: unknown TRACK_FUZZ_TARGET '\(name)'; one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    feeder = FuzzFeeder(target: target)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    feeder.feed(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// libFuzzer's driver (LLVM 11 and later).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// The executable's entry point, the symbol SwiftPM links as `main` for an executable built with
/// -parse-as-library: hands over to libFuzzer's driver (libFuzzer's own `main` is not used).
@_cdecl("track_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return withUnsafeMutablePointer(to: &arguments) { pointer in
        runDriver(&count, pointer) { data, size in
            guard let data else { return 0 }
            return testOneInput(data, size)
        }
    }
}
