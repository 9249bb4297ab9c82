import Foundation
import Testing
import TrackBackends
import TrackConformance
import TrackLog
import TrackStore
import TrackModel

/// A fresh temporary directory, removed afterwards.
final class ScratchDirectory: @unchecked Sendable {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "swift-track-backend-tests/\(UUID().uuidString.prefix(12))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("file:// (EventLogBackend)")
struct EventLogBackendTests {
    @Test("passes the conformance suite", arguments: Conformance.cases)
    func conformance(_ check: ConformanceCase) throws {
        let dir = ScratchDirectory()
        try check.run { strict in try makeBackend(uri: "file://\(dir.path)/db\(strict ? "" : "?strict=false")") }
    }

    @Test("a bare path opens the event log, and another backend on the same database sees everything")
    func reopenAndShare() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let a = try makeBackend(uri: db)
        #expect(a is EventLogBackend)
        _ = try a.newProject(Project(name: "p"))
        let trial = try #require(try a.newTrial(Trial(name: "t", parameters: ["lr": 0.1], projectID: "p"), autoIncrement: false))
        for step in 0..<1000 { try a.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: 1 / Double(step + 1)) }
        try a.logTrialMetrics(trial.uid, step: 1000, ["loss": 0.0001, "acc": 0.99])
        try a.setTrialStatus(trial.uid, .completed, error: nil)
        // A second backend in the same process writes its own stream and reads both.
        let b = try makeBackend(uri: "file://\(db)")
        let seen = try #require(try b.getTrial(uid: trial.uid))
        #expect(seen.metrics["loss"]?.count == 1001)
        #expect(seen.metrics["acc"]?.points == [MetricPoint(step: 1000, value: 0.99)])
        #expect(seen.status == .completed)
        #expect(seen.updateCount == 1002)
        try b.logTrialMetadata(trial.uid, ["from": "b"])
        try b.commit()
        #expect(try a.getTrial(uid: trial.uid)?.metadata["from"] == "b")
        try a.close()
        try b.close()
        // Reopened, the state is the same.
        let c = try makeBackend(uri: db)
        let again = try #require(try c.getTrial(uid: trial.uid))
        #expect(again.metrics == seen.metrics)
        #expect(again.metadata["from"] == "b")
        try c.close()
    }

    @Test("a stale revision is refused with concurrentWrite")
    func concurrentWrite() throws {
        let dir = ScratchDirectory()
        let backend = try EventLogBackend(path: dir.path + "/db")
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        let revision = try #require(try backend.getTrial(uid: trial.uid)).updateCount
        try backend.logTrialMetadata(trial.uid, ["x": 1])
        #expect { try backend.setTrialStatus(trial.uid, .running, error: nil, expectedRevision: revision) } throws: {
            ($0 as? TrackError)?.code == .concurrentWrite
        }
        try backend.setTrialStatus(trial.uid, .running, error: nil, expectedRevision: revision + 1)
        #expect(try backend.getTrial(uid: trial.uid)?.status == .running)
        try backend.close()
    }

    @Test("smartReload reports changed objects with their previous and current revision tags")
    func smartReload() throws {
        let dir = ScratchDirectory()
        let a = try EventLogBackend(path: dir.path + "/db")
        let b = try EventLogBackend(path: dir.path + "/db")
        _ = try a.newProject(Project(name: "p"))
        let trial = try #require(try a.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        _ = try b.smartReload()
        let before = try #require(try b.getTrial(uid: trial.uid)).updateCount
        try a.logTrialMetric(trial.uid, name: "loss", step: 1, value: 1)
        try a.logTrialMetric(trial.uid, name: "loss", step: 2, value: 2)
        try a.commit()
        let changes = try b.smartReload()
        let change = try #require(changes.first { $0.kind == .trial && $0.uid == trial.uid })
        #expect(change.previousTag == before)
        #expect(change.currentTag == before + 2)
        #expect(try b.smartReload().isEmpty)
        try a.close()
        try b.close()
    }
}

@Suite("Materializer")
struct MaterializerTests {
    @Test("frames of metric points can be left for later and are applied by the next full reload")
    func deferredPoints() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let writer = try LogWriter.open(database: db, options: { var o = WriterOptions(); o.reporter = { _ in }; o.frameRawBytesTarget = 1024; return o }())
        try writer.append(.projectCreated(Project(name: "p")))
        try writer.append(.trialCreated(try Trial(name: "t", projectID: "p"), autoIncrement: false))
        try writer.commit()
        let uid = try Trial(name: "t", projectID: "p").uid
        let slot = writer.slot(subject: uid, name: "loss")
        for step in 0..<5000 { try writer.append(slot, step: Int64(step), value: Double(step)) }
        try writer.close()
        let m = try Materializer(database: db, reporter: { _ in })
        try m.smartReload(deferringPoints: true)
        #expect(m.projection.hasTrial(uid))
        #expect(m.deferredFrameCount > 0)
        #expect(m.projection.pointCount < 5000)
        let changes = try m.smartReload()
        #expect(m.deferredFrameCount == 0)
        #expect(m.projection.pointCount == 5000)
        #expect(changes.contains { $0.uid == uid })
        #expect(m.projection.trial(uid)?.metrics["loss"]?.count == 5000)
        #expect(m.projection.trial(uid)?.updateCount == 5000)
    }
}

