// track-compare: swift-track side by side with what users would pick instead, in one run on one
// machine. Run from the repository root with `make compare`; writes BENCHMARKS.md.
//
//   track-compare [--runs N] [--quick]      measure and print the table
//   track-compare worker SYSTEM PATH POINTS TRIAL   (internal: one writer process of workload c)
import Foundation
import TrackLog

// MARK: - Workloads

/// A noisy decaying value, as a loss curve.
struct Curve {
    var state: UInt64
    init(seed: Int) { state = 0x9E37_79B9_7F4A_7C15 &+ UInt64(seed) }
    mutating func next(_ step: Int) -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let noise = (Double(state >> 40) / Double(1 << 24) - 0.5) * 0.02
        return Double(Float(2.3 * exp(-Double(step) / 300_000) * (1 + noise) + 0.05))
    }
}

/// Feeds workload (a): one trial, one scalar metric per step. `commitEvery` > 0 makes it (e).
func runSingleMetric(_ store: MetricStore, points: Int, trial: Int = 0, commitEvery: Int = 0) throws {
    var curve = Curve(seed: trial)
    var call = [Point(trial: trial, metric: 0, step: 0, value: 0)]
    for step in 0..<points {
        call[0].step = step
        call[0].value = curve.next(step)
        try store.log(call[...])
        if commitEvery > 0 && (step + 1) % commitEvery == 0 { try store.commit() }
    }
    try store.commit()
}

/// Feeds workload (b): 16 trials × 4 metrics per step, interleaved as a sweep logs them.
func runSweep(_ store: MetricStore, steps: Int) throws {
    var curves = (0..<16).map { Curve(seed: $0) }
    var call = (0..<4).map { Point(trial: 0, metric: $0, step: 0, value: 0) }
    for step in 0..<steps {
        for trial in 0..<16 {
            let v = curves[trial].next(step)
            for m in 0..<4 {
                call[m].trial = trial
                call[m].step = step
                call[m].value = m == 0 ? v : v / Double(m + 1)
            }
            try store.log(call[...])
        }
    }
    try store.commit()
}

let systems: [String: MetricStore.Type] = [
    "swift-track": SwiftTrackStore.self,
    "sqlite": SQLiteStore.self,
    "sqlite-batched": SQLiteBatchedStore.self,
    "fileprotocol": FileProtocolStore.self,
    "jsonl": JSONLinesStore.self,
]

func storePath(_ directory: String, _ key: String) -> String {
    directory + "/" + key + (key == "swift-track" ? ".db" : key == "jsonl" ? ".jsonl" : key == "fileprotocol" ? ".json" : ".sqlite")
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

// MARK: - Worker mode (workload c)

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.first == "worker" {
    guard arguments.count == 5, let type = systems[arguments[1]], let points = Int(arguments[3]), let trial = Int(arguments[4]) else {
        FileHandle.standardError.write(Data("usage: track-compare worker SYSTEM PATH POINTS TRIAL\n".utf8))
        exit(2)
    }
    do {
        let store = try type.init(path: arguments[2])
        try runSingleMetric(store, points: points, trial: trial)
        try store.close()
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("worker \(arguments[1]): \(error)\n".utf8))
        exit(1)
    }
}

// MARK: - Measurement

let quick = arguments.contains("--quick")
let runs = arguments.firstIndex(of: "--runs").flatMap { Int(arguments[$0 + 1]) } ?? (quick ? 1 : 3)
let scale = quick ? 10 : 1

/// One row of the table.
struct Row {
    var workload: String
    var system: String
    var points: Int
    var pointsPerSecond: Double
    var bytesPerPoint: Double?
    var readBackSeconds: Double?
    var note: String = ""
}

var rows: [Row] = []
let scratch = NSTemporaryDirectory() + "track-compare-\(getpid())"

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func progress(_ text: String) {
    FileHandle.standardError.write(Data("… \(text)\n".utf8))
}

