import Benchmark
import Foundation
import Histogram
import Track
import TrackLog
import TrackStore
import TrackModel

// The event-log targets of issue 3, each measured here (release build, this machine):
//   append via a metric handle        >= 20 M points/s, no heap allocation per point
//   end to end, buffered              >= 5 M points/s (compression and writes included)
//   appendMetrics, two-entry dict     >= 2 M calls/s (the logTrialMetrics path)
//   p99.9 append latency, flusher busy <= 5 us
//   bytes per point on disk           <= 12 (synthetic loss curve)
//   replay (read, decompress, decode) >= 20 M events/s

/// A fresh directory for one benchmark's database.
func scratchDatabase(_ name: String) -> String {
    let path = NSTemporaryDirectory() + "swift-track-bench/\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDatabase(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func quietOptions() -> WriterOptions {
    var options = WriterOptions()
    options.reporter = { _ in }
    return options
}

/// The synthetic loss curve: a noisy decaying value, one point per step.
struct LossCurve {
    var state: UInt64 = 0x2545_F491_4F6C_DD1D
    mutating func value(_ step: Int) -> Double {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let noise = Double(state >> 11) / Double(1 << 53) * 0.02
        return 2.3 * exp(-Double(step) / 200_000) + 0.05 + noise
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 1,
        scalingFactor: .mega,
        maxDuration: .seconds(5),
        maxIterations: 20
    )

    materializerBenchmarks()
    serverBenchmarks()
    sqlBenchmarks()

    // MARK: Append on the caller's thread

