import Benchmark
import Foundation
import TrackLog
import TrackStore
import TrackModel

// The targets of issue 4, measured here:
//   smartReload picking up 1,000 new events, state of 10 M points   <= 1 ms
//   cold open of a compacted database of 10 M points                <= 1 s
//   compacted metric columns, synthetic loss curve                  <= 3 bytes per point
//   4 writer processes at once vs 1 process, aggregate throughput   >= 1.5 x

/// The synthetic loss curve of the compaction targets: a decaying value with 1% multiplicative
/// noise, at float32 precision as training frameworks log it.
struct Float32LossCurve {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func value(_ step: Int) -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let noise = (Double(state >> 40) / Double(1 << 24) * 2 - 1) * 0.01
        return Double(Float((2.3 * exp(-Double(step) / 2_000_000) + 0.05) * (1 + noise)))
    }
}

/// Writes `points` points over `trials` trials into a new database.
func writeDatabase(_ path: String, points: Int, trials: Int = 10) throws {
    let writer = try LogWriter.open(database: path, options: quietOptions())
    let slots = (0..<trials).map { writer.slot(subject: "\($0)" + String(repeating: "a", count: 63) + "_0", name: "loss") }
    var curve = Float32LossCurve()
    for i in 0..<points { try writer.append(slots[i % trials], step: Int64(i / trials), value: curve.value(i / trials)) }
    try writer.close()
}

/// The release build of `track-replay` in the main package (built by `make bench`).
func trackReplayBinary() -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    let path = root.appendingPathComponent(".build/release/track-replay").path
    precondition(FileManager.default.isExecutableFile(atPath: path),
                 "\(path) is missing: run `swift build -c release --product track-replay` in the repository root (make bench does)")
    return path
}

/// Runs `count` synth processes of `points` points each at once; returns the seconds taken.
func runWriters(_ count: Int, points: Int, database: String) throws -> Double {
    let started = DispatchTime.now().uptimeNanoseconds
    let processes = try (0..<count).map { i -> Process in
        let p = Process()
        p.executableURL = URL(fileURLWithPath: trackReplayBinary())
        p.arguments = ["synth", database, "--points", String(points), "--commit-every", "0", "--prefix", "w\(i)"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }
    for p in processes {
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "a writer process failed")
    }
    return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
}