/// Runs `body` on a fresh store of `key` `runs` times; records the medians.
func measure(_ workload: String, _ key: String, points: Int, repeats: Int = runs, note: String = "", readBack: Bool = false,
             _ body: (MetricStore) throws -> Void) throws {
    progress("\(workload): \(systems[key]!.systemName), \(points) points × \(repeats)")
    var times: [Double] = [], sizes: [Double] = [], reads: [Double] = []
    for run in 0..<repeats {
        let directory = scratch + "/\(key)-\(run)-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = storePath(directory, key)
        let store = try systems[key]!.init(path: path)
        times.append(try seconds { try body(store) })
        try store.close()
        sizes.append(Double(diskBytes(path)) / Double(points))
        if readBack {
            var count = 0
            reads.append(try seconds { count = try systems[key]!.readBack(path: path) })
            precondition(count == points, "\(key) read back \(count) points, \(points) were written")
        }
    }
    rows.append(Row(workload: workload, system: systems[key]!.systemName, points: points, pointsPerSecond: Double(points) / median(times),
                    bytesPerPoint: median(sizes), readBackSeconds: reads.isEmpty ? nil : median(reads), note: note))
}

/// Workload (c): `processes` writer processes of `points` each, at once, on one store.
func measureProcesses(_ key: String, processes: Int, points: Int, repeats: Int = runs) throws {
    progress("(c) \(processes) processes: \(systems[key]!.systemName), \(points) points each × \(repeats)")
    var times: [Double] = [], sizes: [Double] = []
    for run in 0..<repeats {
        let directory = scratch + "/\(key)-c\(run)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = storePath(directory, key)
        if key != "swift-track" { try systems[key]!.init(path: path).close() }  // create it before the race
        times.append(try seconds {
            let workers = try (0..<processes).map { i -> Process in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
                p.arguments = ["worker", key, path, String(points), String(i)]
                try p.run()
                return p
            }
            for w in workers {
                w.waitUntilExit()
                precondition(w.terminationStatus == 0, "a \(key) worker failed")
            }
        })
        sizes.append(Double(diskBytes(key == "swift-track" ? path : path)) / Double(points * processes))
    }
    rows.append(Row(workload: "(c) \(processes) processes × 1 metric", system: systems[key]!.systemName, points: points * processes,
                    pointsPerSecond: Double(points * processes) / median(times), bytesPerPoint: median(sizes), readBackSeconds: nil))
}

do {
    let a = 1_000_000 / scale
    let sweepSteps = 100_000 / scale
    // (a) one trial, one metric per step.
    try measure("(a) 1 trial × 1 metric", "swift-track", points: a) { try runSingleMetric($0, points: a) }
    try measure("(a) 1 trial × 1 metric", "sqlite-batched", points: a) { try runSingleMetric($0, points: a) }
    try measure("(a) 1 trial × 1 metric", "sqlite", points: a / 10, note: "measured on \(a / 10) points") { try runSingleMetric($0, points: a / 10) }
    try measure("(a) 1 trial × 1 metric", "jsonl", points: a) { try runSingleMetric($0, points: a) }
    // track's FileProtocol strategy rewrites everything on every call: its cost grows with the data.
    for n in [1_000, 3_000, 10_000] {
        try measure("(a) 1 trial × 1 metric", "fileprotocol", points: n, repeats: n >= 10_000 ? 1 : runs, note: "\(n) points") { try runSingleMetric($0, points: n) }
        try measure("(a) 1 trial × 1 metric", "swift-track", points: n, note: "\(n) points") { try runSingleMetric($0, points: n) }
    }
    // (b) a sweep: 16 trials × 4 metrics per step; (d) reading every series back.
    let b = 16 * 4 * sweepSteps
    for key in ["swift-track", "sqlite-batched", "jsonl"] {
        try measure("(b) 16 trials × 4 metrics", key, points: b, readBack: true) { try runSweep($0, steps: sweepSteps) }
    }
    // (c) four processes at once.
    try measureProcesses("swift-track", processes: 4, points: a)
    try measureProcesses("sqlite-batched", processes: 4, points: a / 4)
    try measureProcesses("jsonl", processes: 4, points: a)
    try measureProcesses("fileprotocol", processes: 4, points: 500, repeats: 1)
    // (e) workload (a) made durable every 1,000 points.
    try measure("(e) (a) + commit every 1,000", "swift-track", points: a) { try runSingleMetric($0, points: a, commitEvery: 1000) }
    try measure("(e) (a) + commit every 1,000", "sqlite-batched", points: a) { try runSingleMetric($0, points: a, commitEvery: 1000) }
    try measure("(e) (a) + commit every 1,000", "jsonl", points: a) { try runSingleMetric($0, points: a, commitEvery: 1000) }
} catch {
    FileHandle.standardError.write(Data("track-compare: \(error)\n".utf8))
    exit(1)
}
try? FileManager.default.removeItem(atPath: scratch)

