import TrackLog
import TrackModel

/// `track`'s rules, once for every backend: each operation is checked against the current state
/// and turned into the records that carry it out. The in-memory state (`TrackState`, behind the
/// memory, pickled and SQL backends) applies the records to its projection at once; the event
/// log appends them and its materializer applies them to the same `Projection`.
///
/// - `newProject` / `newTrialGroup` on an existing uid change nothing (the caller returns the
///   existing object).
/// - `newTrial` on an existing uid changes nothing, unless `autoIncrement`, which stores the
///   trial with revision = highest existing revision of its hash + 1.
/// - In strict mode a group or trial pointing at a missing project (or group) is refused.
/// - A change to a trial or group that does not exist is refused (`notFound`).
/// - Step −2^63 is reserved (points without a step); values over the event log's size limits
///   (`RecordLimits`) are refused whole, by every backend alike.
public enum Rules {
    // MARK: - Projects and groups

    /// The record creating `project`, or nil when it exists already.
    public static func newProject(_ project: Project, in state: Projection) throws(ModelError) -> LogRecord? {
        if state.hasProject(project.uid) { return nil }
        var stored = project
        stored.updateCount = 0
        stored.trials = []
        stored.groups = []
        return try checked(.projectCreated(stored))
    }

    /// The record creating `group`, or nil when it exists already. Strict mode refuses a group
    /// whose project does not exist.
    public static func newTrialGroup(_ group: TrialGroup, strict: Bool, in state: Projection) throws(ModelError) -> LogRecord? {
        if state.hasGroup(group.uid) { return nil }
        if strict && !state.hasProject(group.projectID) {
            throw ModelError(.missingReference, "cannot create group '\(group.name)': project '\(group.projectID)' does not exist; create the project first (or open the backend with strict=false)")
        }
        var stored = group
        stored.updateCount = 0
        stored.trials = []
        return try checked(.groupCreated(stored))
    }

    /// The record merging `metadata` into the group's metadata.
    public static func setGroupMetadata(_ uid: String, _ metadata: ValueObject, in state: Projection) throws(ModelError) -> LogRecord {
        guard state.hasGroup(uid) else { throw missing("group", uid) }
        return try checked(.groupMetadataSet(group: uid, metadata))
    }

