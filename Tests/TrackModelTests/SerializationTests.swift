import Testing
import TrackModel

@Suite("track's JSON serialization of trials, groups and projects")
struct SerializationTests {
    static let files = ["track-json/small.json", "track-json/medium.json"]

    @Test("every trial, group and project of the reference files reads and writes back identically", arguments: files)
    func roundTrip(_ name: String) throws {
        let projects = try #require(try SharedData.load(name).arrayValue)
        for projectJSON in projects {
            var trials: [Trial] = []
            for t in projectJSON["trials"]?.arrayValue ?? [] {
                let trial = try Trial(trackJSON: t)
                #expect(trial.trackJSON == t, "trial \(trial.uid)")
                trials.append(trial)
            }
            var groups: [TrialGroup] = []
            for g in projectJSON["groups"]?.arrayValue ?? [] {
                let group = try TrialGroup(trackJSON: g)
                #expect(group.trackJSON == g, "group \(group.uid)")
                groups.append(group)
            }
            let project = try Project(trackJSON: projectJSON)
            #expect(project.trials == trials.map(\.uid))
            #expect(project.trackJSON(embeddingTrials: trials, groups: groups) == projectJSON)
        }
    }

    @Test("the small file's details: statuses, errors, chronos, mixed metrics")
    func smallDetails() throws {
        let project = try #require(try SharedData.load("track-json/small.json").arrayValue?.first)
        let trials = try (project["trials"]?.arrayValue ?? []).map { try Trial(trackJSON: $0) }
        let byName = Dictionary(trials.map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        let exception = try #require(trials.first { $0.status == .exception })
        #expect(exception.errors == ["RuntimeError: CUDA out of memory"])
        let schedule = try #require(exception.metrics["lr_schedule"])
        #expect(schedule.points == [MetricPoint(step: nil, value: 0.01), MetricPoint(step: 5, value: 0.005)])
        guard case .stat(let stat)? = exception.chronos["epoch_time"] else { Issue.record("epoch_time is a stat stream"); return }
        #expect(stat.min == .infinity && stat.max == -.infinity && stat.count == max(stat.observationCount - stat.dropObservations, 1))
        let completed = try #require(trials.first { $0.status == .completed })
        #expect(completed.updateCount == 20)
        #expect(completed.metadata["gpu"] == "V100")
        #expect(completed.metrics["loss"]?.points.map(\.step) == [1, 2, 3])
        #expect(byName.count == 5)
    }

    @Test("malformed serialized objects are errors naming the field")
    func malformed() throws {
        #expect(throws: ModelError.self) { try Trial(trackJSON: [1, 2]) }
        #expect(throws: ModelError.self) { try Trial(trackJSON: ["dtype": "project"]) }
        #expect(throws: ModelError.self) { try Trial(trackJSON: ["name": 3]) }
        // A metric keyed by a text step is not malformed: Python keys metrics by any step.
        #expect(try Trial(trackJSON: ["name": "x", "metrics": ["loss": ["a": 1]]]).metrics["loss"]?.points.first?.step == .text("a"))
        #expect(throws: ModelError.self) { try Trial(trackJSON: ["name": "x", "revision": -1]) }
        #expect(throws: ModelError.self) { try TrialGroup(trackJSON: ["name": "g"]) }
        #expect(throws: ModelError.self) { try StatStream(trackJSON: ["sum": 1]) }
        #expect(throws: ModelError.self) { try Status(trackJSON: 999) }
        do { _ = try Trial(trackJSON: ["name": "x", "metrics": ["loss": ["a": 1]]]) } catch {
            #expect(error.message.contains("'a'"))
        }
    }

    @Test("a trial without a hash gets it from its uid, or computes it")
    func hashFallback() throws {
        let fromUID = try Trial(trackJSON: ["uid": "abc_3", "name": "n"])
        #expect(fromUID.hash == "abc" && fromUID.revision == 3)
        let computed = try Trial(trackJSON: ["name": "exp", "version": "1.0.0"])
        #expect(computed.hash == "575381a4049cd7fa5b768f00392b2441d5b5ff0d4f7808e6c58b902a5ac827d4")
    }

    @Test("statuses: built-in by name, custom by name and value")
    func statuses() throws {
        #expect(Status.named("Completed", value: 7) == .completed)
        #expect(Status.named("Queued", value: 42) == Status(name: "Queued", value: 42))
        #expect(!Status(name: "Queued", value: 42).isBuiltin && Status.running.isBuiltin)
        #expect(try Status(trackJSON: ["name": "Queued", "value": 42]) == Status(name: "Queued", value: 42))
        #expect(try Status(trackJSON: ["value": 302]) == .completed)
        #expect(try Status(trackJSON: "Broken") == .broken)
        #expect(Status.builtins.map(\.value) == [0, 100, 101, 200, 201, 202, 203, 300, 301, 302])
    }
}
