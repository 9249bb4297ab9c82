import OrderedCollections

/// The whole state of a tracking database in memory, with `track`'s rules for every operation.
///
/// Every backend that keeps state in memory applies operations through this type, so that the
/// in-memory backend, the event-log materializer and snapshot loaders share one set of rules:
/// - `newProject` on an existing uid returns the existing project; `newTrialGroup` likewise.
/// - `newTrial` on an existing uid returns nil, unless `autoIncrement`, which stores the trial
///   with revision = max existing revision + 1.
/// - In strict mode a group or trial pointing at a missing project (or group) is refused.
/// - Every change bumps the changed object's revision tag (`updateCount`) by one.
///
/// Times are passed in (seconds since 1970), so replaying the same operations gives the same state.
public struct TrackDatabase: Sendable, Equatable {
    /// Whether references to missing projects and groups are refused.
    public var strict: Bool
    /// Projects by uid, in creation order.
    public private(set) var projects: OrderedDictionary<String, Project> = [:]
    /// Groups by uid, in creation order.
    public private(set) var groups: OrderedDictionary<String, TrialGroup> = [:]
    /// Trials by uid, in creation order.
    public private(set) var trials: OrderedDictionary<String, Trial> = [:]
    /// Revisions of each trial hash, ascending.
    private var revisionsByHash: [String: [Int]] = [:]
    /// Start times of running chronos (`runtime` is the trial's own), by trial uid then name.
    private var chronoStarts: [String: [String: Double]] = [:]

    /// An empty database.
    public init(strict: Bool = true) { self.strict = strict }

    // MARK: - Projects

    /// Inserts `project`, or returns the existing project of the same uid unchanged.
    public mutating func newProject(_ project: Project) -> Project {
        if let existing = projects[project.uid] { return existing }
        var stored = project
        stored.updateCount = 0
        projects[project.uid] = stored
        return stored
    }

    /// The projects `query` selects, in creation order.
    public func fetchProjects(_ query: Query) throws(ModelError) -> [Project] {
        try query.validate(for: Project.self)
        var out: [Project] = []
        for project in projects.values where try query.matches(project) { out.append(project) }
        return out
    }

    // MARK: - Groups

    /// Inserts `group` and lists it in its project, or returns the existing group of the same uid.
    /// Strict mode refuses a group whose project does not exist.
    public mutating func newTrialGroup(_ group: TrialGroup) throws(ModelError) -> TrialGroup {
        if let existing = groups[group.uid] { return existing }
        if projects[group.projectID] == nil && strict {
            throw ModelError(.missingReference, "cannot create group '\(group.name)': project '\(group.projectID)' does not exist; create the project first (or open the backend with strict=false)")
        }
        var stored = group
        stored.updateCount = 0
        groups[group.uid] = stored
        if var project = projects[group.projectID], !project.groups.contains(group.uid) {
            project.groups.append(group.uid)
            project.updateCount += 1
            projects[group.projectID] = project
        }
        return stored
    }

    /// The groups `query` selects, in creation order.
    public func fetchGroups(_ query: Query) throws(ModelError) -> [TrialGroup] {
        try query.validate(for: TrialGroup.self)
        var out: [TrialGroup] = []
        for group in groups.values where try query.matches(group) { out.append(group) }
        return out
    }

    /// Merges `metadata` into the group's metadata.
    public mutating func setGroupMetadata(_ uid: String, _ metadata: ValueObject) throws(ModelError) {
        guard var group = groups[uid] else { throw Self.missing("group", uid) }
        for (key, value) in metadata { group.metadata[key] = value }
        group.updateCount += 1
        groups[uid] = group
    }

    /// Applies `update` to the first group `query` selects and returns it; throws `notFound` when
    /// none matches.
    public mutating func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws(ModelError) -> TrialGroup {
        guard let first = try fetchGroups(query).first else {
            throw ModelError(.notFound, "no trial group matches the query \(query)")
        }
        switch update {
        case .setMetadata(let metadata): try setGroupMetadata(first.uid, metadata)
        }
        return groups[first.uid]!
    }

    // MARK: - Trials

