import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackSQL

/// `../shared/data/track-json/<name>`, parsed (files made by Python track).
func referenceTrackJSON(_ name: String) throws -> Value {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = ProcessInfo.processInfo.environment["TRACK_SHARED_DATA"].map { URL(fileURLWithPath: $0) }
        ?? root.deletingLastPathComponent().appendingPathComponent("shared/data")
    return try JSON.decode(Array(try Data(contentsOf: dir.appendingPathComponent("track-json/\(name)"))))
}

@Suite("importing track databases into cockroach://")
struct SQLImportTests {
    @Test("the reference files made by Python track import and export back unchanged", arguments: ["small", "medium"])
    func roundTrip(_ name: String) throws {
        registerSQLBackend()
        let original = try referenceTrackJSON("\(name).json")
        let uri = try sharedPostgres.get().freshDatabase()
        let backend = try #require(try makeBackend(uri: uri) as? SQLBackend)
        var calls = 0
        let database = try TrackFileDatabase(trackJSON: original)
        try backend.importDatabase(database) { done, total in
            calls += 1
            #expect(done <= total)
        }
        #expect(calls == database.projects.count + database.groups.count + database.trials.count)
        try backend.close()
        // Read back by another process's backend: the same file, value for value.
        let reader = try makeBackend(uri: uri)
        var unplaced: [String] = []
        let exported = try reader.exportDatabase().trackJSON(unplaced: &unplaced)
        #expect(unplaced.isEmpty)
        #expect(exported == original)
        // Revision tags and statuses as imported, and the trials take new writes.
        for trial in database.trials.prefix(5) {
            let stored = try #require(try reader.getTrial(uid: trial.uid))
            #expect(stored.updateCount == trial.updateCount && stored.status == trial.status)
            try reader.logTrialMetric(trial.uid, name: "after_import", step: 1, value: 1)
            #expect(try reader.getTrial(uid: trial.uid)?.updateCount == trial.updateCount + 1)
        }
        try reader.close()
    }

    @Test("importing over existing objects is refused and writes nothing")
    func clash() throws {
        registerSQLBackend()
        let database = try TrackFileDatabase(trackJSON: try referenceTrackJSON("small.json"))
        let backend = try #require(try makeBackend(uri: try sharedPostgres.get().freshDatabase()) as? SQLBackend)
        try backend.importDatabase(database)
        let before = try backend.exportDatabase()
        #expect { try backend.importDatabase(database) } throws: { ($0 as? TrackError)?.message.contains("already holds") == true }
        #expect(try backend.exportDatabase() == before)
        try backend.close()
    }
}