func materializerBenchmarks() {
    // MARK: smartReload

    var reloadPath = ""
    var reloadMaterializer: Materializer?
    var reloadWriter: LogWriter?
    var reloadSlot: SeriesSlot?
    var reloadStep = 0
    Benchmark("smartReload of 1,000 new events, state of 10 M points (target <= 1 ms)",
              configuration: .init(metrics: [.wallClock], scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 200,
                                   setup: {
                                       reloadPath = scratchDatabase("reload")
                                       try writeDatabase(reloadPath, points: 10_000_000)
                                       let m = try Materializer(database: reloadPath, reporter: { _ in })
                                       try m.reload()
                                       precondition(m.projection.pointCount == 10_000_000)
                                       reloadMaterializer = m
                                       reloadWriter = try LogWriter.open(database: reloadPath, options: quietOptions())
                                       reloadSlot = reloadWriter!.slot(subject: "new_0", name: "loss")
                                   },
                                   teardown: {
                                       try reloadWriter?.close()
                                       reloadMaterializer = nil
                                       removeDatabase(reloadPath)
                                   })) { benchmark in
        let writer = reloadWriter!, slot = reloadSlot!, materializer = reloadMaterializer!
        for _ in 0..<1000 {
            try writer.append(slot, step: Int64(reloadStep), value: Double(reloadStep))
            reloadStep += 1
        }
        try writer.flush()
        let before = materializer.projection.pointCount
        benchmark.startMeasurement()
        try materializer.smartReload()
        benchmark.stopMeasurement()
        precondition(materializer.projection.pointCount == before + 1000, "smartReload missed points")
    }

    // MARK: Cold open

    var coldPath = ""
    Benchmark("cold open of a compacted database of 10 M points (target <= 1 s)",
              configuration: .init(metrics: [.wallClock], scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 5,
                                   setup: {
                                       coldPath = scratchDatabase("cold")
                                       try writeDatabase(coldPath, points: 10_000_000)
                                       _ = try Compactor.compact(database: coldPath, reporter: { _ in })
                                   },
                                   teardown: { removeDatabase(coldPath) })) { benchmark in
        let m = try Materializer(database: coldPath, reporter: { _ in })
        try m.smartReload()
        precondition(m.projection.pointCount == 10_000_000)
        blackHole(m)
    }

    // MARK: Compacted size

    Benchmark("compacted metric columns, bytes per point x1000, synthetic loss curve (target <= 3000)",
              configuration: .init(metrics: [.custom("compacted bytes per point x1000", polarity: .prefersSmaller, useScalingFactor: false)],
                                   scalingFactor: .one, maxIterations: 1)) { benchmark in
        let path = scratchDatabase("compacted")
        defer { removeDatabase(path) }
        try writeDatabase(path, points: 2_000_000, trials: 1)
        let report = try Compactor.compact(database: path, reporter: { _ in })
        benchmark.measurement(.custom("compacted bytes per point x1000", polarity: .prefersSmaller, useScalingFactor: false),
                              Int(report.snapshotBytes * 1000 / 2_000_000))
    }

    // MARK: A consumer far behind (a buffer's shipper after an outage)

    // About 60 MB of barely compressible points, drained 16 frames per poll as the buffer
    // shipper reads it: each poll should read about 16 frames' bytes, not the rest of the segment.
    var backlogPath = ""
    Benchmark("tailer draining a ~60 MB backlog 16 frames per poll, MB/s (next to one poll for it all)",
              configuration: .init(metrics: [.wallClock, .custom("MB/s drained", polarity: .prefersLarger, useScalingFactor: false),
                                             .custom("MB/s in one poll", polarity: .prefersLarger, useScalingFactor: false)],
                                   scalingFactor: .one, maxIterations: 5,
                                   setup: {
                                       backlogPath = scratchDatabase("backlog")
                                       var options = quietOptions()
                                       options.frameRawBytesTarget = 8 << 10
                                       let writer = try LogWriter.open(database: backlogPath, options: options)
                                       let slot = writer.slot(subject: String(repeating: "b", count: 64) + "_0", name: "loss")
                                       var random = SeededRandom(seed: 5)
                                       for step in 0..<6_000_000 { try writer.append(slot, step: Int64(step), value: Double(bitPattern: random.next() >> 2)) }
                                       try writer.close()
                                   },
                                   teardown: { removeDatabase(backlogPath) })) { benchmark in
        let megabytes = Double(try Compactor.diskBytes(DatabaseLayout(root: backlogPath))) / 1e6
        func rate(_ drain: (LogTailer) throws -> Void) throws -> Int {
            let started = DispatchTime.now().uptimeNanoseconds
            try drain(try LogTailer(database: backlogPath, reporter: { _ in }))
            return Int(megabytes / (Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
        }
        benchmark.measurement(.custom("MB/s drained", polarity: .prefersLarger, useScalingFactor: false),
                              try rate { tailer in while try !tailer.poll(maxFrames: 16).isEmpty {} })
        benchmark.measurement(.custom("MB/s in one poll", polarity: .prefersLarger, useScalingFactor: false),
                              try rate { tailer in _ = try tailer.poll() })
    }

    // MARK: Several writer processes

    Benchmark("4 writer processes vs 1, aggregate throughput ratio x100 (target >= 150)",
              configuration: .init(metrics: [.custom("aggregate throughput, 4 processes / 1 process, x100", polarity: .prefersLarger, useScalingFactor: false),
                                             .custom("points per second, 1 process", polarity: .prefersLarger, useScalingFactor: false),
                                             .custom("points per second, 4 processes", polarity: .prefersLarger, useScalingFactor: false)],
                                   scalingFactor: .one, maxDuration: .seconds(60), maxIterations: 3)) { benchmark in
        let points = 10_000_000
        let one = scratchDatabase("one"), four = scratchDatabase("four")
        defer { removeDatabase(one); removeDatabase(four) }
        let single = Double(points) / (try runWriters(1, points: points, database: one))
        let aggregate = Double(4 * points) / (try runWriters(4, points: points, database: four))
        benchmark.measurement(.custom("aggregate throughput, 4 processes / 1 process, x100", polarity: .prefersLarger, useScalingFactor: false), Int(aggregate / single * 100))
        benchmark.measurement(.custom("points per second, 1 process", polarity: .prefersLarger, useScalingFactor: false), Int(single))
        benchmark.measurement(.custom("points per second, 4 processes", polarity: .prefersLarger, useScalingFactor: false), Int(aggregate))
    }
}
