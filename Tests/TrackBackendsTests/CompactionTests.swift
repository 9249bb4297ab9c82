import Synchronization
import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackLog
import TrackStore
import TrackModel

/// Everything a backend shows, for comparing states.
struct StateDump: Equatable {
    var projects: [Project]
    var groups: [TrialGroup]
    var trials: [Trial]

    init(_ backend: any TrackProtocol) throws {
        projects = try backend.fetchProjects(.all)
        groups = try backend.fetchGroups(.all)
        trials = try backend.fetchTrials(.all)
    }
}

/// Fills a database with a few trials, metrics of every shape, statuses and chronos.
func populate(_ backend: EventLogBackend, trials: Int = 3, points: Int = 3000, salt: Int = 0) throws {
    _ = try backend.newProject(Project(name: "p", metadata: ["owner": "alice"]))
    let group = try backend.newTrialGroup(TrialGroup(name: "sweep", projectID: "p"))
    for t in 0..<trials {
        let trial = try #require(try backend.newTrial(Trial(name: "t\(t)-\(salt)", parameters: ["lr": .double(0.1 / Double(t + 1))],
                                                             projectID: "p", groupID: group.uid), autoIncrement: true))
        try backend.logTrialStart(trial.uid)
        try backend.logTrialChronoStart(trial.uid, name: "epoch")
        for step in 0..<points {
            try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(Float(2.3 * exp(-Double(step) / 500) + Double(step % 7) / 1000)))
        }
        try backend.logTrialMetrics(trial.uid, step: nil, ["note": "text value", "count": 3])
        try backend.logTrialChronoFinish(trial.uid, name: "epoch")
        try backend.logTrialMetadata(trial.uid, ["host": .string("n\(t)")])
        try backend.setTrialStatus(trial.uid, t == 0 ? .completed : .interrupted, error: t == 0 ? nil : "SIGTERM")
        try backend.logTrialFinish(trial.uid)
    }
}

