import Foundation
import Testing
import Track

@Suite("TrackClient and TrialLogger")
struct ClientTests {
    @Test("a trial logged through the client reads back whole")
    func endToEnd() throws {
        let client = try TrackClient(backend: "ephemeral://")
        try client.setProject(name: "mnist", description: "digits")
        let group = try client.setGroup(name: "lr-sweep")
        let logger = try client.newTrial(name: "run", parameters: ["lr": 0.1, "batch_size": 32])
        try logger.logArguments(["epochs": 2])
        try logger.logMetadata(["gpu": "none"])
        try logger.addTags(["stage": "test"])
        try logger.start()
        let loss = logger.metric("loss")
        for epoch in 0..<2 {
            try logger.chrono("epoch") {
                for step in 0..<10 { try loss.log(1.0 / Double(step + 1), step: Int64(epoch * 10 + step)) }
            }
            try logger.logMetrics(step: .int(Int64(epoch)), ["accuracy": .double(0.5 + Double(epoch) / 10)])
        }
        try logger.finish()

        let trial = try logger.trial()
        #expect(trial.status == .completed)
        #expect(trial.projectID == "mnist")
        #expect(trial.groupID == group.uid)
        #expect(trial.parameters == ["lr": 0.1, "batch_size": 32, "epochs": 2])
        #expect(trial.metadata["gpu"] == "none")
        #expect(trial.tags["stage"] == "test")
        #expect(trial.metrics["loss"]?.count == 20)
        #expect(trial.metrics["loss"]?.lastStep == 19)
        #expect(trial.metrics["accuracy"]?.points.map(\.step) == [0, 1])
        guard case .stat(let epochs)? = trial.chronos["epoch"] else { Issue.record("epoch chrono"); return }
        #expect(epochs.observationCount == 2)
        guard case .value(.double(let runtime)?)? = trial.chronos["runtime"] else { Issue.record("runtime"); return }
        #expect(runtime >= 0)
        // TrackClient's default version is the int 0, as Python's client.
        #expect(trial.hash == (try TrialHash.trial(name: "run", version: 0, parameters: ["lr": 0.1, "batch_size": 32])))
        #expect(try client.backend.getTrialGroup(group.uid)?.trials == [trial.uid])
    }

    @Test("the same trial again resumes it, or makes a new revision when asked")
    func resumeOrNewRevision() throws {
        let client = try TrackClient(backend: "ephemeral://")
        try client.setProject(name: "p")
        let a = try client.newTrial(name: "t", parameters: ["x": 1])
        let b = try client.newTrial(name: "t", parameters: ["x": 1])
        #expect(a.uid == b.uid)
        let c = try client.newTrial(name: "t", parameters: ["x": 1], newRevision: true)
        #expect(c.uid.hasSuffix("_1"))
        let d = try client.newTrial(name: "t", parameters: ["x": 1])
        #expect(d.uid == c.uid, "resumes the latest revision")
    }

    @Test("a failure inside run() finishes the trial with Exception and its error text")
    func runFailure() throws {
        struct Diverged: Error, CustomStringConvertible { var description: String { "loss diverged" } }
        let client = try TrackClient(backend: "ephemeral://")
        try client.setProject(name: "p")
        let logger = try client.newTrial(name: "t")
        #expect(throws: Diverged.self) {
            try logger.run { l in
                try l.metric("loss").log(.nan, step: 0)
                throw Diverged()
            }
        }
        let trial = try logger.trial()
        #expect(trial.status == .exception)
        #expect(trial.errors == ["loss diverged"])
    }

    @Test("a chrono stops even when its body throws")
    func chronoOnThrow() throws {
        struct Oops: Error {}
        let client = try TrackClient(backend: "ephemeral://")
        try client.setProject(name: "p")
        let logger = try client.newTrial(name: "t")
        #expect(throws: Oops.self) { try logger.chrono("step") { throw Oops() } }
        guard case .stat(let s)? = try logger.trial().chronos["step"] else { Issue.record("step chrono"); return }
        #expect(s.observationCount == 1)
    }

    @Test("bad input gives errors that name the problem")
    func badInput() throws {
        #expect { try TrackClient(backend: "nope://x") } throws: { ($0 as? TrackError)?.code == .unknownScheme }
        let client = try TrackClient(backend: "ephemeral://")
        #expect { try client.setGroup(name: "g") } throws: { ($0 as? TrackError)?.message.contains("project") == true }
        try client.setProject(name: "p")
        #expect { try client.newTrial(name: "t", parameters: ["x": -1]) } throws: {
            ($0 as? TrackError)?.message.contains("parameter 'x'") == true
        }
        #expect { try client.logger(forTrial: "nope_0") } throws: { ($0 as? TrackError)?.code == .itemNotFound }
    }
}

