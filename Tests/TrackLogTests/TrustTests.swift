import Foundation
import Testing
import TrackTestSupport
import TrackLog
@testable import TrackStore
import TrackModel

/// The outcome of one run of the built `track-replay`.
struct ToolRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built `track-replay` with `arguments` to its end.
func runTrackReplay(_ arguments: [String]) throws -> ToolRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trackReplayPath())
    process.arguments = arguments
    let errPath = NSTemporaryDirectory() + "track-replay-stderr-\(UUID().uuidString)"
    FileManager.default.createFile(atPath: errPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: errPath) }
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let out = Pipe()
    process.standardOutput = out
    process.standardError = errHandle
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let exit = process.waitForExit()
    try errHandle.close()
    return ToolRun(status: exit.status, stdout: String(decoding: outData, as: UTF8.self),
                   stderr: String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self))
}

/// Issue 23: the last silent or needless losses.
@Suite("trust, second round")
struct TrustTests {
    /// Appends `count` points of `trial` and commits them as one frame.
    static func log(_ writer: LogWriter, trial: String, from: Int, count: Int) throws {
        for step in from..<(from + count) { _ = try writer.appendPoint(subject: trial, name: "loss", step: Int64(step), value: Double(step) * 0.5) }
        try writer.commit()
    }

    @Test("MissingStreamIsDamage: a stream the MANIFEST names and that is gone is reported by readers and refuses compaction")
    func missingStream() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let first = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        let second = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        try #require(first.streamName != second.streamName)
        try Self.log(first, trial: "a_0", from: 0, count: 100)
        try Self.log(second, trial: "b_0", from: 0, count: 100)
        _ = try Compactor.compact(database: dir.db, reporter: notices.reporter)
        // Events after the compaction live only in the streams.
        try Self.log(first, trial: "a_0", from: 100, count: 100)
        try Self.log(second, trial: "b_0", from: 100, count: 100)
        try first.close()
        try second.close()
        let layout = DatabaseLayout(root: dir.db)
        try FileManager.default.removeItem(atPath: layout.streamDirectory(second.streamName))

        let reader = NoticeCollector()
        let materializer = try Materializer(database: dir.db, reporter: reader.reporter)
        try materializer.reload()
        #expect(materializer.damage.contains { $0.message.contains(second.streamName) && $0.message.contains("missing") }, "\(materializer.damage)")