    /// Inserts `trial` and lists it in its project and group. If its uid exists, returns nil, or
    /// with `autoIncrement` stores it as revision max + 1. Strict mode refuses a trial whose
    /// project or group does not exist.
    public mutating func newTrial(_ trial: Trial, autoIncrement: Bool, now: Double) throws(ModelError) -> Trial? {
        var stored = trial
        if trials[trial.uid] != nil {
            guard autoIncrement else { return nil }
            stored.revision = (revisionsByHash[trial.hash]?.last ?? 0) + 1
        }
        if strict {
            if let projectID = trial.projectID, projects[projectID] == nil {
                throw ModelError(.missingReference, "cannot create trial '\(trial.name ?? trial.uid)': project '\(projectID)' does not exist; create the project first (or open the backend with strict=false)")
            }
            if let groupID = trial.groupID, groups[groupID] == nil {
                throw ModelError(.missingReference, "cannot create trial '\(trial.name ?? trial.uid)': group '\(groupID)' does not exist; create the group first (or open the backend with strict=false)")
            }
        }
        stored.updateCount = 0
        stored.lastChange = now
        trials[stored.uid] = stored
        revisionsByHash[stored.hash, default: []].append(stored.revision)
        revisionsByHash[stored.hash]!.sort()
        if let projectID = stored.projectID, var project = projects[projectID], !project.trials.contains(stored.uid) {
            project.trials.append(stored.uid)
            project.updateCount += 1
            projects[projectID] = project
        }
        if let groupID = stored.groupID, var group = groups[groupID], !group.trials.contains(stored.uid) {
            group.trials.append(stored.uid)
            group.updateCount += 1
            groups[groupID] = group
        }
        return stored
    }

    /// Every revision of the trials with this hash, by revision.
    public func trials(hash: String) -> [Trial] {
        (revisionsByHash[hash] ?? []).compactMap { trials["\(hash)_\($0)"] }
    }

    /// The trials `query` selects, in creation order.
    public func fetchTrials(_ query: Query) throws(ModelError) -> [Trial] {
        try query.validate(for: Trial.self)
        var out: [Trial] = []
        for trial in trials.values where try query.matches(trial) { out.append(trial) }
        return out
    }

