import TrackBackends
import TrackModel

/// One check of the conformance suite. Each runs on a fresh, empty backend.
public struct ConformanceCase: Sendable, CustomStringConvertible {
    /// A name saying what the check expects (`duplicateTrialReturnsNil`).
    public let name: String
    /// Whether the backend must be strict (refuse missing references) or lenient.
    public let strict: Bool
    let body: @Sendable (any TrackProtocol) throws -> Void

    init(_ name: String, strict: Bool = true, _ body: @escaping @Sendable (any TrackProtocol) throws -> Void) {
        self.name = name
        self.strict = strict
        self.body = body
    }

    public var description: String { name }

    /// Runs the check on a backend made by `factory` (given whether it must be strict), closing it
    /// afterwards. Throws a `ConformanceFailure` saying what did not hold.
    public func run(_ factory: (_ strict: Bool) throws -> any TrackProtocol) throws {
        let backend: any TrackProtocol
        do {
            backend = try factory(strict)
        } catch {
            throw ConformanceFailure(caseName: name, message: "the backend could not be made: \(error)")
        }
        defer { try? backend.close() }
        do {
            try body(backend)
        } catch let failed as ExpectationFailed {
            throw ConformanceFailure(caseName: name, message: failed.message)
        } catch {
            throw ConformanceFailure(caseName: name, message: "unexpected error: \(type(of: error)): \(error)")
        }
    }
}

/// The suite every `TrackProtocol` backend must pass, unchanged: the operations of `track`'s
/// `Protocol` with `track`'s semantics, queries, revisions, statuses, and errors on bad input.
///
/// Use it from a test target with Swift Testing:
/// ```swift
/// @Test(arguments: Conformance.cases)
/// func memory(_ check: ConformanceCase) throws { try check.run { MemoryBackend(strict: $0) } }
/// ```
public enum Conformance {
    /// Runs every case and returns the failures (empty when the backend conforms).
    public static func failures(_ factory: (_ strict: Bool) throws -> any TrackProtocol) -> [ConformanceFailure] {
        cases.compactMap { check in
            do { try check.run(factory); return nil } catch let failure as ConformanceFailure { return failure } catch {
                return ConformanceFailure(caseName: check.name, message: "\(error)")
            }
        }
    }

    /// Every check.
    public static let cases: [ConformanceCase] = projects + groups + trials + logging + queries + updates + errors
}

// MARK: - Fixtures

let projectName = "conformance"

@discardableResult
func makeProject(_ b: any TrackProtocol, _ name: String = projectName) throws -> Project {
    try b.newProject(Project(name: name, description: "a project", metadata: ["owner": "alice"]))
}

@discardableResult
func makeGroup(_ b: any TrackProtocol, _ name: String = "sweep") throws -> TrialGroup {
    try b.newTrialGroup(TrialGroup(name: name, projectID: projectName, description: "a sweep", metadata: ["search": "grid"]))
}

func makeTrial(_ b: any TrackProtocol, name: String = "run", parameters: ValueObject = ["lr": 0.1, "batch_size": 64],
               group: String? = nil, autoIncrement: Bool = false) throws -> Trial? {
    let trial = try Trial(name: name, version: "1.0", parameters: parameters, description: "a trial", tags: ["hpo": "grid"],
                          projectID: projectName, groupID: group)
    return try b.newTrial(trial, autoIncrement: autoIncrement)
}

func readTrial(_ b: any TrackProtocol, _ uid: String) throws -> Trial {
    try unwrap(try b.getTrial(uid: uid), "trial \(uid) read back")
}

// MARK: - Projects

extension Conformance {
    static let projects: [ConformanceCase] = [
        ConformanceCase("newProjectStoresAndGetProjectReturnsIt") { b in
            let created = try makeProject(b)
            try expectEqual(created.uid, projectName, "a project's uid is its name")
            let read = try unwrap(try b.getProject(projectName), "getProject")
            try expectEqual(read.name, projectName, "name")
            try expectEqual(read.description, "a project", "description")
            try expectEqual(read.metadata, ["owner": "alice"], "metadata")
        },
        ConformanceCase("newProjectOnExistingReturnsTheExistingOne") { b in
            try makeProject(b)
            let again = try b.newProject(Project(name: projectName, description: "other", metadata: ["owner": "bob"]))
            try expectEqual(again.description, "a project", "the second newProject returns the first project")
            try expectEqual(try b.fetchProjects(.all).count, 1, "number of projects")
            try expectEqual(try b.getProject(projectName)?.description, "a project", "stored description is unchanged")
        },
        ConformanceCase("getProjectOfMissingProjectIsNil") { b in
            try makeProject(b)
            try expect(try b.getProject("nope") == nil, "getProject(\"nope\") should be nil")
        },
    ]