    /// The first group `query` selects and the record applying `update` to it; `notFound` when
    /// none matches.
    public static func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate, in state: Projection) throws(ModelError) -> (uid: String, record: LogRecord) {
        try query.validate(for: TrialGroup.self)
        var first: TrialGroup?
        for group in state.allGroups where try query.matches(group) { first = group; break }
        guard let first else { throw ModelError(.notFound, "no trial group matches the query \(query)") }
        switch update {
        case .setMetadata(let metadata): return (first.uid, try checked(.groupMetadataSet(group: first.uid, metadata)))
        }
    }

    // MARK: - Trials

    /// The record creating `trial` (its uid says which revision), or nil when its uid exists and
    /// `autoIncrement` is off. Strict mode refuses a trial whose project or group does not exist.
    public static func newTrial(_ trial: Trial, autoIncrement: Bool, strict: Bool, in state: Projection) throws(ModelError) -> LogRecord? {
        var stored = trial
        if state.hasTrial(trial.uid) {
            guard autoIncrement else { return nil }
            stored.revision = (state.revisions(hash: trial.hash).max() ?? 0) + 1
        }
        if strict {
            if let projectID = trial.projectID, !state.hasProject(projectID) {
                throw ModelError(.missingReference, "cannot create trial '\(trial.name ?? trial.uid)': project '\(projectID)' does not exist; create the project first (or open the backend with strict=false)")
            }
            if let groupID = trial.groupID, !state.hasGroup(groupID) {
                throw ModelError(.missingReference, "cannot create trial '\(trial.name ?? trial.uid)': group '\(groupID)' does not exist; create the group first (or open the backend with strict=false)")
            }
        }
        stored.updateCount = 0
        stored.metrics = [:]
        stored.chronos = [:]
        stored.errors = []
        stored.lastChange = nil
        return try checked(.trialCreated(stored, autoIncrement: autoIncrement))
    }

    /// The first trial `query` selects and the record applying `update` to it; `notFound` when
    /// none matches.
    public static func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate, in state: Projection) throws(ModelError) -> (uid: String, record: LogRecord) {
        try query.validate(for: Trial.self)
        var first: Trial?
        for trial in state.allTrials where try query.matches(trial) { first = trial; break }
        guard let first else { throw ModelError(.notFound, "no trial matches the query \(query)") }
        return (first.uid, try checked(try LogRecord.trialUpdated(first, by: update)))
    }

    /// The record setting the trial's project (`trialExists`: whether the trial was found).
    /// Strict mode refuses a project that does not exist.
    public static func addProjectTrial(project: String, trial: String, trialExists: Bool, strict: Bool, in state: Projection) throws(ModelError) -> LogRecord {
        guard trialExists else { throw missing("trial", trial) }
        if strict && !state.hasProject(project) { throw missing("project", project) }
        return try checked(.trialAddedToProject(trial: trial, project: project))
    }

    /// The record setting the trial's group (`trialExists`: whether the trial was found).
    /// Strict mode refuses a group that does not exist.
    public static func addGroupTrial(group: String, trial: String, trialExists: Bool, strict: Bool, in state: Projection) throws(ModelError) -> LogRecord {
        guard trialExists else { throw missing("trial", trial) }
        if strict && !state.hasGroup(group) { throw missing("group", group) }
        return try checked(.trialAddedToGroup(trial: trial, group: group))
    }

    /// `record`, a change to one existing trial (start, finish, chronos, arguments, metadata,
    /// metrics, tags, status), checked: the trial must exist (`trialExists`, which the caller
    /// may know without a projection at hand), the step must not be the reserved one, and the
    /// record must fit the limits.
    public static func trialChange(_ record: LogRecord, trialExists: Bool) throws(ModelError) -> LogRecord {
        guard trialExists else { throw missing("trial", record.trialUID ?? "") }
        if case .metricsLogged(_, let step, _) = record { try checkStep(step) }
        return try checked(record)
    }

    /// The record setting the trial's status; a non-nil `error` is appended to its errors.
    public static func setTrialStatus(_ uid: String, _ status: Status, error: String?, in state: Projection) throws(ModelError) -> LogRecord {
        guard state.hasTrial(uid) else { throw missing("trial", uid) }
        return try checked(.statusSet(trial: uid, status, error: error))
    }

    /// A metric step is usable: −2^63 is reserved for points without a step.
    public static func checkStep(_ step: MetricStep?) throws(ModelError) {
        if step?.intValue == Int64.min {
            throw ModelError(.invalidValue, "step -9223372036854775808 (-2^63) is reserved for points without a step; use a step from -2^63+1 to 2^63-1, or no step")
        }
    }

    // MARK: - Import

    /// The records bringing a whole `track` database in, after checking that none of its objects
    /// exists here and that every one fits the limits: an import is refused whole.
    public static func importRecords(projects: [Project], groups: [TrialGroup], trials: [Trial], in state: Projection) throws(ModelError) -> [LogRecord] {
        var clashes: [String] = []
        clashes += projects.filter { state.hasProject($0.uid) }.map { "project \($0.uid)" }
        clashes += groups.filter { state.hasGroup($0.uid) }.map { "group \($0.uid)" }
        clashes += trials.filter { state.hasTrial($0.uid) }.map { "trial \($0.uid)" }
        guard clashes.isEmpty else {
            throw ModelError(.invalidValue, "the database already holds \(clashes.count) of the imported objects (\(clashes.prefix(3).joined(separator: ", "))\(clashes.count > 3 ? ", ..." : "")); import into a new database")
        }
        let records = projects.map(LogRecord.projectImported) + groups.map(LogRecord.groupImported) + trials.map(LogRecord.trialImported)
        for record in records {
            do throws(LogError) { _ = try record.checkLimits() } catch {
                throw ModelError(.invalidValue, "cannot import: \(error.message)")
            }
        }
        return records
    }

    // MARK: - Helpers

    /// `record` if it fits the event log's limits (what every backend accepts).
    public static func checked(_ record: LogRecord) throws(ModelError) -> LogRecord {
        do throws(LogError) { _ = try record.checkLimits() } catch { throw ModelError(.invalidValue, error.message) }
        return record
    }

    static func missing(_ what: String, _ uid: String) -> ModelError {
        ModelError(.notFound, "\(what) '\(uid)' does not exist")
    }
}