        let summary = try runTrackReplay(["summary", dir.db])
        #expect(summary.status == 3 && summary.stderr.contains(second.streamName), "\(summary.status) \(summary.stderr)")
        let stats = try runTrackReplay(["stats", dir.db])
        #expect(stats.status == 3 && stats.stderr.contains(second.streamName), "\(stats.status) \(stats.stderr)")
        let refused = captureLogError { _ = try Compactor.compact(database: dir.db, reporter: { _ in }) }
        #expect(refused?.message.contains("refused") == true, "\(String(describing: refused))")
        // Accepting the loss records it once; the stream is then no longer named.
        _ = try Compactor.compact(database: dir.db, acceptLoss: true, reporter: { _ in })
        let after = try Materializer(database: dir.db, reporter: { _ in })
        try after.reload()
        #expect(after.damage.isEmpty, "\(after.damage)")
        #expect(after.projection.acceptedLosses.count == 1)
        _ = try Compactor.compact(database: dir.db, reporter: { _ in })
        #expect(try runTrackReplay(["verify", dir.db]).status == 0)
    }

    @Test("DamagedSyncMarkerIsNotDamage: an unreadable SYNCED marker is read as none, with a notice, and the database reads whole")
    func damagedMarker() throws {
        let dir = TemporaryDirectory()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector(), durability: .groupCommit))
        for round in 0..<4 { try Self.log(writer, trial: "a_0", from: round * 50, count: 50) }
        try writer.close()
        let markerPath = DatabaseLayout(root: dir.db).syncMarkerPath(writer.streamName)
        let original = readFile(markerPath)
        try #require(original.count == SyncMarker.sizeBytes)
        for position in 0..<original.count {
            var flipped = original
            flipped[position] ^= 0x21
            writeFile(markerPath, flipped)
            let notices = NoticeCollector()
            let materializer = try Materializer(database: dir.db, reporter: notices.reporter)
            try materializer.reload()
            #expect(materializer.damage.isEmpty, "flip at \(position): \(materializer.damage)")
            #expect(notices.of(.syncMarkerUnreadable).count == 1, "flip at \(position): \(notices.all)")
            #expect(materializer.projection.pointCount == 200, "flip at \(position)")
        }
        var flipped = original
        flipped[20] ^= 0x01
        writeFile(markerPath, flipped)
        for command in [["summary", dir.db], ["export", dir.db], ["verify", dir.db]] {
            let run = try runTrackReplay(command)
            #expect(run.status == 0, "\(command): \(run.stderr)")
        }
    }

    @Test("VerifyFollowsReaders: a damaged or missing newest MANIFEST is no false alarm of lost events when MANIFEST.prev reads")
    func verifyUsesPreviousGeneration() throws {
        let dir = TemporaryDirectory()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector(), segmentBytes: 4096))
        try Self.log(writer, trial: "a_0", from: 0, count: 2000)
        _ = try Compactor.compact(database: dir.db, reporter: { _ in })
        try Self.log(writer, trial: "a_0", from: 2000, count: 2000)
        _ = try Compactor.compact(database: dir.db, reporter: { _ in })
        try Self.log(writer, trial: "a_0", from: 4000, count: 500)
        try writer.close()
        let layout = DatabaseLayout(root: dir.db)
        #expect(try runTrackReplay(["verify", dir.db]).status == 0)
        let manifest = readFile(layout.manifestPath)
        for damage in ["flipped", "missing"] {
            if damage == "flipped" {
                var bytes = manifest
                bytes[bytes.count / 2] ^= 0x10
                writeFile(layout.manifestPath, bytes)
            } else {
                try FileManager.default.removeItem(atPath: layout.manifestPath)
            }
            let verify = try runTrackReplay(["verify", dir.db])
            #expect(!verify.stdout.contains("missing;") && !verify.stdout.contains("jumps"), "\(damage): \(verify.stdout)")
            #expect(verify.stdout.contains("nothing lost"), "\(damage): \(verify.stdout)")
            let summary = try runTrackReplay(["summary", dir.db])
            #expect(summary.status == 0 && summary.stderr.contains("warning"), "\(damage): \(summary.stdout) \(summary.stderr)")
            let materializer = try Materializer(database: dir.db, reporter: { _ in })
            try materializer.reload()
            #expect(materializer.damage.isEmpty && materializer.projection.pointCount == 4500, "\(damage): \(materializer.damage)")
            writeFile(layout.manifestPath, manifest)
        }
    }

    @Test("DamagedFrameDoesNotHideTheDatabase: readers show what is intact, list the damage and exit 3; --strict refuses")
    func readAroundDamage() throws {
        let dir = TemporaryDirectory()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector(), durability: .groupCommit))
        for record in try sampleRecords() where record.kindName == "project_created" || record.kindName == "trial_created" {
            _ = try writer.append(record)
        }
        try writer.commit()
        let trial = try #require(try sampleRecords().compactMap { r -> String? in if case .trialCreated(let t, _) = r { return t.uid } else { return nil } }.first)
        for round in 0..<3 { try Self.log(writer, trial: trial, from: round * 100, count: 100) }
        try writer.close()
        // The last fsynced frame loses its last 7 bytes: damage to durable data.
        let segment = DatabaseLayout(root: dir.db).segmentPath(writer.streamName, base: 0)
        let bytes = readFile(segment)
        writeFile(segment, Array(bytes.dropLast(7)))

        let summary = try runTrackReplay(["summary", dir.db])
        #expect(summary.status == 3, "\(summary.stderr)")
        #expect(summary.stdout.contains("trials: 1") && summary.stdout.contains("200"), "the intact points are shown: \(summary.stdout)")
        #expect(summary.stdout.contains("DAMAGED"), "not presented as whole: \(summary.stdout)")
        #expect(summary.stderr.contains(segment) && summary.stderr.contains("offset"), "\(summary.stderr)")
        for command in [["show", dir.db, trial], ["metrics", dir.db, trial], ["export", dir.db], ["stats", dir.db]] {
            let run = try runTrackReplay(command)
            #expect(run.status == 3 && !run.stdout.isEmpty && run.stderr.contains(segment), "\(command): \(run.status) \(run.stderr)")
        }
        let strict = try runTrackReplay(["summary", dir.db, "--strict"])
        #expect(strict.status == 1 && strict.stdout.isEmpty && strict.stderr.contains("damaged"), "\(strict.stderr)")
        #expect(try runTrackReplay(["summary", "--help"]).stdout.replacingOccurrences(of: "\n", with: " ").contains("exit status is 3"))
    }
}

