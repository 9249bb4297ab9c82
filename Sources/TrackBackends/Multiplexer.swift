import TrackModel

/// Sends every write to several backends at once (`track`'s `ProtocolMultiplexer`).
///
/// Every backend receives every write, even when an earlier one fails. When every backend refuses
/// a call the same way (a missing trial, say), that error is thrown as it is; when only some fail,
/// the call throws a `backendFailure` naming each failed backend and its error (nothing is swallowed).
/// Reads are answered by the last backend, and writes return the last backend's answer, as in `track`.
public final class Multiplexer: TrackProtocol {
    /// The backends, in the order they are written; the last one answers.
    public let backends: [any TrackProtocol]
    private let names: [String]

    /// A multiplexer over `backends` (at least one); `names` label them in errors.
    public init(_ backends: [any TrackProtocol], names: [String]? = nil) {
        precondition(!backends.isEmpty, "a multiplexer needs at least one backend")
        self.backends = backends
        self.names = names ?? backends.enumerated().map { "backend \($0.offset + 1) (\(type(of: $0.element)))" }
    }

    private func fanOut<T>(_ operation: String, _ body: (any TrackProtocol) throws -> T) throws -> T {
        var failures: [(String, any Error)] = []
        var answer: Result<T, any Error>?
        for (index, backend) in backends.enumerated() {
            do {
                let value = try body(backend)
                if index == backends.count - 1 { answer = .success(value) }
            } catch {
                failures.append((names[index], error))
                if index == backends.count - 1 { answer = .failure(error) }
            }
        }
        if !failures.isEmpty {
            // Every backend refused the call the same way: the call itself is wrong (a missing
            // trial, a bad query), so report it as the backends do.
            let codes = Set(failures.map { TrackError.wrap($0.1).code })
            if failures.count == backends.count, codes.count == 1 {
                throw TrackError.wrap(failures[failures.count - 1].1)
            }
            let detail = failures.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
            let first = failures[0].1
            throw TrackError(.backendFailure, "\(operation) failed on \(failures.count) of \(backends.count) backends: \(detail)",
                             cause: TrackError.wrap(first))
        }
        return try answer!.get()
    }

    private var answering: any TrackProtocol { backends[backends.count - 1] }

    public func newProject(_ project: Project) throws -> Project { try fanOut("newProject") { try $0.newProject(project) } }
    public func getProject(_ uid: String) throws -> Project? { try answering.getProject(uid) }
    public func fetchProjects(_ query: Query) throws -> [Project] { try answering.fetchProjects(query) }
    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { try fanOut("newTrialGroup") { try $0.newTrialGroup(group) } }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try answering.getTrialGroup(uid) }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] { try answering.fetchGroups(query) }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        try fanOut("setGroupMetadata") { try $0.setGroupMetadata(group, metadata) }
    }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        try fanOut("fetchAndUpdateGroup") { try $0.fetchAndUpdateGroup(query, update) }
    }
    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        try fanOut("newTrial") { try $0.newTrial(trial, autoIncrement: autoIncrement) }
    }
    public func getTrial(hash: String) throws -> [Trial] { try answering.getTrial(hash: hash) }
    public func fetchTrials(_ query: Query) throws -> [Trial] { try answering.fetchTrials(query) }
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        try fanOut("fetchAndUpdateTrial") { try $0.fetchAndUpdateTrial(query, update) }
    }
    public func addProjectTrial(project: String, trial: String) throws {
        try fanOut("addProjectTrial") { try $0.addProjectTrial(project: project, trial: trial) }
    }
    public func addGroupTrial(group: String, trial: String) throws {
        try fanOut("addGroupTrial") { try $0.addGroupTrial(group: group, trial: trial) }
    }
    public func logTrialStart(_ trial: String) throws { try fanOut("logTrialStart") { try $0.logTrialStart(trial) } }
    public func logTrialFinish(_ trial: String) throws { try fanOut("logTrialFinish") { try $0.logTrialFinish(trial) } }
    public func logTrialChronoStart(_ trial: String, name: String) throws {
        try fanOut("logTrialChronoStart") { try $0.logTrialChronoStart(trial, name: name) }
    }
    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        try fanOut("logTrialChronoFinish") { try $0.logTrialChronoFinish(trial, name: name) }
    }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        try fanOut("logTrialArguments") { try $0.logTrialArguments(trial, arguments) }
    }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try fanOut("logTrialMetadata") { try $0.logTrialMetadata(trial, metadata) }
    }
    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        try fanOut("logTrialMetrics") { try $0.logTrialMetrics(trial, step: step, metrics) }
    }
    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try fanOut("logTrialMetric") { try $0.logTrialMetric(trial, name: name, step: step, value: value) }
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        try fanOut("addTrialTags") { try $0.addTrialTags(trial, tags) }
    }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try fanOut("setTrialStatus") { try $0.setTrialStatus(trial, status, error: error) }
    }
    public func commit() throws { try fanOut("commit") { try $0.commit() } }
    public func persist() throws { try fanOut("persist") { try $0.persist() } }
    public func close() throws { try fanOut("close") { try $0.close() } }
}