    var handleWriter: LogWriter?
    var handleSlot: SeriesSlot?
    var handlePath = ""
    Benchmark("append via metric handle (target >= 20 M points/s, 0 mallocs per point)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .mega,
                                   setup: {
                                       handlePath = scratchDatabase("handle")
                                       handleWriter = try LogWriter.open(database: handlePath, options: quietOptions())
                                       handleSlot = handleWriter!.slot(subject: String(repeating: "a", count: 64) + "_0", name: "loss")
                                   },
                                   teardown: {
                                       try handleWriter?.close()
                                       handleWriter = nil
                                       removeDatabase(handlePath)
                                   })) { benchmark in
        let writer = handleWriter!, slot = handleSlot!
        var curve = LossCurve()
        var step = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try writer.append(slot, step: Int64(step), value: curve.value(step))
            step += 1
        }
        benchmark.stopMeasurement()
    }

    // MARK: Through the client API

    var clientPath = ""
    var clientHandle: MetricHandle?
    var clientBackend: (any TrackProtocol)?
    Benchmark("append via the Track client's metric handle on file:// (target >= 20 M points/s)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .mega,
                                   setup: {
                                       clientPath = scratchDatabase("client")
                                       let client = try TrackClient(backend: "file://\(clientPath)")
                                       try client.setProject(name: "bench")
                                       clientHandle = try client.newTrial(name: "run").metric("loss")
                                       clientBackend = client.backend
                                   },
                                   teardown: {
                                       try clientBackend?.close()
                                       clientBackend = nil
                                       clientHandle = nil
                                       removeDatabase(clientPath)
                                   })) { benchmark in
        let handle = clientHandle!
        var curve = LossCurve()
        var step = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try handle.log(curve.value(step), step: Int64(step))
            step += 1
        }
        benchmark.stopMeasurement()
    }

    // MARK: End to end

    Benchmark("end to end buffered, 1 M points + commit (target >= 5 M points/s)",
              configuration: .init(metrics: [.wallClock, .throughput], scalingFactor: .mega)) { benchmark in
        let path = scratchDatabase("e2e")
        defer { removeDatabase(path) }
        let writer = try LogWriter.open(database: path, options: quietOptions())
        let slot = writer.slot(subject: String(repeating: "b", count: 64) + "_0", name: "loss")
        var curve = LossCurve()
        var step = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try writer.append(slot, step: Int64(step), value: curve.value(step))
            step += 1
        }
        try writer.commit()
        benchmark.stopMeasurement()
        try writer.close()
    }

    // MARK: Two metrics per call

    var pairWriter: LogWriter?
    var pairPath = ""
    Benchmark("appendMetrics, a two-entry metrics dictionary as logTrialMetrics passes it (target >= 2 M calls/s)",
              configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], scalingFactor: .mega,
                                   setup: {
                                       pairPath = scratchDatabase("pair")
                                       pairWriter = try LogWriter.open(database: pairPath, options: quietOptions())
                                   },
                                   teardown: {
                                       try pairWriter?.close()
                                       pairWriter = nil
                                       removeDatabase(pairPath)
                                   })) { benchmark in
        let writer = pairWriter!
        let trial = String(repeating: "c", count: 64) + "_0"
        var curve = LossCurve()
        var step = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let v = curve.value(step)
            try writer.appendMetrics(trial: trial, step: .int(Int64(step)), ["loss": .double(v), "accuracy": .double(1 - v / 3)])
            step += 1
        }
        benchmark.stopMeasurement()
    }

    // MARK: Latency

    Benchmark("append latency with the flusher busy (target p99.9 <= 5000 ns)",
              configuration: .init(metrics: [.custom("p50 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false),
                                             .custom("p99 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false),
                                             .custom("p99.9 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false),
                                             .custom("max append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false)],
                                   scalingFactor: .one, maxIterations: 5)) { benchmark in
        let path = scratchDatabase("latency")
        defer { removeDatabase(path) }
        var options = quietOptions()
        options.frameRawBytesTarget = 64 << 10  // frequent frames keep the flusher busy
        let writer = try LogWriter.open(database: path, options: options)
        let slot = writer.slot(subject: String(repeating: "d", count: 64) + "_0", name: "loss")
        var histogram = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        var curve = LossCurve()
        var start = timespec(), end = timespec()
        for step in 0..<2_000_000 {
            let v = curve.value(step)
            clock_gettime(CLOCK_MONOTONIC, &start)
            try writer.append(slot, step: Int64(step), value: v)
            clock_gettime(CLOCK_MONOTONIC, &end)
            let ns = UInt64((end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec))
            histogram.record(ns)
        }
        try writer.close()
        benchmark.measurement(.custom("p50 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false), Int(histogram.valueAtPercentile(50)))
        benchmark.measurement(.custom("p99 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false), Int(histogram.valueAtPercentile(99)))
        benchmark.measurement(.custom("p99.9 append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false), Int(histogram.valueAtPercentile(99.9)))
        benchmark.measurement(.custom("max append latency (ns)", polarity: .prefersSmaller, useScalingFactor: false), Int(histogram.max))
    }

    // MARK: Size on disk

    Benchmark("bytes on disk per point x1000, synthetic loss curve (target <= 12000)",
              configuration: .init(metrics: [.custom("bytes per point x1000", polarity: .prefersSmaller, useScalingFactor: false)],
                                   scalingFactor: .one, maxIterations: 3)) { benchmark in
        let path = scratchDatabase("size")
        defer { removeDatabase(path) }
        let writer = try LogWriter.open(database: path, options: quietOptions())
        let slot = writer.slot(subject: String(repeating: "e", count: 64) + "_0", name: "loss")
        var curve = LossCurve()
        let count = 2_000_000
        for step in 0..<count { try writer.append(slot, step: Int64(step), value: curve.value(step)) }
        try writer.close()
        var bytes: Int64 = 0
        let layout = DatabaseLayout(root: path)
        for stream in layout.streamNames() {
            for name in FileSystem.list(layout.streamDirectory(stream)) {
                let attributes = try FileManager.default.attributesOfItem(atPath: layout.streamDirectory(stream) + "/" + name)
                bytes += (attributes[.size] as? Int64) ?? 0
            }
        }
        benchmark.measurement(.custom("bytes per point x1000", polarity: .prefersSmaller, useScalingFactor: false), Int(bytes * 1000 / Int64(count)))
    }

    // MARK: Replay

    var replayPath = ""
    let replayEvents = 5_000_000
    Benchmark("replay: read, decompress, decode (target >= 20 M events/s)",
              configuration: .init(metrics: [.wallClock, .custom("replayed events per second", polarity: .prefersLarger, useScalingFactor: false)],
                                   scalingFactor: .one, maxIterations: 10,
                                   setup: {
                                       replayPath = scratchDatabase("replay")
                                       let writer = try LogWriter.open(database: replayPath, options: quietOptions())
                                       let slots = (0..<4).map { writer.slot(subject: "\($0)" + String(repeating: "f", count: 63) + "_0", name: "loss") }
                                       var curve = LossCurve()
                                       for step in 0..<replayEvents { try writer.append(slots[step % 4], step: Int64(step / 4), value: curve.value(step)) }
                                       try writer.close()
                                   },
                                   teardown: { removeDatabase(replayPath) })) { benchmark in
        let started = DispatchTime.now().uptimeNanoseconds
        let reader = try LogReader(database: replayPath)
        var events = 0
        try reader.forEachFrame { events += $0.frame.events.count }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        precondition(events == replayEvents)
        benchmark.measurement(.custom("replayed events per second", polarity: .prefersLarger, useScalingFactor: false), Int(Double(events) / seconds))
    }
}