/// Issue 23, point 3: an import is one unit.
@Suite("import as one unit", .serialized)
struct ImportUnitTests {
    /// A FileProtocol JSON file with one project of `trials` trials of `points` loss points.
    static func makeImportFile(_ path: String, trials: Int, points: Int) {
        var text = #"[{"dtype": "project", "uid": "bulk", "name": "bulk", "description": null, "metadata": {}, "groups": [], "trials": ["#
        for t in 0..<trials {
            let hash = String(repeating: "0", count: 56) + String(format: "%08x", t)
            var metrics = ""
            for s in 0..<points { metrics += (s == 0 ? "" : ", ") + "\"\(s)\": \(Double(s) * 0.001 + Double(t))" }
            text += (t == 0 ? "" : ", ") + #"{"dtype": "trial", "uid": "\#(hash)_0", "revision": 0, "hash": "\#(hash)", "name": "t\#(t)", "description": null, "version": 0, "tags": {}, "group_id": null, "project_id": "bulk", "parameters": {"i": \#(t)}, "metadata": {}, "metrics": {"loss": {\#(metrics)}}, "chronos": {}, "errors": [], "status": {"value": 2, "name": "Completed"}}"#
        }
        text += "]}]\n"
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    /// Bytes of every segment under `streams/`, published or not.
    static func streamBytes(_ db: String) -> Int64 {
        let streams = DatabaseLayout(root: db).streamsDirectory
        var total: Int64 = 0
        for stream in FileSystem.list(streams) {
            for name in FileSystem.list(streams + "/" + stream) where name.hasSuffix(".log") {
                total += (try? FileManager.default.attributesOfItem(atPath: streams + "/" + stream + "/" + name)[.size] as? Int64) ?? 0
            }
        }
        return total
    }

    /// The trial count `summary` prints, or nil when it failed.
    static func trialCount(_ db: String) throws -> Int? {
        let r = try runTrackReplay(["summary", db])
        guard r.status == 0, let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("trials: ") }) else { return nil }
        return Int(line.dropFirst("trials: ".count))
    }

    @Test("ImportKilledMidwayIsInvisibleAndCanBeRerun: an import SIGKILLed at any moment shows nothing or everything, and a re-run completes it")
    func killedImport() throws {
        let dir = TemporaryDirectory()
        let file = dir.path + "/bulk.json"
        let trials = 16
        Self.makeImportFile(file, trials: trials, points: 1500)
        // One whole import, for its size.
        let whole = dir.path + "/whole"
        let done = try runTrackReplay(["import", file, whole])
        try #require(done.status == 0, "\(done.stderr)")
        #expect(try Self.trialCount(whole) == trials)
        let fullBytes = Self.streamBytes(whole)
        try #require(fullBytes > 50_000)

        var partialSeen = 0
        for round in 0..<(3 * crashScale) {
            let db = dir.path + "/db\(round)"
            // Kill once a random share of the import's bytes is on disk.
            let threshold = Int64(Double(fullBytes) * Double.random(in: 0.05...0.9))
            let process = try startTool(["import", file, db])
            while process.isRunning && Self.streamBytes(db) < threshold { usleep(500) }
            let killedMidway = process.isRunning
            kill(process.processIdentifier, SIGKILL)
            _ = process.waitForExit()
            let count = try Self.trialCount(db)
            #expect(count == nil || count == 0 || count == trials, "round \(round): \(String(describing: count)) of \(trials) trials visible after a kill")
            if killedMidway && count == 0 { partialSeen += 1 }
            let verify = try runTrackReplay(["verify", db])
            #expect(count == nil || verify.status == 0, "round \(round): \(verify.stdout)")
            if count != trials {
                let rerun = try runTrackReplay(["import", file, db])
                #expect(rerun.status == 0, "round \(round): the re-run is refused: \(rerun.stderr)")
                #expect(try Self.trialCount(db) == trials, "round \(round)")
                #expect(FileSystem.list(DatabaseLayout(root: db).streamsDirectory).allSatisfy { !$0.hasPrefix(".") }, "round \(round): an unpublished stream is left")
            }
        }
        #expect(partialSeen > 0, "no kill landed in the middle of an import")
    }
}
