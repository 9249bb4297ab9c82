import Foundation
import Testing
import TrackBackends
import TrackLog
import TrackModel

/// Every backend turns an operation into the same events through the same checks (`Rules`), so
/// the same inputs are refused alike, with the same codes.
@Suite("one rule set for every backend")
struct OneRuleSetTests {
    static func backends(_ dir: ScratchDirectory) throws -> [(String, any TrackProtocol)] {
        [("ephemeral", MemoryBackend()),
         ("pickled", try PickledBackend(path: dir.path + "/p.snap")),
         ("file", try EventLogBackend(path: dir.path + "/db", reporter: { _ in }))]
    }

    @Test("SameInputsRefusedAlike: an oversized value, the reserved step and a missing trial are refused by memory, pickled and file alike")
    func sameRefusals() throws {
        let dir = ScratchDirectory()
        for (name, backend) in try Self.backends(dir) {
            defer { try? backend.close() }
            _ = try backend.newProject(Project(name: "p"))
            let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
            let before = try #require(try backend.getTrial(uid: trial.uid))
            func code(_ body: () throws -> Void) -> TrackError.Code? {
                do { try body(); return nil } catch let error as TrackError { return error.code } catch { return .io }
            }
            let blob = Value.string(String(repeating: "x", count: Limits.stringBytesMax + 1))
            #expect(code { try backend.logTrialMetadata(trial.uid, ["blob": blob]) } == .invalidArgument, "\(name)")
            #expect(code { try backend.addTrialTags(trial.uid, ["blob": blob]) } == .invalidArgument, "\(name)")
            #expect(code { _ = try backend.newProject(Project(name: "q", metadata: ["blob": blob])) } == .invalidArgument, "\(name)")
            #expect(code { try backend.logTrialMetrics(trial.uid, step: .int(.min), ["loss": .double(1)]) } == .invalidArgument, "\(name)")
            #expect(code { try backend.logTrialMetadata("nope", ["a": .int(1)]) } == .itemNotFound, "\(name)")
            #expect(code { try backend.setTrialStatus("nope", .completed, error: nil) } == .itemNotFound, "\(name)")
            // Nothing refused changed anything, and an empty metrics call changes nothing either.
            try backend.logTrialMetrics(trial.uid, step: 1, [:])
            let after = try #require(try backend.getTrial(uid: trial.uid))
            #expect(after.updateCount == before.updateCount, "\(name)")
            #expect(after.metadata.isEmpty && after.tags.isEmpty && after.metrics.isEmpty, "\(name)")
            #expect(try backend.getProject("q") == nil, "\(name)")
        }
    }
}