/// Issue 12, point 15: callers see what kind of failure it was, and damage, through the API.
@Suite("file:// errors and damage through the API")
struct EventLogErrorTests {
    @Test("ErrorCodesAreKept: an oversized value is invalidArgument with the store's rule error as its cause, not io")
    func codesKept() throws {
        let dir = ScratchDirectory()
        let backend = try EventLogBackend(path: dir.path + "/db", reporter: { _ in })
        defer { try? backend.close() }
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
        do {
            try backend.logTrialMetadata(trial.uid, ["blob": .string(String(repeating: "x", count: Limits.stringBytesMax + 1))])
            Issue.record("an oversized string was accepted")
        } catch let error as TrackError {
            #expect(error.code == .invalidArgument, "\(error)")
            #expect((error.cause as? ModelError)?.code == .invalidValue)
            #expect(error.message.contains("metadata.blob"))
        }
        do {
            try backend.logTrialMetric(trial.uid, name: "loss", step: .min, value: 1)
            Issue.record("step -2^63 was accepted")
        } catch let error as TrackError {
            #expect(error.code == .invalidArgument, "\(error)")
        }
        // Nothing of it was written: the trial reads back clean, after a reopen too.
        try backend.commit()
        let again = try EventLogBackend(path: dir.path + "/db", reporter: { _ in })
        #expect(try again.getTrial(uid: trial.uid)?.metadata["blob"] == nil)
        #expect(again.damage.isEmpty)
        try again.close()
    }

    @Test("OverflowingIncrementIsAnError: incrementing metadata past 2^63-1 is invalidArgument, the store unchanged")
    func overflow() throws {
        for uri in ["ephemeral://", "file://\(ScratchDirectory().path)/db"] {
            let backend = try makeBackend(uri: uri)
            _ = try backend.newProject(Project(name: "p"))
            let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
            try backend.logTrialMetadata(trial.uid, ["n": .int(.max)])
            #expect(throws: TrackError.self) {
                _ = try backend.fetchAndUpdateTrial(Query([.init("name", .equal, "t")]), .incrementMetadata(key: "n", by: 1))
            }
            #expect(try backend.getTrial(uid: trial.uid)?.metadata["n"] == .int(.max), "\(uri)")
            try backend.close()
        }
    }

    @Test("DamageIsVisibleThroughTheAPI: a file:// backend lists the damage it read past")
    func damageListed() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, segmentBytes: 4096, reporter: { _ in })
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
        for step in 0..<10_000 {
            try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: sin(Double(step)) * 1.37)
            if step % 200 == 199 { try backend.commit() }
        }
        try backend.close()
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let bases = layout.segmentBases(stream)
        try #require(bases.count > 3)
        try FileManager.default.removeItem(atPath: layout.segmentPath(stream, base: bases[1]))
        let reopened = try EventLogBackend(path: db, reporter: { _ in })
        _ = try reopened.getTrial(uid: trial.uid)
        #expect(reopened.damage.contains { $0.message.contains("\(bases[1])..<\(bases[2])") }, "\(reopened.damage)")
        try reopened.close()
    }

    @Test("OversizedImportIsRefusedWhole: an import with one object over the limits writes nothing")
    func importRefusedWhole() throws {
        let dir = ScratchDirectory()
        let backend = try EventLogBackend(path: dir.path + "/db", reporter: { _ in })
        defer { try? backend.close() }
        var big = try Trial(name: "big", projectID: "p")
        big.metadata["blob"] = .string(String(repeating: "x", count: Limits.stringBytesMax + 1))
        let database = TrackFileDatabase(projects: [Project(name: "p")], groups: [], trials: [try Trial(name: "small", projectID: "p"), big])
        #expect(throws: TrackError.self) { try backend.importDatabase(database) }
        #expect(try backend.fetchProjects(.all).isEmpty)
        #expect(try backend.fetchTrials(.all).isEmpty)
    }
}