@Suite("TrackClient on file://")
struct FileClientTests {
    @Test("a metric handle on the event log writes straight to the stream and reads back")
    func metricHandleOnFile() throws {
        let dir = NSTemporaryDirectory() + "swift-track-client-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let client = try TrackClient(backend: "file://\(dir)/db")
        try client.setProject(name: "p")
        let logger = try client.newTrial(name: "t")
        let loss = logger.metric("loss")
        try logger.run { _ in
            for step in 0..<10_000 { try loss.log(1 / Double(step + 1), step: Int64(step)) }
        }
        let trial = try logger.trial()
        #expect(trial.metrics["loss"]?.count == 10_000)
        #expect(trial.status == .completed)
        #expect(trial.updateCount == 10_000 + 4)
        try client.backend.close()
    }
}

/// Issue 24, point 3: a metric handle goes through the backend contract, with its errors.
@Suite("metric handles and the backend contract")
struct MetricSinkTests {
    static func scratch() -> String {
        let path = NSTemporaryDirectory() + "swift-track-sink-tests/\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The error code of `body`, or nil when it did not throw.
    static func code(_ body: () throws -> Void) -> TrackError.Code? {
        do { try body(); return nil } catch { return (error as? TrackError)?.code ?? .io }
    }

    @Test("HandleAndCallAgree: the same inputs through MetricHandle.log and backend.logTrialMetric give the same outcome",
          arguments: ["ephemeral://", "file://", "pickled://"])
    func handleMatchesCall(_ scheme: String) throws {
        let dir = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let uri = scheme == "ephemeral://" ? scheme : scheme + dir + (scheme == "pickled://" ? "/db.pkl" : "/db")
        let backend = try makeBackend(uri: uri)
        defer { try? backend.close() }
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false)).uid
        let missing = String(repeating: "0", count: 64) + "_0"
        // (trial, step) probes: the reserved step, a trial that does not exist, a good point.
        let probes: [(String, Int64?, TrackError.Code?)] = [(trial, Int64.min, .invalidArgument), (missing, 1, .itemNotFound), (trial, 2, nil)]
        for (uid, step, expected) in probes {
            let viaCall = Self.code { try backend.logTrialMetric(uid, name: "loss", step: step, value: 1) }
            let handleStep = step.map { $0 == Int64.min ? $0 : $0 + 100 }
            let viaHandle = Self.code { try MetricHandle(backend: backend, trial: uid, name: "loss").log(1, step: handleStep) }
            #expect(viaCall == expected, "\(scheme) logTrialMetric(\(uid.prefix(6)), step \(String(describing: step)))")
            #expect(viaHandle == expected, "\(scheme) MetricHandle(\(uid.prefix(6)), step \(String(describing: step)))")
        }
        // Nothing was written for the refused points: one point from each path.
        #expect(try backend.getTrial(uid: trial)?.metrics["loss"]?.points.map(\.step) == [2, 102])
        #expect(try backend.getTrial(uid: missing) == nil)
    }
}
