import Foundation
import Testing
import TrackBackends
import TrackConformance
import TrackLog
import TrackModel

@Suite("pickled:// (one snapshot file)")
struct PickledBackendTests {
    @Test("passes the conformance suite", arguments: Conformance.cases)
    func conformance(_ check: ConformanceCase) throws {
        let dir = ScratchDirectory()
        try check.run { strict in try makeBackend(uri: "pickled://\(dir.path)/db.snap\(strict ? "" : "?strict=false")") }
    }

    @Test("commit writes one file that reopens to the same state, chronos and statuses included")
    func roundTrip() throws {
        let dir = ScratchDirectory()
        let path = dir.path + "/runs/db.snap"
        let backend = try PickledBackend(path: path)
        _ = try backend.newProject(Project(name: "p", metadata: ["owner": "alice"]))
        let group = try backend.newTrialGroup(TrialGroup(name: "g", projectID: "p", metadata: ["k": 1]))
        let trial = try #require(try backend.newTrial(Trial(name: "t", version: "1.0", parameters: ["lr": 0.1], projectID: "p", groupID: group.uid), autoIncrement: false))
        try backend.logTrialStart(trial.uid)
        for i in 0..<3 {
            try backend.logTrialChronoStart(trial.uid, name: "epoch")
            try backend.logTrialChronoFinish(trial.uid, name: "epoch")
            try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(i), value: 1 / Double(i + 1))
        }
        try backend.logTrialMetrics(trial.uid, step: nil, ["note": "x", "n": 3])
        try backend.setTrialStatus(trial.uid, Status(name: "Queued", value: 42), error: "boom")
        try backend.logTrialFinish(trial.uid)
        try backend.commit()
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        let before = try StateDump(backend)
        let reopened = try makeBackend(uri: "pickled://\(path)")
        let after = try StateDump(reopened)
        #expect(after.projects == before.projects)
        #expect(after.groups == before.groups)
        #expect(after.trials == before.trials)
        // Later logging adds to the restored chrono.
        try reopened.logTrialChronoStart(trial.uid, name: "epoch")
        try reopened.logTrialChronoFinish(trial.uid, name: "epoch")
        guard case .stat(let s)? = try reopened.getTrial(uid: trial.uid)?.chronos["epoch"] else { Issue.record("epoch chrono"); return }
        #expect(s.observationCount == 4)
    }

    @Test("a damaged file is a clear error")
    func damaged() throws {
        let dir = ScratchDirectory()
        let path = dir.path + "/db.snap"
        FileManager.default.createFile(atPath: path, contents: Data("not a snapshot".utf8))
        #expect { try PickledBackend(path: path) } throws: { ($0 as? TrackError)?.message.contains(path) == true }
    }

    @Test("PickledOversizedValueIsRefused: a value the file could not hold is refused, and the file still opens")
    func oversizedValue() throws {
        let dir = ScratchDirectory()
        let path = dir.path + "/db.snap"
        let backend = try PickledBackend(path: path)
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        let big = String(repeating: "x", count: Limits.stringBytesMax + 1)
        #expect { try backend.logTrialMetadata(trial.uid, ["blob": .string(big)]) } throws: {
            guard let e = $0 as? TrackError else { return false }
            return e.code == .invalidArgument && e.message.contains("metadata.blob") && e.message.contains("limit")
        }
        #expect { try backend.fetchAndUpdateTrial(Query([.init("name", .equal, "t")]), .logMetadata(["blob": .string(big)])) } throws: {
            ($0 as? TrackError)?.code == .invalidArgument
        }
        try backend.logTrialMetadata(trial.uid, ["small": 1])
        try backend.commit()
        let reopened = try PickledBackend(path: path)
        #expect(try reopened.getTrial(uid: trial.uid)?.metadata["small"] == 1)
    }
}

