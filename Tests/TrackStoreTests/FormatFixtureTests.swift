import Foundation
import Testing
import TrackLog
import TrackModel
import TrackStore

/// Every file format stays readable: a database written by an earlier build (two compaction
/// generations, both snapshots, a log after the newest) opens and reads back. The expected
/// export is what today's rules make of it: when a rule changes on purpose (issue 13's StatStream
/// arithmetic did), it is regenerated with `track-replay export`; the database never is.
@Suite("databases written by earlier builds")
struct FormatFixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    @Test("OldDatabaseOpens: format1.db (written before the store module) reads back equal to its export")
    func format1() throws {
        // A copy: opening must not depend on writing into the committed fixture.
        let scratch = NSTemporaryDirectory() + "swift-track-fixture-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let db = scratch + "/format1.db"
        try FileManager.default.copyItem(atPath: Self.fixtures + "/format1.db", toPath: db)

        let materializer = try Materializer(database: db, reporter: { _ in })
        try materializer.reload()
        #expect(materializer.damage.isEmpty, "\(materializer.damage)")
        #expect(materializer.snapshotGeneration == 2)
        let p = materializer.projection
        let read = TrackFileDatabase(projects: p.allProjects, groups: p.allGroups, trials: p.allTrials)
        // Compared as text, as track-replay export writes it (NaN, which the run logged, is not
        // equal to itself as a value).
        let data = try #require(FileManager.default.contents(atPath: Self.fixtures + "/format1.export.json"))
        var unplaced: [String] = []
        let text = JSON.encode(read.trackJSON(unplaced: &unplaced), pretty: true, pythonSeparators: true) + "\n"
        #expect(read.trials.count == 5 && unplaced.isEmpty)
        #expect(text == String(decoding: data, as: UTF8.self))
    }
}