    // MARK: - Groups

    static let groups: [ConformanceCase] = [
        ConformanceCase("groupUIDIsTrackHashAndGroupIsListedInProject") { b in
            try makeProject(b)
            let group = try makeGroup(b)
            try expectEqual(group.uid, TrialHash.group(name: "sweep", projectID: projectName), "group uid = compute_hash(name, project)")
            let read = try unwrap(try b.getTrialGroup(group.uid), "getTrialGroup")
            try expectEqual(read.name, "sweep", "name")
            try expectEqual(read.projectID, projectName, "project_id")
            try expectEqual(read.metadata, ["search": "grid"], "metadata")
            try expectEqual(try b.getProject(projectName)?.groups ?? [], [group.uid], "project's groups")
        },
        ConformanceCase("newTrialGroupOnExistingReturnsTheExistingOne") { b in
            try makeProject(b)
            let first = try makeGroup(b)
            let again = try b.newTrialGroup(TrialGroup(name: "sweep", projectID: projectName, description: "other"))
            try expectEqual(again.uid, first.uid, "uid")
            try expectEqual(again.description, "a sweep", "the existing group is returned")
            try expectEqual(try b.fetchGroups(.all).count, 1, "number of groups")
            try expectEqual(try b.getProject(projectName)?.groups.count, 1, "the project lists the group once")
        },
        ConformanceCase("strictRefusesGroupOfMissingProject") { b in
            try expectError(.missingReference, mentioning: ["ghost"], "a group in a missing project") {
                _ = try b.newTrialGroup(TrialGroup(name: "g", projectID: "ghost"))
            }
            try expectEqual(try b.fetchGroups(.all).count, 0, "nothing is stored after the refusal")
        },
        ConformanceCase("setGroupMetadataMergesAndBumpsRevision") { b in
            try makeProject(b)
            let group = try makeGroup(b)
            try b.setGroupMetadata(group.uid, ["budget": 4, "search": "random"])
            let read = try unwrap(try b.getTrialGroup(group.uid), "group")
            try expectEqual(read.metadata, ["search": "random", "budget": 4], "merged metadata keeps key order")
            try expectEqual(read.updateCount, group.updateCount + 1, "group revision tag")
        },
    ]

    // MARK: - Trials

