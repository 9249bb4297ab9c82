import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackLog
import TrackStore
import TrackModel
@testable import TrackSQL

/// The database goes away in the middle of a logging run and comes back. Each test has a server
/// of its own, since it stops it.
@Suite("the PostgreSQL server stops in the middle of a logging run", .serialized)
struct OutageTests {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "swift-track-buffer-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The steps of `trial`'s `loss` series as stored, read with a fresh backend.
    func storedSteps(_ uri: String, _ trial: String) throws -> [Int64] {
        let reader = try SQLBackend(uri: TrackURI(uri))
        defer { try? reader.close() }
        return try reader.getTrial(uid: trial)?.metrics["loss"]?.points.compactMap(\.step?.intValue) ?? []
    }

    @Test("without a buffer: the caller gets a clear error, and nothing acknowledged is lost or doubled", arguments: [false, true])
    func direct(immediate: Bool) throws {
        let server = try LocalPostgresServer()
        defer { server.stop() }
        let uri = try server.freshDatabase(options: "&batch_points=500&flush_ms=20")
        let backend = try SQLBackend(uri: TrackURI(uri))
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))

        var acknowledged: [Int64] = []
        var errors: [TrackError] = []
        for step in Int64(0)..<12_000 {
            if step == 3_000 { try server.pause(immediate: immediate) }
            if step == 9_000 {
                // While it is away: every operation that needs it says so.
                #expect { try backend.commit() } throws: { ($0 as? TrackError)?.message.contains("127.0.0.1:\(server.port)") == true }
                #expect { try backend.setTrialStatus(trial.uid, .running) } throws: { ($0 as? TrackError)?.code == .io }
                try server.start()
            }
            do {
                try backend.logTrialMetric(trial.uid, name: "loss", step: step, value: Double(step))
                acknowledged.append(step)
            } catch let error as TrackError {
                errors.append(error)
            }
        }
        // Calls were refused once too many batches waited; each refusal names the database.
        #expect(!errors.isEmpty)
        #expect(errors.allSatisfy { $0.code == .io && $0.message.contains("127.0.0.1:\(server.port)") })
        try backend.commit()
        try backend.setTrialStatus(trial.uid, .completed)
        #expect(try storedSteps(uri, trial.uid) == acknowledged)
        #expect(acknowledged.count + errors.count == 12_000)
        try backend.close()
    }

    @Test("with ?buffer=: logging carries on, and every event arrives exactly once, the buffer compacted up to what is shipped meanwhile")
    func buffered() throws {
        let server = try LocalPostgresServer()
        defer { server.stop() }
        let buffer = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: buffer) }
        registerSQLBackend()
        // Small segments and a low threshold, so that the shipper compacts the buffer during the run.
        let uri = try server.freshDatabase(options: "&batch_points=700&ship_ms=10&segment_bytes=4096&compact_bytes=1&buffer=\(buffer)/log")
        let backend = try makeBackend(uri: uri)
        let memory = MemoryBackend()
        var trial = Trial(hash: "")
        for b in [backend, memory] as [any TrackProtocol] {
            _ = try b.newProject(Project(name: "p"))
            trial = try #require(try b.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
            try b.logTrialStart(trial.uid)
        }
        for step in Int64(0)..<15_000 {
            if step == 4_000 { try server.pause(immediate: true) }
            if step == 11_000 { try server.start() }
            for b in [backend, memory] as [any TrackProtocol] {
                try b.logTrialMetric(trial.uid, name: "loss", step: step, value: Double(step))
                if step % 1_000 == 500 {
                    try b.logTrialMetadata(trial.uid, ["at": .int(step)])
                    try b.logTrialMetrics(trial.uid, step: nil, ["note": .string("s\(step)")])
                    try b.commit()  // durable in the buffer even while the database is away
                }
            }
            if step == 6_000 {
                // Reads need the database: a clear error while it is away.
                #expect { try backend.getTrial(uid: trial.uid) } throws: { ($0 as? TrackError)?.message.contains("wait in the buffer") == true }
            }
        }
        try backend.setTrialStatus(trial.uid, .completed)
        try memory.setTrialStatus(trial.uid, .completed)
        let got = try #require(try backend.getTrial(uid: trial.uid))
        let want = try #require(try memory.getTrial(uid: trial.uid))
        #expect(got.metrics == want.metrics)
        #expect(got.metadata == want.metadata && got.status == .completed)
        #expect(got.updateCount == want.updateCount)
        // Compacted by the shipper (while running, or once idle): a snapshot, and the first
        // segments are gone.
        let layout = DatabaseLayout(root: "\(buffer)/log")
        for _ in 0..<200 where try Compactor.readManifest(layout) == nil { usleep(50_000) }
        #expect(try Compactor.readManifest(layout) != nil)
        // Segments go once two generations cover them: compact once more up to what is shipped
        // (what `track-replay compact` does on a buffer).
        _ = try Compactor.compact(database: "\(buffer)/log", upTo: ConsumerPosition.read("\(buffer)/log"), reporter: { _ in })
        #expect(layout.streamNames().map { layout.segmentBases($0).first ?? 0 }.allSatisfy { $0 > 0 })
        try backend.close()
        #expect(try storedSteps(uri.components(separatedBy: "&buffer=")[0], trial.uid) == Array(0..<15_000))
        // Opened again (snapshot plus the log after it), the buffer knows the trial and goes on.
        let reopened = try makeBackend(uri: uri)
        try reopened.logTrialMetric(trial.uid, name: "loss", step: 15_000, value: 15_000)
        try reopened.close()
        #expect(try storedSteps(uri.components(separatedBy: "&buffer=")[0], trial.uid) == Array(0..<15_001))
    }

    @Test("a buffer left unshipped is shipped by the next process; two shipping the same events store them once")
    func leftovers() throws {
        let server = try LocalPostgresServer()
        defer { server.stop() }
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let target = try server.freshDatabase()
        let location = try SQLLocation(uri: TrackURI(target))
        try server.pause()
        // Logged while the database is down, then the process stops.
        let first = try BufferedSQLBackend(location: location, bufferPath: "\(root)/a", batchPoints: 300)
        _ = try first.newProject(Project(name: "p"))
        let trial = try #require(try first.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        for step in Int64(0)..<5_000 { try first.logTrialMetric(trial.uid, name: "loss", step: step, value: 1) }
        try first.addTrialTags(trial.uid, ["done": true])
        try first.close(shipSeconds: 0.2)
        // A copy of the buffer (the same streams and sequence numbers) ships at the same time.
        try FileManager.default.copyItem(atPath: "\(root)/a", toPath: "\(root)/b")
        try server.start()
        let a = try BufferedSQLBackend(location: location, bufferPath: "\(root)/a", batchPoints: 300)
        let b = try BufferedSQLBackend(location: location, bufferPath: "\(root)/b", batchPoints: 300)
        DispatchQueue.concurrentPerform(iterations: 2) { i in _ = try? (i == 0 ? a : b).ship() }
        try a.close()
        try b.close()
        let reader = try SQLBackend(uri: TrackURI(target))
        let stored = try #require(try reader.getTrial(uid: trial.uid))
        #expect(stored.metrics["loss"]?.count == 5_000)
        #expect(stored.tags["done"] == true)
        #expect(stored.updateCount == 5_001)
        #expect(try reader.fetchProjects(.all).map(\.name) == ["p"])
        let events = try SQLConnection(location)
        defer { try? events.close() }
        let points = try events.run("SELECT count(*)::BIGINT FROM track_points").first!.decode(Int64.self)
        #expect(points == 5_000)
        // Where shipping got to is saved; a process opening the buffer again starts there.
        let position = try String(contentsOfFile: "\(root)/a/SHIP.position", encoding: .utf8)
        #expect(position.contains(#""offset":"#))
        let again = try BufferedSQLBackend(location: location, bufferPath: "\(root)/a", batchPoints: 300)
        #expect(try again.ship())
        try again.close()
        #expect(try events.run("SELECT count(*)::BIGINT FROM track_points").first!.decode(Int64.self) == 5_000)
        try reader.close()
    }

    @Test("a buffer writes to objects created by other machines, and auto-increment sees their revisions")
    func objectsFromElsewhere() throws {
        let server = try sharedPostgres.get()
        let root = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let target = try server.freshDatabase()
        let elsewhere = try SQLBackend(uri: TrackURI(target))
        _ = try elsewhere.newProject(Project(name: "p"))
        let g = try elsewhere.newTrialGroup(TrialGroup(name: "g", projectID: "p")).uid
        let trial = try #require(try elsewhere.newTrial(Trial(name: "t", projectID: "p", groupID: g), autoIncrement: false))
        try elsewhere.logTrialMetric(trial.uid, name: "loss", step: 0, value: 1)
        try elsewhere.commit()

        let buffered = try BufferedSQLBackend(location: SQLLocation(uri: TrackURI(target)), bufferPath: "\(root)/buffer")
        try buffered.logTrialMetric(trial.uid, name: "loss", step: 1, value: 2)
        try buffered.setGroupMetadata(g, ["note": "from the buffer"])
        let again = try #require(try buffered.newTrial(Trial(name: "t", projectID: "p", groupID: g), autoIncrement: true))
        #expect(again.revision == 1)
        try buffered.close()

        let stored = try #require(try elsewhere.getTrial(uid: trial.uid))
        #expect(stored.metrics["loss"]?.points.map(\.step) == [0, 1])
        #expect(stored.updateCount == 2)
        #expect(try elsewhere.getTrialGroup(g)?.metadata["note"] == "from the buffer")
        #expect(try elsewhere.getTrial(hash: trial.hash).map(\.revision) == [0, 1])
        #expect(try elsewhere.getProject("p")?.trials.count == 2)
        try elsewhere.close()
    }
}
