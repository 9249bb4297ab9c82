import Foundation
import Testing
import TrackBackends
import TrackLog
import TrackStore
import TrackModel

/// Issue 12: every file kind, truncated and with bytes flipped, densely sampled. Each outcome must
/// be nothing lost (an index repaired, an unused generation, a marker understating), or damage
/// reported with its file, or an error naming the file; never a silent loss, never a trap.
@Suite("every file, flipped and truncated")
struct FlipTests {
    /// The state a reader rebuilds, to compare.
    struct State: Equatable {
        var projects: [Project], groups: [TrialGroup], trials: [Trial]
        init(_ p: Projection) { projects = p.allProjects; groups = p.allGroups; trials = p.allTrials }
    }

    /// What reading the database gives: its state, or the error that refused it, and the notices.
    static func read(_ db: String) -> (State?, LogError?, [LogNotice]) {
        let notices = Notices()
        do {
            let m = try Materializer(database: db, reporter: notices.reporter)
            try m.reload()
            return (State(m.projection), nil, notices.all)
        } catch {
            return (nil, error, notices.all)
        }
    }

    @Test("DamagedFilesAreNeverSilent: flipped bytes and truncations in segments, indices, snapshots, MANIFESTs and the sync marker")
    func flipEverything() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db, durability: .groupCommit, segmentBytes: 4096, reporter: { _ in })
        try populate(backend, trials: 2, points: 400)
        try backend.compact()
        try populate(backend, trials: 1, points: 400, salt: 1)
        try backend.compact()
        try populate(backend, trials: 1, points: 300, salt: 2)
        try backend.close()
        let (expected, failure, notices) = Self.read(db)
        try #require(failure == nil && expected != nil, "\(String(describing: failure))")
        #expect(notices.isEmpty, "\(notices)")

        let layout = DatabaseLayout(root: db)
        var files: [String] = [layout.manifestPath, layout.previousManifestPath]
        files += FileSystem.list(layout.snapshotsDirectory).map(layout.snapshotPath)
        for stream in layout.streamNames() {
            files += FileSystem.list(layout.streamDirectory(stream)).filter { $0.hasSuffix(".log") || $0.hasSuffix(".idx") || $0 == "SYNCED" }
                .map { layout.streamDirectory(stream) + "/" + $0 }
        }
        #expect(files.contains { $0.hasSuffix(".idx") } && files.contains { $0.hasSuffix(".snap") } && files.contains { $0.hasSuffix("SYNCED") })
        var outcomes: [String: Int] = [:]
        for path in files {
            let original = Array(FileManager.default.contents(atPath: path) ?? Data())
            guard !original.isEmpty else { continue }
            // Every byte of the first 64 (headers), then a sample of the rest (denser under make crash).
            let stride = max(1, original.count / (16 * crashScalePowerLoss))
            let positions = Array(0..<min(64, original.count)) + Array(Swift.stride(from: 64, to: original.count, by: stride))
            for position in positions {
                for mutation in ["flip", "truncate"] {
                    var bytes = original
                    if mutation == "flip" { bytes[position] ^= 0x5A } else { bytes.removeSubrange(position...) }
                    FileManager.default.createFile(atPath: path, contents: Data(bytes))
                    let (state, error, notices) = Self.read(db)
                    FileManager.default.createFile(atPath: path, contents: Data(original))
                    let name = "\(mutation) \(path.split(separator: "/").suffix(2).joined(separator: "/")) at \(position)"
                    if let error {
                        // Refused: the error must say which file.
                        #expect(error.path != nil, "\(name): refused without naming a file: \(error)")
                        outcomes["refused, naming the file", default: 0] += 1
                    } else if state == expected {
                        outcomes["nothing lost", default: 0] += 1
                    } else {
                        let reported = notices.filter { $0.kind == .damage }
                        #expect(!reported.isEmpty, "\(name): silent loss")
                        #expect(reported.allSatisfy { !$0.path.isEmpty }, "\(name): damage without a file")
                        outcomes["loss reported", default: 0] += 1
                    }
                }
            }
        }
        #expect(outcomes["loss reported", default: 0] > 0 && outcomes["nothing lost", default: 0] > 0, "\(outcomes)")
        // The database is whole again.
        #expect(Self.read(db).0 == expected)
    }
}