// MARK: - Report

func format(_ v: Double) -> String {
    if v >= 1e6 { return String(format: "%.1f M", v / 1e6) }
    if v >= 1e3 { return String(format: "%.1f k", v / 1e3) }
    return String(format: "%.0f", v)
}

/// swift-track's row for the same workload (and the same point count, for the FileProtocol series).
func reference(_ row: Row) -> Row? {
    rows.first { $0.system == SwiftTrackStore.systemName && $0.workload == row.workload && ($0.note == row.note || row.note.hasPrefix("measured")) }
}

var table = "| workload | system | points | points/s | bytes/point on disk | read back (d) | swift-track faster by | size vs swift-track |\n"
table += "|---|---|---:|---:|---:|---:|---:|---:|\n"
for row in rows {
    let ref = reference(row)
    let speed = ref.map { String(format: "%.1f×", $0.pointsPerSecond / row.pointsPerSecond) } ?? "-"
    let size = (ref?.bytesPerPoint).flatMap { r in row.bytesPerPoint.map { String(format: "%.1f×", $0 / r) } } ?? "-"
    table += "| \(row.workload)\(row.note.isEmpty ? "" : " (\(row.note))") | \(row.system) | \(row.points) | \(format(row.pointsPerSecond)) | \(row.bytesPerPoint.map { String(format: "%.1f", $0) } ?? "-") | \(row.readBackSeconds.map { String(format: "%.2f s", $0) } ?? "-") | \(row.system == SwiftTrackStore.systemName ? "-" : speed) | \(row.system == SwiftTrackStore.systemName ? "-" : size) |\n"
}