@Suite("compaction of a pinned database")
struct PinnedCompactionTests {
    @Test("PinnedBufferIsNotFoldedPastItsConsumer: compacting a SQL buffer through the API (no limits given) keeps every event its shipper has not read")
    func pinned() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/buffer"
        let backend = try EventLogBackend(path: db, segmentBytes: 4096, reporter: { _ in })
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
        // Many small frames over many segments.
        for step in 0..<3000 {
            try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(step).squareRoot())
            if step % 50 == 49 { try backend.commit() }
        }
        // A shipper has read some frames and saved its position, as BufferedSQLBackend does.
        let shipper = try LogTailer(database: db), twin = try LogTailer(database: db)
        _ = try shipper.poll(maxFrames: 2)
        _ = try twin.poll(maxFrames: 2)
        FileManager.default.createFile(atPath: db + "/" + ConsumerPosition.lockName, contents: nil)
        try ConsumerPosition.write(shipper.position, to: db)
        let unshipped = try twin.poll().flatMap { f in f.frame.events.map(\.sequence) }
        #expect(!unshipped.isEmpty)
        try backend.compact()
        try backend.compact()
        // What the shipper has not read is still in the log, where the next shipper reads it.
        let next = try LogTailer(database: db, start: ConsumerPosition.read(db).map {
            StreamWatermark(stream: $0.key, sequence: 0, base: $0.value.base, offset: $0.value.offset)
        })
        #expect(try next.poll().flatMap { f in f.frame.events.map(\.sequence) } == unshipped)
        #expect(try backend.getTrial(uid: trial.uid)?.metrics["loss"]?.count == 3000)
        try backend.close()
    }
}

@Suite("following a database through the projection's changes")
struct ChangeFeedTests {
    @Test("ChangesSinceACursor: two readers with their own cursors see the objects and series another writer changed, once each, with tags and counts")
    func changesSince() throws {
        let dir = ScratchDirectory()
        let writer = try EventLogBackend(path: dir.path + "/db", reporter: { _ in })
        let reader = try EventLogBackend(path: dir.path + "/db", reporter: { _ in })
        defer { try? writer.close(); try? reader.close() }
        _ = try writer.newProject(Project(name: "p"))
        let a = try #require(try writer.newTrial(Trial(name: "a", projectID: "p")))
        let b = try #require(try writer.newTrial(Trial(name: "b", projectID: "p")))
        for step in 0..<10 { try writer.logTrialMetric(a.uid, name: "loss", step: Int64(step), value: 1) }
        try writer.commit()
        let first = try reader.changes(since: nil)
        #expect(Set(first.objects.map(\.uid)) == ["p", a.uid, b.uid])
        #expect(first.series == [ChangedSeries(trial: a.uid, metric: "loss", count: 10)])
        // Nothing new: nothing reported, the cursor stays usable.
        #expect(try reader.changes(since: first.cursor).objects.isEmpty)
        // Another writer's points and status: only trial b and its new series.
        for step in 0..<5 { try writer.logTrialMetric(b.uid, name: "acc", step: Int64(step), value: 0.5) }
        try writer.setTrialStatus(b.uid, .completed, error: nil)
        try writer.commit()
        let second = try reader.changes(since: first.cursor)
        #expect(second.objects.map(\.uid) == [b.uid])
        #expect(second.objects.first?.tag == (try reader.getTrial(uid: b.uid))?.updateCount)
        #expect(second.series == [ChangedSeries(trial: b.uid, metric: "acc", count: 5)])
        // A second reader keeps its own cursor; a cursor of another projection gives everything.
        #expect(try reader.changes(since: first.cursor) == second)
        let memory = MemoryBackend()
        _ = try memory.newProject(Project(name: "m"))
        #expect(memory.changes(since: first.cursor).objects.map(\.uid) == ["m"])
    }
}

@Suite("the database checker as a library call")
struct DatabaseCheckTests {
    @Test("DatabaseCheckReportsDamage: one call returns every finding; a clean database has none, a flipped byte is damage with its file and offset")
    func checkReports() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, reporter: { _ in })
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
        for step in 0..<1000 {
            try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(step))
            if step % 100 == 99 { try backend.commit() }
        }
        try backend.close()
        let clean = try DatabaseCheck.run(database: db)
        #expect(clean.damageCount == 0, "\(clean.lines)")
        #expect(clean.streams == 1 && clean.frames > 5)
        // Flip a byte inside the second frame's payload.
        let layout = DatabaseLayout(root: db)
        let stream = try #require(layout.streamNames().first)
        let path = layout.segmentPath(stream, base: try #require(layout.segmentBases(stream).first))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let flipAt = bytes.count / 2
        bytes[flipAt] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = try DatabaseCheck.run(database: db)
        #expect(damaged.damageCount >= 1)
        #expect(damaged.lines.contains { $0.kind == .damaged && $0.text.contains(path) && $0.text.contains("offset") }, "\(damaged.lines)")
        #expect(throws: LogError.self) { try DatabaseCheck.run(database: dir.path + "/not-a-database") }
    }
}