    static let trials: [ConformanceCase] = [
        ConformanceCase("newTrialStoresTrialWithTrackUID") { b in
            try makeProject(b)
            let group = try makeGroup(b)
            let created = try unwrap(try makeTrial(b, group: group.uid), "newTrial")
            let expectedHash = try TrialHash.trial(name: "run", version: "1.0", parameters: ["lr": 0.1, "batch_size": 64])
            try expectEqual(created.uid, "\(expectedHash)_0", "uid = <compute_hash(name, version, **parameters)>_0")
            let read = try readTrial(b, created.uid)
            try expectEqual(read.name, "run", "name")
            try expectEqual(read.version, "1.0", "version")
            try expectEqual(read.description, "a trial", "description")
            try expectEqual(read.tags, ["hpo": "grid"], "tags")
            try expectEqual(Array(read.parameters.keys), ["lr", "batch_size"], "parameter order")
            try expectEqual(read.status, .createdGroup, "a new trial's status")
            try expectEqual(read.updateCount, 0, "a new trial's revision tag")
            try expectEqual(try b.getProject(projectName)?.trials ?? [], [created.uid], "project's trials")
            try expectEqual(try b.getTrialGroup(group.uid)?.trials ?? [], [created.uid], "group's trials")
        },
        ConformanceCase("newTrialOnExistingUIDReturnsNil") { b in
            try makeProject(b)
            try _ = unwrap(try makeTrial(b), "first newTrial")
            try expect(try makeTrial(b) == nil, "a second newTrial of the same uid returns nil")
            try expectEqual(try b.fetchTrials(.all).count, 1, "number of trials")
            try expectEqual(try b.getProject(projectName)?.trials.count, 1, "the project lists the trial once")
        },
        ConformanceCase("autoIncrementStoresNextRevision") { b in
            try makeProject(b)
            let first = try unwrap(try makeTrial(b), "first")
            let second = try unwrap(try makeTrial(b, autoIncrement: true), "auto-increment")
            let third = try unwrap(try makeTrial(b, autoIncrement: true), "auto-increment again")
            try expectEqual(second.revision, 1, "second revision")
            try expectEqual(third.revision, 2, "third revision")
            try expectEqual(second.hash, first.hash, "same hash")
            try expectEqual(third.uid, "\(first.hash)_2", "uid of the third")
            try expectEqual(try b.getTrial(hash: first.hash).map(\.revision), [0, 1, 2], "getTrial returns every revision in order")
        },
        ConformanceCase("getTrialOfUnknownHashIsEmpty") { b in
            try makeProject(b)
            let trial = try unwrap(try makeTrial(b), "trial")
            try expect(try b.getTrial(hash: "0000").isEmpty, "getTrial of an unknown hash is empty")
            try expectEqual(try b.getTrial(hash: trial.hash).count, 1, "getTrial of the trial's hash")
        },
        ConformanceCase("strictRefusesTrialOfMissingProjectOrGroup") { b in
            try expectError(.missingReference, mentioning: ["ghost"], "a trial in a missing project") {
                _ = try b.newTrial(try Trial(name: "t", projectID: "ghost"), autoIncrement: false)
            }
            try makeProject(b)
            try expectError(.missingReference, mentioning: ["nogroup"], "a trial in a missing group") {
                _ = try b.newTrial(try Trial(name: "t", projectID: projectName, groupID: "nogroup"), autoIncrement: false)
            }
            try expectEqual(try b.fetchTrials(.all).count, 0, "nothing is stored after the refusals")
        },
        ConformanceCase("lenientStoresOrphans", strict: false) { b in
            let group = try b.newTrialGroup(TrialGroup(name: "g", projectID: "ghost"))
            try expect(try b.getTrialGroup(group.uid) != nil, "a lenient backend stores a group of a missing project")
            let trial = try unwrap(try b.newTrial(try Trial(name: "t", projectID: "ghost", groupID: "nogroup"), autoIncrement: false), "orphan trial")
            try expectEqual(try readTrial(b, trial.uid).projectID, "ghost", "orphan trial's project_id")
        },
        ConformanceCase("addProjectTrialAndAddGroupTrialLinkBothWays") { b in
            try makeProject(b)
            let group = try makeGroup(b)
            let trial = try unwrap(try b.newTrial(try Trial(name: "loose"), autoIncrement: false), "trial without project")
            let projectBefore = try unwrap(try b.getProject(projectName), "project")
            try b.addProjectTrial(project: projectName, trial: trial.uid)
            try b.addGroupTrial(group: group.uid, trial: trial.uid)
            let read = try readTrial(b, trial.uid)
            try expectEqual(read.projectID, projectName, "trial's project_id")
            try expectEqual(read.groupID, group.uid, "trial's group_id")
            try expectEqual(read.updateCount, 2, "trial revision tag after two links")
            let project = try unwrap(try b.getProject(projectName), "project")
            try expect(project.trials.contains(trial.uid), "the project lists the trial")
            try expectEqual(project.updateCount, projectBefore.updateCount + 1, "project revision tag")
            try expect(try b.getTrialGroup(group.uid)?.trials.contains(trial.uid) == true, "the group lists the trial")
        },
    ]

    // MARK: - Logging