// The targets of issue 6, checked on this run.
func row(_ workload: String, _ system: String, _ note: String = "") -> Row? {
    rows.first { $0.workload == workload && $0.system == system && (note.isEmpty || $0.note == note) }
}
var targets = ""
func target(_ text: String, _ met: Bool, _ detail: String) { targets += "- \(met ? "met" : "NOT met"): \(text) (\(detail))\n" }
if let st = row("(a) 1 trial × 1 metric", SwiftTrackStore.systemName), let sq = row("(a) 1 trial × 1 metric", SQLiteBatchedStore.systemName) {
    let ratio = st.pointsPerSecond / sq.pointsPerSecond
    target("at least 10× the points per second of SQLite batched 1,000 points per transaction, in fewer bytes", ratio >= 10 && (st.bytesPerPoint ?? 0) < (sq.bytesPerPoint ?? 0),
           String(format: "%.1f× faster; %.1f vs %.1f bytes per point", ratio, st.bytesPerPoint ?? 0, sq.bytesPerPoint ?? 0))
}
if let st = row("(a) 1 trial × 1 metric", SwiftTrackStore.systemName, "10000 points"), let fp = row("(a) 1 trial × 1 metric", FileProtocolStore.systemName, "10000 points"),
   let fp1 = row("(a) 1 trial × 1 metric", FileProtocolStore.systemName, "1000 points"), let st1 = row("(a) 1 trial × 1 metric", SwiftTrackStore.systemName, "1000 points"),
   let stBig = row("(a) 1 trial × 1 metric", SwiftTrackStore.systemName) {
    let ratio = st.pointsPerSecond / fp.pointsPerSecond
    target("at 10,000 points, at least 1,000× faster than the FileProtocol strategy", ratio >= 1000, String(format: "%.0f×", ratio))
    target("swift-track's cost per point stays flat as points grow while the baseline's grows",
           fp.pointsPerSecond < fp1.pointsPerSecond / 3 && stBig.pointsPerSecond > st1.pointsPerSecond / 2,
           String(format: "FileProtocol %.0f → %.0f points/s from 1,000 to 10,000 points; swift-track %@ → %@ from 1,000 to %d", fp1.pointsPerSecond, fp.pointsPerSecond, format(st1.pointsPerSecond), format(stBig.pointsPerSecond), stBig.points))
}
if let st = row("(a) 1 trial × 1 metric", SwiftTrackStore.systemName), let jl = row("(a) 1 trial × 1 metric", JSONLinesStore.systemName) {
    let size = (jl.bytesPerPoint ?? 0) / (st.bytesPerPoint ?? 1)
    target("faster than a JSON-lines file and at least 5× smaller on disk", st.pointsPerSecond > jl.pointsPerSecond && size >= 5,
           String(format: "%.1f× faster, %.1f× smaller", st.pointsPerSecond / jl.pointsPerSecond, size))
}

func shell(_ command: String) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let pipe = Pipe()
    p.standardOutput = pipe
    try? p.run()
    p.waitUntilExit()
    return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

let machine = """
- CPU: \(shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")), \(ProcessInfo.processInfo.activeProcessorCount) cores
- memory: \(ProcessInfo.processInfo.physicalMemory / (1 << 30)) GiB
- system: \(shell("uname -sr")); \(shell("swift --version 2>&1 | head -1"))
- SQLite \(shell("sqlite3 --version | cut -d' ' -f1")), WAL mode, synchronous=NORMAL
"""

print(table)
print(targets)

let report = """
# Benchmarks: swift-track and the alternatives

Measured in one run of `make compare` (release build) on \(ISO8601DateFormatter().string(from: Date())), each figure the median of \(runs) runs
(the 10,000-point FileProtocol run and workload (c) for it once: they are slow by nature).

Machine:
\(machine)

Workloads: (a) one trial logging one scalar metric per step; (b) 16 trials × 4 metrics per step,
interleaved as a hyper-parameter sweep logs them; (c) 4 processes logging workload (a) at once into
one store; (d) reading back every series of (b) (the "read back" column of the (b) rows); (e)
workload (a) made durable every 1,000 points (swift-track `commit()`, SQLite's transaction commit,
fsync of the JSON-lines file).

Systems: swift-track's `file://` backend through the client API (metric handles for one metric,
`logMetrics` dictionaries for four); SQLite through libsqlite3, one row per point; the strategy of
`track`'s `FileProtocol` (lock, read and parse the whole JSON, change, write a temporary file,
rename) for every call; a buffered JSON-lines file. "swift-track faster by" divides swift-track's
points per second by the system's in the same workload; "size vs swift-track" divides the
system's bytes per point by swift-track's.

\(table)
## Targets

\(targets)
Command: `make compare` (which runs `cd Benchmarks && swift run -c release track-compare`).
"""
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
if !quick {
    try? Data(report.utf8).write(to: root.appendingPathComponent("BENCHMARKS.md"))
    FileHandle.standardError.write(Data("wrote \(root.appendingPathComponent("BENCHMARKS.md").path)\n".utf8))
}