    /// Applies `update` to the first trial `query` selects and returns it; throws `notFound` when
    /// none matches.
    public mutating func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate, now: Double) throws(ModelError) -> Trial {
        guard let first = try fetchTrials(query).first else {
            throw ModelError(.notFound, "no trial matches the query \(query)")
        }
        switch update {
        case .setStatus(let status, let error): try setTrialStatus(first.uid, status, error: error, now: now)
        case .logMetadata, .incrementMetadata: try logTrialMetadata(first.uid, try update.metadataValues(for: first) ?? [:], now: now)
        case .addTags(let tags): try addTrialTags(first.uid, tags, now: now)
        case .logArguments(let arguments): try logTrialArguments(first.uid, arguments, now: now)
        }
        return trials[first.uid]!
    }

    /// Sets the trial's project and lists the trial in it.
    public mutating func addProjectTrial(project uid: String, trial trialUID: String, now: Double) throws(ModelError) {
        guard trials[trialUID] != nil else { throw Self.missing("trial", trialUID) }
        guard var project = projects[uid] else {
            if strict { throw Self.missing("project", uid) }
            try updateTrial(trialUID, now: now) { $0.projectID = uid }
            return
        }
        try updateTrial(trialUID, now: now) { $0.projectID = uid }
        if !project.trials.contains(trialUID) { project.trials.append(trialUID) }
        project.updateCount += 1
        projects[uid] = project
    }

    /// Sets the trial's group and lists the trial in it.
    public mutating func addGroupTrial(group uid: String, trial trialUID: String, now: Double) throws(ModelError) {
        guard trials[trialUID] != nil else { throw Self.missing("trial", trialUID) }
        guard var group = groups[uid] else {
            if strict { throw Self.missing("group", uid) }
            try updateTrial(trialUID, now: now) { $0.groupID = uid }
            return
        }
        try updateTrial(trialUID, now: now) { $0.groupID = uid }
        if !group.trials.contains(trialUID) { group.trials.append(trialUID) }
        group.updateCount += 1
        groups[uid] = group
    }

    /// The trial's run starts: its `runtime` chrono is reset and timing begins at `now`.
    public mutating func logTrialStart(_ uid: String, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { $0.chronos["runtime"] = .value(nil) }
        chronoStarts[uid, default: [:]]["runtime"] = now
    }

    /// The trial's run ends: `runtime` becomes the seconds since the start. Without a recorded
    /// start the runtime is left as it is (the change is still counted).
    public mutating func logTrialFinish(_ uid: String, now: Double) throws(ModelError) {
        let start = chronoStarts[uid]?["runtime"]
        try updateTrial(uid, now: now) { trial in
            if let start { trial.chronos["runtime"] = .value(.double(Swift.max(0, now - start))) }
        }
        chronoStarts[uid]?["runtime"] = nil
    }

    /// Chrono `name` starts timing at `now`; its aggregator (a stat stream dropping the first
    /// observation, as `track`'s default) is created if needed.
    public mutating func logTrialChronoStart(_ uid: String, name: String, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { trial in
            if trial.chronos[name] == nil { trial.chronos[name] = .stat(StatStream(dropObservations: 1)) }
        }
        chronoStarts[uid, default: [:]][name] = now
    }

    /// Chrono `name` stops: the seconds since its start are added to its aggregator. Without a
    /// recorded start nothing is added (the change is still counted).
    public mutating func logTrialChronoFinish(_ uid: String, name: String, now: Double) throws(ModelError) {
        let start = chronoStarts[uid]?[name]
        try updateTrial(uid, now: now) { trial in
            guard let start else { return }
            var aggregator = trial.chronos[name] ?? .stat(StatStream(dropObservations: 1))
            aggregator.append(.double(Swift.max(0, now - start)))
            trial.chronos[name] = aggregator
        }
        chronoStarts[uid]?[name] = nil
    }

    /// Merges `arguments` into the trial's parameters (the hash does not change).
    public mutating func logTrialArguments(_ uid: String, _ arguments: ValueObject, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { trial in for (k, v) in arguments { trial.parameters[k] = v } }
    }

    /// Merges `metadata` into the trial's metadata.
    public mutating func logTrialMetadata(_ uid: String, _ metadata: ValueObject, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { trial in for (k, v) in metadata { trial.metadata[k] = v } }
    }

    /// Records each metric at `step` (nil: appended without a step).
    public mutating func logTrialMetrics(_ uid: String, step: Int64?, _ metrics: ValueObject, now: Double) throws(ModelError) {
        if step == Int64.min {
            throw ModelError(.invalidValue, "step -9223372036854775808 (-2^63) is reserved for points without a step; use a step from -2^63+1 to 2^63-1, or no step")
        }
        try updateTrial(uid, now: now) { trial in
            for (name, value) in metrics { trial.metrics[name, default: MetricSeries()].record(step: step, value: value) }
        }
    }

    /// Merges `tags` into the trial's tags.
    public mutating func addTrialTags(_ uid: String, _ tags: ValueObject, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { trial in for (k, v) in tags { trial.tags[k] = v } }
    }

    /// Sets the trial's status; a non-nil `error` is appended to its errors.
    public mutating func setTrialStatus(_ uid: String, _ status: Status, error: String?, now: Double) throws(ModelError) {
        try updateTrial(uid, now: now) { trial in
            trial.status = status
            if let error { trial.errors.append(error) }
        }
    }

    // MARK: - Loading

    /// Stores objects as they are (revision tags included), replacing any of the same uid.
    /// For loading snapshots and imports; references are not checked.
    public mutating func restore(projects: [Project] = [], groups: [TrialGroup] = [], trials: [Trial] = []) {
        for project in projects { self.projects[project.uid] = project }
        for group in groups { self.groups[group.uid] = group }
        for trial in trials {
            self.trials[trial.uid] = trial
            var revisions = revisionsByHash[trial.hash] ?? []
            if !revisions.contains(trial.revision) { revisions.append(trial.revision); revisions.sort() }
            revisionsByHash[trial.hash] = revisions
        }
    }

    /// Start times (seconds since 1970) of the trial's running chronos, by name (`runtime` is
    /// the run itself). For stores that keep them outside this type between operations.
    public func runningChronos(_ uid: String) -> [String: Double] { chronoStarts[uid] ?? [:] }

    /// Replaces the start times of the trial's running chronos (see `runningChronos`).
    public mutating func setRunningChronos(_ starts: [String: Double], for uid: String) {
        chronoStarts[uid] = starts.isEmpty ? nil : starts
    }

    // MARK: - Helpers

    private mutating func updateTrial(_ uid: String, now: Double, _ change: (inout Trial) -> Void) throws(ModelError) {
        guard var trial = trials[uid] else { throw Self.missing("trial", uid) }
        change(&trial)
        trial.updateCount += 1
        trial.lastChange = now
        trials[uid] = trial
    }

    private static func missing(_ what: String, _ uid: String) -> ModelError {
        ModelError(.notFound, "\(what) '\(uid)' does not exist")
    }
}
