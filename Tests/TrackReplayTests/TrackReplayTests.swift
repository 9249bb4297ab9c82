import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import TrackTestSupport
import TrackLog
import TrackModel

/// The outcome of one run of the tool.
struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built `track-replay` with `arguments`.
func trackReplay(_ arguments: [String]) throws -> RunResult { try runTool("track-replay", arguments) }

/// Runs the built tool `name` (next to the test bundle) with `arguments`.
func runTool(_ name: String, _ arguments: [String]) throws -> RunResult {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var tool = ".build/debug/\(name)"
    while url.path != "/" {
        let candidate = url.deletingLastPathComponent().appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { tool = candidate.path; break }
        url = url.deletingLastPathComponent()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let out = Pipe()
    // Standard error goes to a file, standard output through a pipe read until the end: a large
    // output cannot block the process.
    let errPath = NSTemporaryDirectory() + "track-replay-stderr-\(UUID().uuidString)"
    FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = out
    process.standardError = errHandle
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let exit = process.waitForExit()
    try errHandle.close()
    let errData = FileManager.default.contents(atPath: errPath) ?? Data()
    return RunResult(status: exit.status, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
}

final class Scratch: @unchecked Sendable {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "swift-track-replay-tests/\(UUID().uuidString.prefix(10))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func sharedFile(_ name: String) -> String {
    if let dir = ProcessInfo.processInfo.environment["TRACK_SHARED_DATA"] { return dir + "/" + name }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.deletingLastPathComponent().appendingPathComponent("shared/data/\(name)").path
}

/// A demo database, made once for the suite.
let demoDatabase: String = {
    let dir = NSTemporaryDirectory() + "swift-track-replay-tests/demo-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let db = dir + "/demo.db"
    _ = try? trackReplay(["demo", db, "--trials", "3", "--epochs", "2", "--steps", "500"])
    return db
}()

@Suite("track-replay", .serialized)
struct TrackReplayTests {
    @Test("every subcommand has --help", arguments: ["demo", "summary", "show", "metrics", "stats", "tail", "plot", "export", "import", "verify", "compact", "synth"])
    func help(_ command: String) throws {
        let r = try trackReplay([command, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: track-replay \(command)"))
    }

    @Test("demo logs, replays and prints the summary")
    func demo() throws {
        let dir = Scratch()
        let r = try trackReplay(["demo", dir.path + "/d.db", "--trials", "2", "--epochs", "2", "--steps", "200"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(" metric points into 2 trials"))
        #expect(r.stdout.contains("replayed"))
        #expect(r.stdout.contains("trials: 2"))
        #expect(r.stdout.contains("Exception") && r.stdout.contains("Completed"), "the first learning rate diverges")
    }

    @Test("summary, show, metrics and stats on the demo database")
    func inspect() throws {
        let summary = try trackReplay(["summary", demoDatabase])
        #expect(summary.status == 0, "\(summary.stderr)")
        #expect(summary.stdout.contains("projects: 1") && summary.stdout.contains("trials: 3") && summary.stdout.contains("lr-sweep"))
        let uid = try #require(summary.stdout.split(separator: "\n").first { $0.contains("Completed") }?.split(separator: " ").first.map(String.init))
        let prefix = String(uid.prefix(8))
        // By default each series is summarized; --points gives track's full serialization.
        let brief = try trackReplay(["show", demoDatabase, prefix])
        #expect(brief.status == 0, "\(brief.stderr)")
        let briefJSON = try JSON.decode(brief.stdout)
        #expect(briefJSON["metrics"]?["loss"]?["points"] == 1000 && briefJSON["metrics"]?["loss"]?["last_step"] == 999, "\(brief.stdout.prefix(600))")
        #expect(brief.stdout.split(separator: "\n").count < 200, "a summary, not 2,000 points")
        let show = try trackReplay(["show", demoDatabase, prefix, "--points"])
        #expect(show.status == 0, "\(show.stderr)")
        let trial = try Trial(trackJSON: try JSON.decode(show.stdout))
        #expect(trial.uid.hasPrefix(prefix) && trial.status == .completed)
        #expect(trial.metrics["loss"]?.count == 1000)
        let csv = try trackReplay(["metrics", demoDatabase, prefix, "loss", "--format", "csv"])
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first == "metric,step,value")
        #expect(lines.count == 1001)
        #expect(lines[1].hasPrefix("loss,0,"))
        let json = try trackReplay(["metrics", demoDatabase, prefix, "--format", "json"])
        let parsed = try JSON.decode(json.stdout)
        #expect(parsed["accuracy"]?.arrayValue?.count == 1000)
        #expect(parsed["loss"]?.arrayValue?.first?["step"] == 0)
        let stats = try trackReplay(["stats", demoDatabase])
        #expect(stats.status == 0)
        #expect(stats.stdout.contains("streams: 1"))
        #expect(stats.stdout.contains("metric_point"))
        #expect(stats.stdout.contains("compression ratio"))
        #expect(stats.stdout.contains("oldest event: 20"))
    }

    @Test("verify and compact on a demo database, which reads the same afterwards")
    func verifyAndCompactDemo() throws {
        let dir = Scratch()
        let db = dir.path + "/demo.db"
        #expect(try trackReplay(["demo", db, "--trials", "2", "--epochs", "2", "--steps", "300"]).status == 0)
        let before = try trackReplay(["summary", db]).stdout
        let verify = try trackReplay(["verify", db])
        #expect(verify.status == 0 && verify.stdout.contains("no damage"))
        // One segment: nothing to fold, nothing written, unless forced; then the growth is said as such.
        let skipped = try trackReplay(["compact", db])
        #expect(skipped.status == 0 && skipped.stdout.contains("nothing to compact") && skipped.stdout.contains("--force"), "\(skipped.stdout)")
        #expect(!FileManager.default.fileExists(atPath: db + "/MANIFEST") && !FileManager.default.fileExists(atPath: db + "/snapshots"))
        let compact = try trackReplay(["compact", db, "--force"])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(compact.stdout.contains("snapshot generation 1"))
        #expect(compact.stdout.contains(" more: the snapshot is written next to the segments it covers") && !compact.stdout.contains("smaller"), "\(compact.stdout)")
        #expect(try trackReplay(["verify", db]).status == 0)
        #expect(try trackReplay(["summary", db]).stdout == before)
    }

    @Test("compact on a SQL backend's buffer folds only what it has shipped")
    func compactBuffer() throws {
        let dir = Scratch()
        let db = dir.path + "/buffer"
        #expect(try trackReplay(["synth", db, "--points", "20000", "--segment-bytes", "4096", "--commit-every", "1000"]).status == 0)
        // Shipped up to some frames in: SHIP.lock and SHIP.position as a shipper leaves them.
        let shipper = try LogTailer(database: db), twin = try LogTailer(database: db)
        _ = try shipper.poll(maxFrames: 12)
        _ = try twin.poll(maxFrames: 12)
        FileManager.default.createFile(atPath: db + "/" + ConsumerPosition.lockName, contents: nil)
        try ConsumerPosition.write(shipper.position, to: db)
        let unshipped = try twin.poll().flatMap { f in f.frame.events.map(\.sequence) }
        #expect(unshipped.count > 1000)
        let before = try trackReplay(["summary", db]).stdout
        let compact = try trackReplay(["compact", db])
        #expect(compact.status == 0, "\(compact.stderr)")
        #expect(compact.stdout.contains("buffer") && compact.stdout.contains("snapshot generation 1"))
        // What was not shipped is still in the log, where the next shipper reads it.
        let next = try LogTailer(database: db, start: ConsumerPosition.read(db).map { StreamWatermark(stream: $0.key, sequence: 0, base: $0.value.base, offset: $0.value.offset) })
        #expect(try next.poll().flatMap { f in f.frame.events.map(\.sequence) } == unshipped)
        #expect(try trackReplay(["summary", db]).stdout == before)
    }

    @Test("tail prints one line per event, and --follow sees new events")
    func tail() throws {
        let r = try trackReplay(["tail", demoDatabase])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count > 5000)
        #expect(lines.contains { $0.contains(" project_created demo") })
        #expect(lines.contains { $0.contains(" metric ") && $0.contains(" loss step=0 ") })
        let limited = try trackReplay(["tail", demoDatabase, "--follow", "--max-events", "5"])
        #expect(limited.status == 0)
        #expect(limited.stdout.split(separator: "\n").count == 5)
    }

    @Test("plot writes an SVG with axes, ticks, labels, a legend and one line per trial")
    func plot() throws {
        let dir = Scratch()
        let trials = try trackReplay(["summary", demoDatabase]).stdout.split(separator: "\n")
            .filter { $0.contains("_0 ") || $0.contains("_1 ") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        #expect(trials.count == 3)
        let out = dir.path + "/loss.svg"
        let r = try trackReplay(["plot", demoDatabase] + trials.map { String($0.prefix(10)) } + ["--metric", "loss", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        let document = try XMLDocument(data: Data(svg.utf8))
        let root = try #require(document.rootElement())
        #expect(root.name == "svg")
        #expect(try document.nodes(forXPath: "//*[local-name()='polyline']").count == 3)
        #expect(try document.nodes(forXPath: "//*[local-name()='g'][@class='legend']/*[local-name()='text']").count == 3)
        #expect(try document.nodes(forXPath: "//*[local-name()='g'][@class='tick-labels']/*[local-name()='text']").count >= 6)
        #expect(svg.contains(">step</text>") && svg.contains(">loss</text>"))
        #expect(svg.contains(">mlp lr=0.1</text>"), "curves are labelled by the parameter that differs")
        #expect(try trackReplay(["plot", demoDatabase, trials[0], "--metric", "nope", "-o", out]).status != 0)
    }

    @Test("PlotRoughEdges: a trial without the metric is left out with a note; 13 curves get 13 colours and a legend that fits")
    func plotRoughEdges() throws {
        let dir = Scratch()
        let db = dir.path + "/sweep.db"
        #expect(try trackReplay(["synth", db, "--trials", "13", "--points", "50"]).status == 0)
        #expect(try trackReplay(["synth", db, "--prefix", "empty", "--trials", "1", "--points", "0"]).status == 0)
        let out = dir.path + "/sweep.svg"
        let r = try trackReplay(["plot", db] + (0..<13).map { "synth-\($0)_0" } + ["empty-0_0", "--metric", "loss", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("empty-0_0") && r.stderr.contains("has no metric 'loss'") && r.stderr.contains("left out"), "\(r.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        _ = try XMLDocument(data: Data(svg.utf8))  // well-formed
        /// The values of attribute `name` in the elements whose text starts with `prefix`.
        func attributes(_ prefix: String, _ name: String) -> [String] {
            svg.components(separatedBy: "\n").filter { $0.hasPrefix(prefix) }.compactMap { line in
                guard let start = line.range(of: " \(name)=\"") else { return nil }
                return String(line[start.upperBound...].prefix { $0 != "\"" })
            }
        }
        let colours = attributes("<polyline", "stroke")
        #expect(colours.count == 13 && Set(colours).count == 13, "\(colours)")
        let height = try #require(attributes("<svg", "height").first.flatMap(Double.init))
        let legendRows = attributes("<text x=\"\(String(format: "%.2f", 900.0 - 230 + 20 + 30))\"", "y").compactMap(Double.init)
        #expect(legendRows.count == 13 && legendRows.allSatisfy { $0 < height }, "the legend fits: \(legendRows) in \(height)")
        #expect(try trackReplay(["plot", db, "empty-0_0", "--metric", "loss", "-o", out]).status != 0, "nothing to draw is an error")
    }

    @Test("PlotPanels: --metric twice draws two panels (it drew only the last); --log, --smooth and --x time")
    func plotPanels() throws {
        let dir = Scratch()
        let trials = try trackReplay(["summary", demoDatabase]).stdout.split(separator: "\n")
            .filter { $0.contains("_0 ") || $0.contains("_1 ") }.compactMap { $0.split(separator: " ").first.map(String.init) }
        let out = dir.path + "/both.svg"
        let r = try trackReplay(["plot", demoDatabase] + trials + ["--metric", "loss", "--metric", "accuracy", "-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        let document = try XMLDocument(data: Data(contentsOf: URL(fileURLWithPath: out)))
        let panels = try document.nodes(forXPath: "//*[local-name()='g'][@class='panel']/@data-metric").compactMap(\.stringValue)
        #expect(panels == ["loss", "accuracy"])
        #expect(try document.nodes(forXPath: "//*[local-name()='polyline']").count == 2 * trials.count)
        #expect(try document.nodes(forXPath: "//*[local-name()='g'][@class='legend']/*[local-name()='text']").count == trials.count)
        // Smoothing changes the curve, not the number of curves; a weight of 1 is refused.
        let plain = dir.path + "/plain.svg", smooth = dir.path + "/smooth.svg"
        #expect(try trackReplay(["plot", demoDatabase, trials[0], "--metric", "loss", "-o", plain]).status == 0)
        #expect(try trackReplay(["plot", demoDatabase, trials[0], "--metric", "loss", "--smooth", "0.9", "-o", smooth]).status == 0)
        func line(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n").first { $0.hasPrefix("<polyline") } ?? "" }
        #expect(try line(plain) != line(smooth) && !line(smooth).isEmpty)
        #expect(try trackReplay(["plot", demoDatabase, trials[0], "--metric", "loss", "--smooth", "1", "-o", smooth]).status != 0)
        // A log scale labels decades; time on x says so.
        let log = dir.path + "/log.svg"
        #expect(try trackReplay(["plot", demoDatabase, trials[0], "--metric", "loss", "--log", "--x", "time", "-o", log]).status == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains(">loss (log)</text>") && text.contains(">seconds since the first point</text>"))
    }

    @Test("export, import into a new database, export again: the same file")
    func exportImport() throws {
        let dir = Scratch()
        let first = dir.path + "/first.json"
        #expect(try trackReplay(["export", demoDatabase, "--format", "track-json", "-o", first]).status == 0)
        let imported = dir.path + "/imported.db"
        let r = try trackReplay(["import", first, imported])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("imported 1 projects, 1 groups, 3 trials"))
        let second = dir.path + "/second.json"
        #expect(try trackReplay(["export", imported, "-o", second]).status == 0)
        let a = try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: first))))
        let b = try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: second))))
        #expect(a == b)
        // Importing again into the same database is refused and changes nothing.
        let again = try trackReplay(["import", first, imported])
        #expect(again.status != 0 && again.stderr.contains("already holds"))
    }

    @Test("the reference databases of Python track import, show, plot and export back unchanged", arguments: ["small", "medium"])
    func pythonData(_ name: String) throws {
        let dir = Scratch()
        let db = dir.path + "/\(name).db"
        let r = try trackReplay(["import", sharedFile("track-json/\(name).json"), db])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try trackReplay(["summary", db])
        #expect(summary.status == 0)
        let out = dir.path + "/out.json"
        #expect(try trackReplay(["export", db, "-o", out]).status == 0)
        let original = try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: sharedFile("track-json/\(name).json")))))
        #expect(try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: out)))) == original)
        if name == "small" {
            let show = try trackReplay(["show", db, "735eb0710feb0f93cb27e78fec0516ba3b633991e220e5e4673fc1e17caa058d_1", "--points"])
            #expect(try Trial(trackJSON: try JSON.decode(show.stdout)).status == .suspended)
            let csv = try trackReplay(["metrics", db, "a36652e5", "lr_schedule"])
            #expect(csv.stdout == "metric,step,value\nlr_schedule,,0.01\nlr_schedule,5,0.005\n")
            let svg = dir.path + "/loss.svg"
            #expect(try trackReplay(["plot", db, "735eb0710feb0f93cb27e78fec0516ba3b633991e220e5e4673fc1e17caa058d_0", "2d1b731c", "--metric", "loss", "-o", svg]).status == 0)
        }
        let stats = try trackReplay(["stats", db])
        #expect(stats.status == 0 && stats.stdout.contains("trial_imported"))
        let tail = try trackReplay(["tail", db])
        #expect(tail.status == 0 && tail.stdout.contains(" trial_imported "))
        let verify = try trackReplay(["verify", db])
        #expect(verify.status == 0, "\(verify.stdout)")
        let compact = try trackReplay(["compact", db, "--force"])
        #expect(compact.status == 0 && compact.stdout.contains("before") && compact.stdout.contains("after"))
        #expect(try trackReplay(["summary", db]).stdout == summary.stdout)
    }

    @Test("verify finds a flipped byte, says where and what is lost, and exits non-zero")
    func verifyDamage() throws {
        let dir = Scratch()
        let db = dir.path + "/v.db"
        #expect(try trackReplay(["synth", db, "--points", "50000", "--commit-every", "5000"]).status == 0)
        #expect(try trackReplay(["verify", db]).status == 0)
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let segment = layout.segmentPath(stream, base: 0)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: segment)))
        let frames = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment).frames }
        try #require(frames.count > 3)
        bytes[Int(frames[1].offset) + 100] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let r = try trackReplay(["verify", db])
        #expect(r.status == 1)
        #expect(r.stdout.contains("DAMAGED \(segment) offset \(frames[1].offset)"))
        #expect(r.stdout.contains("events lost"))
        // Reading commands refuse the damaged frame with the same place.
        let summary = try trackReplay(["summary", db])
        #expect(summary.status != 0 && summary.stderr.contains("offset \(frames[1].offset)"))
    }

    @Test("TrialIdentifiers: what summary prints (PREFIX_REVISION) is what show and metrics accept, also between revisions")
    func trialIdentifiers() throws {
        let dir = Scratch()
        let db = dir.path + "/revisions.db"
        // Two runs of the demo: revisions _0 and _1 of the same trial.
        for _ in 0..<2 { #expect(try trackReplay(["demo", db, "--trials", "1", "--epochs", "1", "--steps", "50"]).status == 0) }
        let summary = try trackReplay(["summary", db])
        let ids = summary.stdout.split(separator: "\n").compactMap { line -> String? in
            let first = line.split(separator: " ").first.map(String.init) ?? ""
            return first.count == 14 && (first.hasSuffix("_0") || first.hasSuffix("_1")) ? first : nil
        }
        #expect(ids.count == 2, "\(summary.stdout)")
        for id in ids {
            let show = try trackReplay(["show", db, id, "--points"])
            #expect(show.status == 0, "show \(id): \(show.stderr)")
            if show.status == 0 {
                let trial = try Trial(trackJSON: try JSON.decode(show.stdout))
                #expect(trial.uid.hasPrefix(String(id.prefix(12))) && trial.uid.hasSuffix(String(id.suffix(2))))
            }
            #expect(try trackReplay(["metrics", db, id, "loss"]).status == 0)
        }
        // The bare prefix matches both revisions: the error says how to pick one.
        let ambiguous = try trackReplay(["show", db, String(ids[0].prefix(12))])
        #expect(ambiguous.status != 0 && ambiguous.stderr.contains("give the revision too, as in \(ids[0].prefix(12))_"), "\(ambiguous.stderr)")
    }

    @Test("CommandLineRoughEdges: --version, --max-events 0, a file as the database, NaN in JSON, synth's trials and its help")
    func commandLineRoughEdges() throws {
        let dir = Scratch()
        // --version on both tools.
        let version = try trackReplay(["--version"])
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == SwiftTrack.version, "\(version.stdout)\(version.stderr)")
        let server = try runTool("track-server", ["--version"])
        #expect(server.status == 0 && server.stdout.contains(SwiftTrack.version), "\(server.stdout)\(server.stderr)")
        // --max-events 0 prints nothing; a negative count is refused.
        let none = try trackReplay(["tail", demoDatabase, "--max-events", "0"])
        #expect(none.status == 0 && none.stdout.isEmpty, "\(none.stdout.prefix(200))")
        #expect(try trackReplay(["tail", demoDatabase, "--max-events", "-1"]).status != 0)
        // A file given as the database is named as such.
        let file = dir.path + "/plain.txt"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let notDir = try trackReplay(["summary", file])
        #expect(notDir.status != 0 && notDir.stderr.contains("is a file, not a database"), "\(notDir.stderr)")
        // NaN in JSON: a string by default (strict JSON), null or bare on request.
        let summary = try trackReplay(["summary", demoDatabase])
        let diverged = try #require(summary.stdout.split(separator: "\n").first { $0.contains("Exception") }?.split(separator: " ").first.map(String.init))
        let strict = try trackReplay(["metrics", demoDatabase, diverged, "loss", "--format", "json"])
        #expect(strict.status == 0 && strict.stdout.contains("\"NaN\"") && !strict.stdout.contains(": NaN"), "\(strict.stderr)")
        let nulls = try trackReplay(["metrics", demoDatabase, diverged, "loss", "--format", "json", "--non-finite", "null"])
        #expect(nulls.stdout.contains("\"value\" : null") || nulls.stdout.contains("\"value\": null"), "\(nulls.stdout.suffix(300))")
        let bare = try trackReplay(["metrics", demoDatabase, diverged, "loss", "--format", "json", "--non-finite", "bare"])
        #expect(bare.stdout.contains("NaN") && !bare.stdout.contains("\"NaN\""))
        // synth creates the trials it logs into, and prints what its help says.
        let db = dir.path + "/synth.db"
        let synth = try trackReplay(["synth", db, "--trials", "2", "--points", "20", "--commit-every", "10"])
        #expect(synth.status == 0, "\(synth.stderr)")
        let synthSummary = try trackReplay(["summary", db])
        #expect(synthSummary.stdout.contains("trials: 2") && synthSummary.stdout.contains("synth-1"), "\(synthSummary.stdout)")
        let help = try trackReplay(["synth", "--help"])
        #expect(help.stdout.contains("'committed <step> <sequence>'"))
        let committed = synth.stdout.split(separator: "\n").filter { $0.hasPrefix("committed ") }
        #expect(committed.count == 2 && committed.allSatisfy { $0.split(separator: " ").count == 3 } && committed.first?.split(separator: " ")[1] == "9")
    }

    @Test("TailFromTheEnd: -n N prints the last N events, --follow starts at the end, --trial and --type filter")
    func tailFromTheEnd() throws {
        let all = try trackReplay(["tail", demoDatabase]).stdout.split(separator: "\n")
        let last3 = try trackReplay(["tail", demoDatabase, "-n", "3"])
        #expect(last3.status == 0 && last3.stdout.split(separator: "\n") == Array(all.suffix(3)), "\(last3.stdout)\(last3.stderr)")
        // --follow without -n starts with the last 10 (not the whole log): stopped by --max-events.
        let followed = try trackReplay(["tail", demoDatabase, "--follow", "--max-events", "10"])
        #expect(followed.stdout.split(separator: "\n") == Array(all.suffix(10)))
        // Filters: only status changes, only one trial's events (by PREFIX_REVISION).
        let statuses = try trackReplay(["tail", demoDatabase, "--type", "status_set"]).stdout.split(separator: "\n")
        #expect(!statuses.isEmpty && statuses.allSatisfy { $0.contains(" status_set ") } && statuses.count == all.filter { $0.contains(" status_set ") }.count)
        let summary = try trackReplay(["summary", demoDatabase])
        let id = try #require(summary.stdout.split(separator: "\n").first { $0.contains("Completed") }?.split(separator: " ").first.map(String.init))
        let mine = try trackReplay(["tail", demoDatabase, "--trial", id, "--type", "metric"]).stdout.split(separator: "\n")
        #expect(mine.count == 2000 && mine.allSatisfy { $0.contains(" metric \(id.prefix(12))") }, "\(mine.count)")
        #expect(try trackReplay(["tail", demoDatabase, "--type", "nonsense"]).status != 0)
        // Times are ISO 8601 with microseconds, as the formatter printed them (to the millisecond).
        let time = String(all[0].split(separator: " ")[0])
        #expect(time.count == 27 && time.hasSuffix("Z") && time.hasPrefix("20"), "\(time)")
    }

    @Test("SweepRunsToldApart: summary shows the parameters that differ and the last values, selects with --where and sorts")
    func sweepRunsToldApart() throws {
        let summary = try trackReplay(["summary", demoDatabase])
        let rows = summary.stdout.split(separator: "\n").filter { $0.contains(" mlp ") }
        #expect(rows.count == 3)
        // The demo's runs differ by learning rate only: lr is shown, epochs and batch_size are not.
        #expect(rows.allSatisfy { $0.contains(" lr=") && !$0.contains("epochs=") && $0.contains("loss=") && $0.contains("accuracy=") }, "\(rows)")
        let completed = try trackReplay(["summary", demoDatabase, "--where", "{\"status\": \"Completed\"}"])
        #expect(completed.status == 0 && completed.stdout.contains("(selected)"), "\(completed.stderr)")
        #expect(completed.stdout.split(separator: "\n").filter { $0.contains(" mlp ") }.allSatisfy { $0.contains("Completed") })
        let sorted = try trackReplay(["summary", demoDatabase, "--sort", "lr", "--descending"]).stdout.split(separator: "\n").filter { $0.contains(" mlp ") }
        let lrs = sorted.compactMap { row in row.split(separator: " ").first { $0.hasPrefix("lr=") }.flatMap { Double($0.dropFirst(3)) } }
        #expect(lrs.count == 3 && lrs == lrs.sorted(by: >), "\(sorted)")
        #expect(try trackReplay(["summary", demoDatabase, "--sort", "nothing"]).status != 0)
        #expect(try trackReplay(["summary", demoDatabase, "--where", "{not json"]).status != 0)
    }

    @Test("bad input: one clear line on stderr, a non-zero exit, nothing written")
    func badInput() throws {
        let dir = Scratch()
        let missing = dir.path + "/nothing"
        for command in [["summary", missing], ["show", missing, "x"], ["metrics", missing, "x"], ["stats", missing],
                        ["tail", missing], ["export", missing], ["verify", missing], ["compact", missing]] {
            let r = try trackReplay(command)
            #expect(r.status != 0, "\(command)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(missing), "\(command): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: missing))
        let unknown = try trackReplay(["show", demoDatabase, "zzzz"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no trial matches 'zzzz'"))
        let ambiguous = try trackReplay(["show", demoDatabase, ""])
        #expect(ambiguous.status != 0 && ambiguous.stderr.contains("ambiguous"))
        let badJSON = dir.path + "/bad.json"
        try Data("[{\"dtype\": \"project\", ".utf8).write(to: URL(fileURLWithPath: badJSON))
        let target = dir.path + "/target.db"
        let r = try trackReplay(["import", badJSON, target])
        #expect(r.status != 0 && r.stderr.contains("line 1"))
        #expect(!FileManager.default.fileExists(atPath: target), "nothing is written")
        let noFile = try trackReplay(["import", dir.path + "/absent.json", target])
        #expect(noFile.status != 0 && noFile.stderr.contains("cannot read"))
        let notDB = dir.path + "/notdb"
        try FileManager.default.createDirectory(atPath: notDB, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: notDB + "/file.txt"))
        let refused = try trackReplay(["import", sharedFile("track-json/small.json"), notDB])
        #expect(refused.status != 0 && refused.stderr.contains("not a swift-track database"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: notDB) == ["file.txt"])
    }
}

/// Issue 12: damage is never folded away silently.
@Suite("track-replay and damage")
struct DamageCommandTests {
    @Test("CompactionRefusesToEraseDamage: compact refuses a damaged database; --accept-loss records the loss, which verify, stats and summary show")
    func compactionKeepsDamage() throws {
        let dir = Scratch()
        let db = dir.path + "/db"
        #expect(try trackReplay(["synth", db, "--points", "5000", "--segment-bytes", "4096", "--commit-every", "50"]).status == 0)
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let segment = layout.segmentPath(stream, base: 0)
        var bytes = Array(FileManager.default.contents(atPath: segment) ?? Data())
        let frames = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment).frames }
        try #require(frames.count >= 3)
        bytes[Int(frames[1].offset) + 80] ^= 0x40
        FileManager.default.createFile(atPath: segment, contents: Data(bytes))
        let files = FileSystem.list(layout.streamDirectory(stream))

        let refused = try trackReplay(["compact", db, "--force"])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("refused") && refused.stderr.contains("--accept-loss"), "\(refused.stderr)")
        #expect(FileSystem.list(layout.streamDirectory(stream)) == files, "nothing deleted")
        #expect(try trackReplay(["summary", db]).status != 0, "readers refuse the damaged database")

        let accepted = try trackReplay(["compact", db, "--accept-loss", "--force"])
        #expect(accepted.status == 0, "\(accepted.stderr)")
        for round in 0..<2 {
            let verify = try trackReplay(["verify", db])
            #expect(verify.stdout.contains("LOSS ACCEPTED") && verify.stdout.contains(segment), "round \(round): \(verify.stdout)")
            #expect(verify.status == 0, "round \(round): \(verify.stdout)")
            let summary = try trackReplay(["summary", db])
            #expect(summary.status == 0 && summary.stdout.contains("accepted losses: 1"), "round \(round): \(summary.stdout) \(summary.stderr)")
            #expect(try trackReplay(["stats", db]).stdout.contains("accepted losses: 1"))
            // A second compaction deletes the damaged segment; the record of the loss stays.
            if round == 0 { #expect(try trackReplay(["compact", db, "--force"]).status == 0) }
        }
        #expect(!FileManager.default.fileExists(atPath: segment))
    }

    @Test("MissingFirstSegmentIsReported: summary and verify report a stream that does not start at 0")
    func missingFirstSegment() throws {
        let dir = Scratch()
        let db = dir.path + "/db"
        #expect(try trackReplay(["synth", db, "--points", "5000", "--segment-bytes", "4096", "--commit-every", "50"]).status == 0)
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let bases = layout.segmentBases(stream)
        try FileManager.default.removeItem(atPath: layout.segmentPath(stream, base: 0))
        try? FileManager.default.removeItem(atPath: layout.indexPath(stream, base: 0))
        let summary = try trackReplay(["summary", db])
        #expect(summary.status != 0 && summary.stderr.contains("0..<\(bases[1])"), "\(summary.stderr)")
        let verify = try trackReplay(["verify", db])
        #expect(verify.status == 1 && verify.stdout.contains("0..<\(bases[1])"), "\(verify.stdout)")
    }

    @Test("VerifyDecodesFrames: a frame that passes its checksum but does not decode is damage to verify")
    func verifyDecodes() throws {
        let dir = Scratch()
        let db = dir.path + "/db"
        #expect(try trackReplay(["synth", db, "--points", "2000", "--commit-every", "500"]).status == 0)
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let segment = layout.segmentPath(stream, base: 0)
        var bytes = Array(FileManager.default.contents(atPath: segment) ?? Data())
        // A well-formed frame (valid CRC) whose payload is not events, after the last one.
        let garbage: [UInt8] = [0xEE, 0x01, 0x02, 0x03]
        let last = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment).frames.last! }
        let frame = garbage.withUnsafeBytes { Frame.make(payload: $0, firstSequence: last.header.endSequence, eventCount: 1,
                                                         minHLC: last.header.maxHLC, maxHLC: last.header.maxHLC, subjects: []) }
        bytes += frame.bytes
        FileManager.default.createFile(atPath: segment, contents: Data(bytes))
        let verify = try trackReplay(["verify", db])
        #expect(verify.status == 1 && verify.stdout.contains("does not decode"), "\(verify.stdout)")
    }
}