    static let logging: [ConformanceCase] = [
        ConformanceCase("metricsWithStepsAreKeyedByStep") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: 1, ["loss": 2.0, "acc": 0.5])
            try b.logTrialMetrics(t, step: 2, ["loss": 1.0])
            try b.logTrialMetrics(t, step: 3, ["loss": 0.5])
            try b.logTrialMetrics(t, step: 2, ["loss": 1.5])
            let read = try readTrial(b, t)
            try expectEqual(Array(read.metrics.keys), ["loss", "acc"], "metric names in first-logged order")
            let loss = try unwrap(read.metrics["loss"], "loss series")
            try expectEqual(loss.points.map(\.step), [1, 2, 3], "steps (logging step 2 again replaces it)")
            try expectEqual(loss.points.map(\.value), [2.0, 1.5, 0.5], "values")
            try expectEqual(read.metrics["acc"]?.points ?? [], [MetricPoint(step: 1, value: 0.5)], "acc series")
        },
        ConformanceCase("metricsKeepPythonsOrder") { b in
            // Python track keeps insertion order: a step-keyed metric keeps its steps in the order
            // they first came; a list metric appends [step, value] pairs as they come.
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: 5, ["loss": 0.5])
            try b.logTrialMetrics(t, step: 2, ["loss": 0.2])
            try b.logTrialMetrics(t, step: 5, ["loss": 0.4])
            try b.logTrialMetrics(t, step: nil, ["acc": 0.1])
            try b.logTrialMetrics(t, step: 5, ["acc": 0.5])
            try b.logTrialMetrics(t, step: 2, ["acc": 0.2])
            let read = try readTrial(b, t)
            try expectEqual(JSON.encode(read.metrics["loss"]?.trackJSON ?? .null), #"{"5":0.4,"2":0.2}"#, "dict in arrival order, 5 replaced in place")
            try expectEqual(JSON.encode(read.metrics["acc"]?.trackJSON ?? .null), "[0.1,[5,0.5],[2,0.2]]", "list in arrival order")
        },
        ConformanceCase("floatAndTextSteps") { b in
            // Python takes any hashable step and keys the metric by it.
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: .text("warmup"), ["loss": 0.9])
            try b.logTrialMetrics(t, step: .number(1.5), ["loss": 0.5, "acc": .int(3)])
            try b.logTrialMetrics(t, step: 2, ["loss": 0.4])
            try b.logTrialMetrics(t, step: .text("warmup"), ["loss": 0.8])
            try b.logTrialMetrics(t, step: .number(2.0), ["loss": 0.3])
            try b.logTrialMetrics(t, step: nil, ["lr": 0.1])
            try b.logTrialMetrics(t, step: .text("end"), ["lr": 0.2])
            try b.logTrialMetrics(t, step: .text(""), ["lr": 0.3])
            let read = try readTrial(b, t)
            try expectEqual(JSON.encode(read.metrics["loss"]?.trackJSON ?? .null), #"{"warmup":0.8,"1.5":0.5,"2":0.3}"#,
                            "keyed by text and float steps; 2.0 is the key 2 (Python: 2 == 2.0)")
            try expectEqual(JSON.encode(read.metrics["acc"]?.trackJSON ?? .null), #"{"1.5":3}"#, "a non-double value at a float step")
            try expectEqual(JSON.encode(read.metrics["lr"]?.trackJSON ?? .null), #"[0.1,["end",0.2],0.3]"#, "a list takes [step, value] for a text step, the bare value for \"\"")
        },
        ConformanceCase("stepZeroOnAListIsBare") { b in
            // Python: `elif step:` appends the bare value for step 0.
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: nil, ["acc": 0.1])
            try b.logTrialMetrics(t, step: 0, ["acc": 0.2])
            try b.logTrialMetrics(t, step: 1, ["acc": 0.3])
            try expectEqual(JSON.encode(try readTrial(b, t).metrics["acc"]?.trackJSON ?? .null), "[0.1,0.2,[1,0.3]]", "step 0 appends the bare value")
        },
        ConformanceCase("metricsWithoutStepsAreAppended") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            for v in [3.0, 1.0, 2.0, 1.0] { try b.logTrialMetrics(t, step: nil, ["loss": .double(v)]) }
            let loss = try unwrap(try readTrial(b, t).metrics["loss"], "loss")
            try expectEqual(loss.points.map(\.value), [3.0, 1.0, 2.0, 1.0], "values in logging order, repeats kept")
            try expect(loss.points.allSatisfy { $0.step == nil }, "no steps")
        },
        ConformanceCase("scalarFastPathEqualsGeneralPath") { b in
            try makeProject(b)
            let fast = try unwrap(try makeTrial(b, name: "fast"), "trial").uid
            let slow = try unwrap(try makeTrial(b, name: "slow"), "trial").uid
            for step in 0..<50 {
                let v = 1.0 / Double(step + 1)
                try b.logTrialMetric(fast, name: "loss", step: Int64(step), value: v)
                try b.logTrialMetrics(slow, step: .int(Int64(step)), ["loss": .double(v)])
            }
            try b.logTrialMetric(fast, name: "lr", step: nil, value: 0.1)
            try b.logTrialMetrics(slow, step: nil, ["lr": 0.1])
            let a = try readTrial(b, fast), c = try readTrial(b, slow)
            try expectEqual(a.metrics, c.metrics, "metrics logged through logTrialMetric and logTrialMetrics")
            try expectEqual(a.updateCount, 51, "one revision per logTrialMetric call")
        },
        ConformanceCase("nonFiniteAndNonScalarMetricValuesSurvive") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: 1, ["loss": .double(.nan), "grad": .double(.infinity), "conf": [1, 2, 3]])
            try b.logTrialMetric(t, name: "loss", step: 2, value: -.infinity)
            let read = try readTrial(b, t)
            try expect(read.metrics["loss"]?.points.first?.value.doubleValue?.isNaN == true, "NaN survives")
            try expectEqual(read.metrics["loss"]?.points.last?.value, .double(-.infinity), "-inf survives")
            try expectEqual(read.metrics["grad"]?.points.first?.value, .double(.infinity), "inf survives")
            try expectEqual(read.metrics["conf"]?.points.first?.value, [1, 2, 3], "a list value survives")
        },
        ConformanceCase("metadataArgumentsAndTagsMerge") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetadata(t, ["gpu": "V100", "host": "n1"])
            try b.logTrialMetadata(t, ["host": "n2", "pid": 42])
            try b.logTrialArguments(t, ["epochs": 10, "lr": 0.2])
            try b.addTrialTags(t, ["owner": "alice"])
            try b.addTrialTags(t, ["hpo": "random"])
            let read = try readTrial(b, t)
            try expectEqual(read.metadata, ["gpu": "V100", "host": "n2", "pid": 42], "merged metadata")
            try expectEqual(read.parameters, ["lr": 0.2, "batch_size": 64, "epochs": 10], "merged parameters, order kept")
            try expectEqual(read.tags, ["hpo": "random", "owner": "alice"], "merged tags")
            try expectEqual(read.hash, try unwrap(try b.getTrial(hash: read.hash).first, "by hash").hash, "arguments do not change the hash")
        },
        ConformanceCase("setTrialStatusAppendsErrorsAndKeepsCustomStatus") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.setTrialStatus(t, .running, error: nil)
            try expectEqual(try readTrial(b, t).status, .running, "status after Running")
            try b.setTrialStatus(t, .interrupted, error: "SIGTERM")
            try b.setTrialStatus(t, .interrupted, error: "SIGTERM again")
            var read = try readTrial(b, t)
            try expectEqual(read.status, .interrupted, "status")
            try expectEqual(read.errors, ["SIGTERM", "SIGTERM again"], "errors appended in order")
            let queued = Status(name: "Queued", value: 42)
            try b.setTrialStatus(t, queued, error: nil)
            read = try readTrial(b, t)
            try expectEqual(read.status, queued, "a custom status keeps its name and value")
            try expectEqual(read.errors.count, 2, "no error text, no new error")
        },
        ConformanceCase("everyChangeBumpsTheRevisionTagByOne") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            let changes: [(String, () throws -> Void)] = [
                ("logTrialStart", { try b.logTrialStart(t) }),
                ("logTrialMetrics", { try b.logTrialMetrics(t, step: 1, ["loss": 1]) }),
                ("logTrialMetric", { try b.logTrialMetric(t, name: "loss", step: 2, value: 0.5) }),
                ("logTrialMetadata", { try b.logTrialMetadata(t, ["a": 1]) }),
                ("logTrialArguments", { try b.logTrialArguments(t, ["b": 2]) }),
                ("addTrialTags", { try b.addTrialTags(t, ["c": 3]) }),
                ("setTrialStatus", { try b.setTrialStatus(t, .running, error: nil) }),
                ("logTrialChronoStart", { try b.logTrialChronoStart(t, name: "epoch") }),
                ("logTrialChronoFinish", { try b.logTrialChronoFinish(t, name: "epoch") }),
                ("logTrialFinish", { try b.logTrialFinish(t) }),
            ]
            var expected = try readTrial(b, t).updateCount
            for (name, change) in changes {
                try change()
                expected += 1
                try expectEqual(try readTrial(b, t).updateCount, expected, "revision tag after \(name)")
            }
        },
        ConformanceCase("startAndFinishRecordRuntime") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialStart(t)
            try b.logTrialFinish(t)
            let runtime = try unwrap(try readTrial(b, t).chronos["runtime"], "runtime chrono")
            guard case .value(let v?) = runtime, let seconds = v.doubleValue else {
                throw ExpectationFailed(message: "runtime should be a number of seconds, got \(runtime)")
            }
            try expect(seconds >= 0 && seconds < 3600, "runtime \(seconds) should be a small non-negative number of seconds")
        },
        ConformanceCase("chronoAccumulatesIntoStatAggregator") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            for _ in 0..<3 {
                try b.logTrialChronoStart(t, name: "epoch")
                try b.logTrialChronoFinish(t, name: "epoch")
            }
            let chrono = try unwrap(try readTrial(b, t).chronos["epoch"], "epoch chrono")
            guard case .stat(let stat) = chrono else {
                throw ExpectationFailed(message: "a chrono is a stat aggregator, got \(chrono)")
            }
            try expectEqual(stat.observationCount, 3, "observations")
            try expectEqual(stat.count, 2, "kept observations (the first is dropped)")
            try expect(stat.min >= 0 && stat.max >= stat.min, "min \(stat.min) and max \(stat.max)")
        },
        ConformanceCase("chronoFinishedOnceKeepsTheObservation") { b in
            // Python's StatStream (drop_first_obs=1) keeps the first observation: count 1, and
            // first_obs, min and max hold it.
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialChronoStart(t, name: "epoch")
            try b.logTrialChronoFinish(t, name: "epoch")
            let chrono = try unwrap(try readTrial(b, t).chronos["epoch"], "epoch chrono")
            guard case .stat(let stat) = chrono else {
                throw ExpectationFailed(message: "a chrono is a stat aggregator, got \(chrono)")
            }
            try expectEqual(stat.observationCount, 1, "current_count")
            try expect(stat.min.isFinite && stat.min >= 0 && stat.min == stat.max && stat.min == stat.firstObservation,
                       "first_obs \(stat.firstObservation), min \(stat.min) and max \(stat.max) hold the one observation")
        },
        ConformanceCase("commitKeepsEverything") { b in
            try makeProject(b)
            let t = try unwrap(try makeTrial(b), "trial").uid
            try b.logTrialMetrics(t, step: 1, ["loss": 1])
            try b.commit()
            try b.logTrialMetrics(t, step: 2, ["loss": 0.5])
            try b.commit()
            try expectEqual(try readTrial(b, t).metrics["loss"]?.count, 2, "points after two commits")
        },
    ]

    // MARK: - Queries

    static func sweep(_ b: any TrackProtocol) throws -> [String] {
        try makeProject(b)
        let group = try makeGroup(b)
        var uids: [String] = []
        for (i, lr) in [0.001, 0.01, 0.1, 1.0].enumerated() {
            let t = try unwrap(try makeTrial(b, name: "t\(i)", parameters: ["lr": .double(lr)], group: i < 2 ? group.uid : nil), "trial \(i)").uid
            if i != 3 { try b.logTrialMetadata(t, ["lr": .double(lr), "rank": .int(Int64(i))]) }
            uids.append(t)
        }
        try b.setTrialStatus(uids[0], .completed, error: nil)
        try b.setTrialStatus(uids[1], .running, error: nil)
        try b.setTrialStatus(uids[2], Status(name: "Queued", value: 42), error: nil)
        return uids
    }

    static func selected(_ b: any TrackProtocol, _ query: String) throws -> [String] {
        try b.fetchTrials(Query(json: query)).map(\.uid)
    }

    static let queries: [ConformanceCase] = [
        ConformanceCase("queryEqualityOnDottedPaths") { b in
            let u = try sweep(b)
            try expectEqual(try selected(b, #"{"metadata.lr": 0.01}"#), [u[1]], "metadata.lr == 0.01")
            try expectEqual(try selected(b, #"{"parameters.lr": 1.0}"#), [u[3]], "parameters.lr == 1.0")
            try expectEqual(try selected(b, #"{"metadata.rank": 2.0}"#), [u[2]], "an int attribute equals the same float")
            try expectEqual(try selected(b, #"{"name": "t2", "metadata.rank": 2}"#), [u[2]], "every condition must hold")
            try expectEqual(try selected(b, #"{"name": "t2", "metadata.rank": 1}"#), [], "every condition must hold (none)")
            try expectEqual(try selected(b, #"{"metadata.lr": null}"#), [u[3]], "a missing key equals null")
            try expectEqual(try selected(b, "{}"), u, "an empty query selects every trial, in creation order")
        },
        ConformanceCase("queryOnStatus") { b in
            let u = try sweep(b)
            try expectEqual(try selected(b, #"{"status.name": "Completed"}"#), [u[0]], "status.name")
            try expectEqual(try selected(b, #"{"status.value": 42}"#), [u[2]], "status.value of a custom status")
            // Python's queries compare a status with str(status): a built-in's lowercase name, a custom one's name.
            try expectEqual(try selected(b, #"{"status": "running"}"#), [u[1]], "status compares as str(status), the lowercase name")
            try expectEqual(try selected(b, #"{"status": "Running"}"#), [], "the capitalized name matches nothing, as in Python")
            try expectEqual(try selected(b, #"{"status": {"$in": ["completed", "running", "Interrupted"]}}"#), [u[0], u[1]], "$in on status")
            try expectEqual(try selected(b, #"{"status": {"$ne": "running"}}"#), [u[0], u[2], u[3]], "$ne on status")
            try expectEqual(try selected(b, #"{"status": "Queued"}"#), [u[2]], "a custom status by its name")
            try expectEqual(try selected(b, #"{"status": 101}"#), [], "a number never equals str(status)")
            try expectEqual(try selected(b, #"{"status.value": {"$gte": 300}}"#), [u[0]], "finished statuses")
        },
        ConformanceCase("queryOperators") { b in
            let u = try sweep(b)
            try expectEqual(try selected(b, #"{"metadata.lr": {"$in": [0.001, 0.1]}}"#), [u[0], u[2]], "$in")
            try expectEqual(try selected(b, #"{"metadata.rank": {"$ne": 1}}"#), [u[0], u[2], u[3]], "$ne (a missing key is not equal)")
            try expectEqual(try selected(b, #"{"metadata.lr": {"$lte": 0.01}}"#), [u[0], u[1]], "$lte")
            try expectEqual(try selected(b, #"{"metadata.lr": {"$lt": 0.01}}"#), [u[0]], "$lt")
            try expectEqual(try selected(b, #"{"metadata.lr": {"$gt": 0.01}}"#), [u[2]], "$gt (a missing key is not selected)")
            try expectEqual(try selected(b, #"{"metadata.lr": {"$gte": 0.01}}"#), [u[1], u[2]], "$gte")
            try expectEqual(try selected(b, #"{"metadata.lr": {"$eq": 0.1}}"#), [u[2]], "$eq")
            try expectEqual(try selected(b, #"{"metadata.rank": {"$exists": false}}"#), [u[3]], "$exists false")
            try expectEqual(try selected(b, #"{"metadata.rank": {"$exists": true}}"#), [u[0], u[1], u[2]], "$exists true")
            try expectEqual(try selected(b, #"{"name": {"$gt": "t1"}}"#), [u[2], u[3]], "$gt on strings")
            try expectEqual(try selected(b, #"[["group_id", {"$ne": null}], ["metadata.rank", {"$lt": 1}]]"#), [u[0]], "a list of conditions")
        },
        ConformanceCase("fetchGroupsAndProjectsByQuery") { b in
            try makeProject(b)
            try makeProject(b, "other")
            let g1 = try makeGroup(b)
            let g2 = try makeGroup(b, "second")
            try b.setGroupMetadata(g2.uid, ["search": "random"])
            try expectEqual(try b.fetchGroups(Query(json: #"{"metadata.search": "random"}"#)).map(\.uid), [g2.uid], "groups by metadata")
            try expectEqual(try b.fetchGroups(Query(json: #"{"name": {"$in": ["sweep", "x"]}}"#)).map(\.uid), [g1.uid], "groups by name")
            try expectEqual(try b.fetchProjects(Query(json: #"{"name": "other"}"#)).map(\.name), ["other"], "projects by name")
            try expectEqual(try b.fetchProjects(Query(json: #"{"metadata.owner": "alice"}"#)).map(\.name), [projectName, "other"], "projects by metadata")
            try expectEqual(try b.fetchProjects(.all).map(\.name), [projectName, "other"], "every project in creation order")
        },
    ]

    // MARK: - Fetch and update

    static let updates: [ConformanceCase] = [
        ConformanceCase("fetchAndUpdateTrialChangesTheFirstMatch") { b in
            let u = try sweep(b)
            let claimed = try b.fetchAndUpdateTrial(Query([.init("status.name", .equal, "CreatedGroup")]), .setStatus(.running, error: nil))
            try expectEqual(claimed.uid, u[3], "the first trial still CreatedGroup")
            try expectEqual(claimed.status, .running, "the returned trial shows the update")
            try expectEqual(try readTrial(b, u[3]).status, .running, "the update is stored")
            let tagged = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "t0")]), .addTags(["best": true]))
            try expectEqual(tagged.tags["best"], true, "addTags through fetchAndUpdateTrial")
            let meta = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "t1")]), .logMetadata(["claimed_by": "w1"]))
            try expectEqual(meta.metadata["claimed_by"], "w1", "logMetadata through fetchAndUpdateTrial")
            let args = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "t2")]), .logArguments(["seed": 1]))
            try expectEqual(args.parameters["seed"], 1, "logArguments through fetchAndUpdateTrial")
            _ = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "t2")]), .incrementMetadata(key: "count", by: 1))
            let counted = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "t2")]), .incrementMetadata(key: "count", by: 2))
            try expectEqual(counted.metadata["count"], 3, "incrementMetadata through fetchAndUpdateTrial")
        },
        ConformanceCase("fetchAndUpdateTrialWithoutMatchThrowsItemNotFound") { b in
            _ = try sweep(b)
            try expectError(.itemNotFound, "no trial matches") {
                _ = try b.fetchAndUpdateTrial(Query([.init("name", .equal, "absent")]), .setStatus(.running, error: nil))
            }
            try expectEqual(try b.fetchTrials(Query([.init("status.name", .equal, "Running")])).count, 1, "nothing else changed")
        },
        ConformanceCase("fetchAndUpdateGroupChangesTheFirstMatchOrThrows") { b in
            try makeProject(b)
            let group = try makeGroup(b)
            let updated = try b.fetchAndUpdateGroup(Query([.init("name", .equal, "sweep")]), .setMetadata(["claimed": true]))
            try expectEqual(updated.uid, group.uid, "the matching group")
            try expectEqual(try b.getTrialGroup(group.uid)?.metadata["claimed"], true, "the update is stored")
            try expectError(.itemNotFound, "no group matches") {
                _ = try b.fetchAndUpdateGroup(Query([.init("name", .equal, "absent")]), .setMetadata(["x": 1]))
            }
        },
    ]

    // MARK: - Errors

    static let errors: [ConformanceCase] = [
        ConformanceCase("operationsOnMissingTrialThrowItemNotFound") { b in
            try makeProject(b)
            let ghost = "\(String(repeating: "0", count: 64))_0"
            let operations: [(String, () throws -> Void)] = [
                ("logTrialMetrics", { try b.logTrialMetrics(ghost, step: 1, ["loss": 1]) }),
                ("logTrialMetric", { try b.logTrialMetric(ghost, name: "loss", step: 1, value: 1) }),
                ("logTrialMetadata", { try b.logTrialMetadata(ghost, ["a": 1]) }),
                ("setTrialStatus", { try b.setTrialStatus(ghost, .running, error: nil) }),
                ("addTrialTags", { try b.addTrialTags(ghost, ["a": 1]) }),
                ("logTrialStart", { try b.logTrialStart(ghost) }),
                ("addProjectTrial", { try b.addProjectTrial(project: projectName, trial: ghost) }),
            ]
            for (name, operation) in operations {
                try expectError(.itemNotFound, mentioning: [ghost], name, operation)
            }
            try expectEqual(try b.fetchTrials(.all).count, 0, "no trial was created")
        },
        ConformanceCase("unknownQueryAttributeIsAnErrorNamingIt") { b in
            _ = try sweep(b)
            try expectError(.invalidArgument, mentioning: ["colour"], "fetchTrials on an unknown attribute") {
                _ = try b.fetchTrials(Query(json: #"{"colour": "red"}"#))
            }
            try expectError(.invalidArgument, mentioning: ["colour"], "fetchGroups on an unknown attribute") {
                _ = try b.fetchGroups(Query(json: #"{"colour.x": "red"}"#))
            }
            try expectError(.invalidArgument, mentioning: ["colour"], "fetchProjects on an unknown attribute") {
                _ = try b.fetchProjects(Query(json: #"{"colour": 1}"#))
            }
        },
        ConformanceCase("setGroupMetadataOnMissingGroupThrows") { b in
            try makeProject(b)
            try expectError(.itemNotFound, mentioning: ["nogroup"], "setGroupMetadata on a missing group") {
                try b.setGroupMetadata("nogroup", ["a": 1])
            }
            try expectError(.itemNotFound, mentioning: ["nogroup"], "addGroupTrial to a missing group") {
                let t = try unwrap(try makeTrial(b), "trial")
                try b.addGroupTrial(group: "nogroup", trial: t.uid)
            }
        },
    ]
}