@Suite("Compaction, snapshots and MANIFEST", .serialized)
struct CompactionTests {
    @Test("CompactedStepsEvery64: a metric logged every 64, 256 or 2048 steps reads back the same after compaction (it came back with negative steps)")
    func compactedStepsEvery64() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db)
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", parameters: ["lr": 0.1], projectID: "p")))
        for (name, every) in [("a", Int64(64)), ("b", 256), ("c", 2048)] {
            for i in Int64(0)..<5 { try backend.logTrialMetric(trial.uid, name: name, step: i * every, value: Double(i)) }
        }
        let before = try #require(try backend.getTrial(uid: trial.uid)).metrics
        try backend.compact()
        try backend.close()
        let after = try #require(try EventLogBackend(path: db).getTrial(uid: trial.uid)).metrics
        #expect(after == before)
        #expect(after["a"]?.points.compactMap(\.step) == [0, 64, 128, 192, 256])
    }

    @Test("TextAndFloatStepsSurviveCompaction: steps \"warmup\" and 1.5 read back the same from a snapshot")
    func textAndFloatStepsSurviveCompaction() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db)
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", parameters: ["lr": 0.1], projectID: "p")))
        try backend.logTrialMetrics(trial.uid, step: .text("warmup"), ["loss": 0.9])
        try backend.logTrialMetrics(trial.uid, step: 1, ["loss": 0.5])
        try backend.logTrialMetrics(trial.uid, step: .number(1.5), ["loss": 0.4, "note": "text"])
        try backend.logTrialMetrics(trial.uid, step: nil, ["lr": 0.1])
        try backend.logTrialMetrics(trial.uid, step: .text("end"), ["lr": 0.2])
        let before = try #require(try backend.getTrial(uid: trial.uid)).metrics
        try backend.compact()
        try backend.close()
        let after = try #require(try EventLogBackend(path: db).getTrial(uid: trial.uid)).metrics
        #expect(after == before)
        #expect(JSON.encode(after["loss"]?.trackJSON ?? .null) == #"{"warmup":0.9,"1":0.5,"1.5":0.4}"#)
        #expect(JSON.encode(after["lr"]?.trackJSON ?? .null) == #"[0.1,["end",0.2]]"#)
    }

    @Test("compaction keeps the state, deletes covered segments, and writers keep appending")
    func compactAndReopen() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, segmentBytes: 8 << 10)
        try populate(backend, points: 5000)
        let before = try StateDump(backend)
        let report = try backend.compact()
        // The log stays until a second generation covers it too (the first is the fallback then).
        #expect(report.segmentsDeleted == 0)
        #expect(report.generation == 1)
        #expect(try StateDump(backend) == before, "the writing backend's view is unchanged")
        // Writing goes on after compaction, and a fresh open sees snapshot + log.
        try populate(backend, trials: 1, points: 100, salt: 1)
        let afterMore = try StateDump(backend)
        try backend.close()
        let reopened = try EventLogBackend(path: db)
        #expect(try StateDump(reopened) == afterMore)
        // A second compaction deletes what both generations cover, and keeps the first as the
        // fallback; a third replaces the first.
        let second = try reopened.compact()
        #expect(second.generation == 2)
        #expect(second.segmentsDeleted > 0)
        #expect(second.bytesAfter < second.bytesBefore)
        #expect(FileSystem.list(DatabaseLayout(root: db).snapshotsDirectory) == [DatabaseLayout.snapshotName(1), DatabaseLayout.snapshotName(2)])
        #expect(try StateDump(reopened) == afterMore)
        _ = try reopened.compact()
        #expect(FileSystem.list(DatabaseLayout(root: db).snapshotsDirectory) == [DatabaseLayout.snapshotName(2), DatabaseLayout.snapshotName(3)])
        #expect(try StateDump(reopened) == afterMore)
        try reopened.close()
        let third = try EventLogBackend(path: db)
        #expect(try StateDump(third) == afterMore)
        try third.close()
    }

    @Test("a compaction up to given positions folds only what lies before them; a consumer standing there misses nothing")
    func compactUpTo() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, segmentBytes: 8 << 10)
        try populate(backend, points: 3000)
        try backend.commit()
        // Two consumers read what is there and stand at its end (as a buffer's shipper does).
        let consumer = try LogTailer(database: db), twin = try LogTailer(database: db)
        _ = try consumer.poll()
        _ = try twin.poll()
        let limits = consumer.position
        try populate(backend, trials: 2, points: 3000, salt: 1)
        try backend.commit()
        let state = try StateDump(backend)
        let expected = try twin.poll().flatMap { f in f.frame.events.map { "\(f.stream)#\($0.sequence)" } }
        #expect(expected.count > 1000)
        let first = try Compactor.compact(database: db, upTo: limits, reporter: { _ in })
        #expect(first.segmentsDeleted == 0)
        let report = try Compactor.compact(database: db, upTo: limits, reporter: { _ in })
        #expect(report.segmentsDeleted > 0)
        let manifest = try #require(try Compactor.readManifest(DatabaseLayout(root: db)))
        #expect(manifest.watermarks.map { "\($0.stream)@\($0.base)+\($0.offset)" } == limits.map { "\($0.key)@\($0.value.base)+\($0.value.offset)" }.sorted())
        // Everything after the limits is still in the log, for the consumer to read.
        #expect(try consumer.poll().flatMap { f in f.frame.events.map { "\(f.stream)#\($0.sequence)" } } == expected)
        // The state is whole: in the writer, and opened afresh from the snapshot and the log after it.
        #expect(try StateDump(backend) == state)
        try backend.close()
        let reopened = try EventLogBackend(path: db)
        #expect(try StateDump(reopened) == state)
        try reopened.close()
    }

    @Test("a reader whose segment is compacted away reloads from the snapshot and stays right")
    func readerSurvivesCompaction() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let writer = try EventLogBackend(path: db, segmentBytes: 8 << 10)
        let reader = try EventLogBackend(path: db)
        try populate(writer, points: 2000)
        try writer.commit()
        _ = try StateDump(reader)
        try populate(writer, trials: 1, points: 3000, salt: 2)
        try writer.compact()
        #expect(try StateDump(reader) == StateDump(writer))
        try writer.close()
        try reader.close()
    }

    @Test("a compaction killed at each step leaves a database that reopens to the same state, strays removed",
          arguments: Compactor.CrashPoint.allCases)
    func crashDuringCompaction(_ point: Compactor.CrashPoint) throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, segmentBytes: 8 << 10)
        try populate(backend, points: 4000)
        // A first generation, so that the killed compaction has segments to delete.
        try backend.compact()
        try populate(backend, trials: 1, points: 2000, salt: 1)
        try backend.close()
        let before = try StateDump(try EventLogBackend(path: db))
        let worker = try startWorker(["compact", db, "--crash-at", point.rawValue])
        _ = worker.output.fileHandleForReading.readDataToEndOfFile()
        #expect(worker.process.waitForExit().signaled, "the compaction was killed")
        let layout = DatabaseLayout(root: db)
        let reopened = try EventLogBackend(path: db)
        #expect(try StateDump(reopened) == before)
        let snapshots = FileSystem.list(layout.snapshotsDirectory)
        #expect(!snapshots.contains { $0.hasSuffix(".tmp") }, "temporary snapshot removed")
        let manifest = try Compactor.readManifest(layout)
        switch point {
        case .whileWritingSnapshot, .afterSnapshotBeforeManifest:
            #expect(manifest?.generation == 1)
            #expect(snapshots == [DatabaseLayout.snapshotName(1)], "the unpublished snapshot is removed: \(snapshots)")
        case .afterManifestBeforeDeletion:
            #expect(manifest?.generation == 2)
            #expect(snapshots == [DatabaseLayout.snapshotName(1), DatabaseLayout.snapshotName(2)])
            // The deletion it did not get to (below the previous generation) is finished on open.
            let previous = try Manifest.decode(Array(FileManager.default.contents(atPath: layout.previousManifestPath) ?? Data()), path: layout.previousManifestPath)
            #expect(previous.generation == 1)
            for w in previous.watermarks {
                let bases = layout.segmentBases(w.stream)
                #expect(bases.dropLast().allSatisfy { base in bases.first { $0 > base }! > w.sequence })
            }
        }
        // Compaction then works again.
        try reopened.compact()
        #expect(try StateDump(reopened) == before)
        try reopened.close()
    }

    @Test("FlippedSnapshotOrManifestFallsBack: one flipped byte in the newest snapshot or MANIFEST opens the previous generation, reported, nothing lost",
          arguments: ["snapshot", "manifest"])
    func damagedNewestGeneration(_ victim: String) throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, segmentBytes: 8 << 10)
        try populate(backend, points: 3000)
        try backend.compact()
        try populate(backend, trials: 1, points: 3000, salt: 1)
        try backend.compact()
        try populate(backend, trials: 1, points: 500, salt: 2)
        let state = try StateDump(backend)
        try backend.close()
        let layout = DatabaseLayout(root: db)
        let path = victim == "snapshot" ? layout.snapshotPath(DatabaseLayout.snapshotName(2)) : layout.manifestPath
        var bytes = Array(FileManager.default.contents(atPath: path) ?? Data())
        bytes[bytes.count / 2] ^= 0x10
        FileManager.default.createFile(atPath: path, contents: Data(bytes))

        let notices = Notices()
        let reopened = try EventLogBackend(path: db, reporter: notices.reporter)
        #expect(try StateDump(reopened) == state)
        #expect(notices.all.contains { $0.kind == .generationFallback && $0.path == path }, "\(notices.all)")
        // Compacting again writes a good generation; the damaged one is replaced.
        let report = try reopened.compact()
        #expect(report.generation == 2)
        #expect(try StateDump(reopened) == state)
        try reopened.close()
        let clean = Notices()
        let again = try EventLogBackend(path: db, reporter: clean.reporter)
        #expect(try StateDump(again) == state)
        #expect(!clean.all.contains { $0.kind == .generationFallback || $0.kind == .damage }, "\(clean.all)")
        try again.close()
    }

    @Test("compacted metric columns of a float32 loss curve take a few bytes per point")
    func columnSize() throws {
        let projection = Projection()
        var state: UInt64 = 7
        for step in 0..<100_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            // The synthetic loss curve: a decaying value with 1% multiplicative noise, at float32
            // precision as training frameworks log it.
            let noise = (Double(state >> 40) / Double(1 << 24) * 2 - 1) * 0.01
            let value = Double(Float((2.3 * exp(-Double(step) / 20_000) + 0.05) * (1 + noise)))
            projection.apply(.metricsLogged(trial: "a_0", step: .int(Int64(step)), ["loss": .double(value)]), hlc: HLC(rawValue: UInt64(1_000_000 + step)), stream: "s")
        }
        let bytes = Snapshot.encode(projection, generation: 1)
        let perPoint = Double(bytes.count) / 100_000
        #expect(perPoint <= 3, "bytes per point: \(perPoint)")
        let back = try Snapshot.decode(bytes, path: "memory")
        #expect(back.columns(trial: "a_0", metric: "loss")?.values == projection.columns(trial: "a_0", metric: "loss")?.values)
        #expect(back.columns(trial: "a_0", metric: "loss")?.steps == projection.columns(trial: "a_0", metric: "loss")?.steps)
    }

    @Test("damaged snapshots and manifests are refused with a clear error")
    func damagedFiles() throws {
        let projection = Projection()
        projection.apply(.projectCreated(Project(name: "p")), hlc: HLC(rawValue: 5), stream: "s")
        var bytes = Snapshot.encode(projection, generation: 1)
        bytes[bytes.count / 2] ^= 1
        #expect { try Snapshot.decode(bytes, path: "x.snap") } throws: { ($0 as? LogError)?.code == .corruptFile }
        var manifest = Manifest(generation: 1, snapshotName: "a.snap", watermarks: [StreamWatermark(stream: "s", sequence: 1, base: 0, offset: 32)]).encode()
        #expect(try Manifest.decode(manifest, path: "M").generation == 1)
        manifest[10] ^= 1
        #expect { try Manifest.decode(manifest, path: "M") } throws: { ($0 as? LogError)?.message.contains("CRC") == true }
    }
}

/// Collects notices.
final class Notices: Sendable {
    private let list = Mutex<[LogNotice]>([])
    var reporter: LogReporter { { [self] n in list.withLock { $0.append(n) } } }
    var all: [LogNotice] { list.withLock { $0 } }
}
