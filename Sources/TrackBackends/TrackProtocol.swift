import TrackModel
import TrackStore

/// The operations of `track`'s persistence `Protocol`, which every backend implements.
///
/// Implementation requirements (checked by the conformance suite in `TrackConformance`):
/// - Objects are identified by uid: a project by its name, a group by `compute_hash(name,
///   project)`, a trial by `"<hash>_<revision>"`.
/// - `newProject` and `newTrialGroup` on an existing uid return the existing object.
/// - `newTrial` on an existing uid returns nil unless `autoIncrement`, which stores the trial
///   with revision = max existing revision + 1.
/// - In strict mode (the default) a group or trial pointing at a missing project or group
///   throws `missingReference` and stores nothing.
/// - Every change bumps the changed object's revision tag (`updateCount`, `track`'s
///   `_update_count`) by exactly one; `setTrialStatus(error:)` appends the error text.
/// - Operations on a missing object throw `itemNotFound`; `fetchAndUpdate…` throw it when the
///   query selects nothing. An unknown query attribute throws `invalidArgument` naming it.
/// - Returned objects are copies: changing them changes nothing stored.
/// - Errors are `TrackError`s. Calls may come from several threads at once.
public protocol TrackProtocol: AnyObject, Sendable {
    // MARK: Projects
    /// Inserts a project, or returns the existing one of the same name.
    func newProject(_ project: Project) throws -> Project
    /// The project with this uid (its name), if any.
    func getProject(_ uid: String) throws -> Project?
    /// The projects the query selects.
    func fetchProjects(_ query: Query) throws -> [Project]

    // MARK: Groups
    /// Inserts a group (listing it in its project), or returns the existing one of the same uid.
    func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup
    /// The group with this uid, if any.
    func getTrialGroup(_ uid: String) throws -> TrialGroup?
    /// The groups the query selects.
    func fetchGroups(_ query: Query) throws -> [TrialGroup]
    /// Merges keys into a group's metadata.
    func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws
    /// Applies `update` to the first group the query selects and returns the result.
    func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup

    // MARK: Trials
    /// Inserts a trial (listing it in its project and group); see the requirements for duplicates.
    func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial?
    /// Every revision of the trials with this hash, by revision (empty when there is none).
    func getTrial(hash: String) throws -> [Trial]
    /// The trials the query selects.
    func fetchTrials(_ query: Query) throws -> [Trial]
    /// Applies `update` to the first trial the query selects and returns the result.
    func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial
    /// Sets a trial's project and lists the trial in the project.
    func addProjectTrial(project: String, trial: String) throws
    /// Sets a trial's group and lists the trial in the group.
    func addGroupTrial(group: String, trial: String) throws

    // MARK: Logging
    /// The trial's run starts (its `runtime` chrono starts timing).
    func logTrialStart(_ trial: String) throws
    /// The trial's run ends (`runtime` records the elapsed seconds); data is made durable.
    func logTrialFinish(_ trial: String) throws
    /// Chrono `name` starts timing.
    func logTrialChronoStart(_ trial: String, name: String) throws
    /// Chrono `name` stops; the elapsed seconds go into its stat aggregator.
    func logTrialChronoFinish(_ trial: String, name: String) throws
    /// Merges arguments into the trial's parameters.
    func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws
    /// Merges keys into the trial's metadata.
    func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws
    /// Records each metric at `step` (nil: appended without a step).
    func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws
    /// Records one scalar metric: the fast path of training loops. Same effect as
    /// `logTrialMetrics(trial, step: step, [name: .double(value)])`.
    func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws
    /// A sink for metric `name` of `trial`, for logging it over and over (what a training loop's
    /// metric handle holds). Its `log` has exactly the effect and the errors of
    /// `logTrialMetric`; what does not change between points (the trial exists) is checked on
    /// first use, not per point. The default calls `logTrialMetric`.
    func metricSink(trial: String, name: String) -> any MetricSink
    /// The points of the trial's metric `name` as Python `track` keeps them, as two columns (see
    /// `MetricColumns.pythonPoints`); empty when the trial has no such metric, `itemNotFound`
    /// when the trial does not exist. The event log and memory backends read their projection's
    /// columns without building the trial; the default reads the trial.
    func metricPoints(trial: String, name: String) throws -> (steps: [Int64], values: [Double])
    /// Merges tags into the trial's tags.
    func addTrialTags(_ trial: String, _ tags: ValueObject) throws
    /// Sets the trial's status; a non-nil `error` is appended to its errors.
    func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws

    // MARK: Durability
    /// Returns once everything logged so far is durable.
    func commit() throws
    /// Returns once every change made so far would survive this process being killed (written
    /// to the operating system at least, and to the disk where the backend is durable per call):
    /// what a server waits for before it acknowledges a request. Cheaper than `commit()` where
    /// the backend buffers; the default is `commit()`.
    func persist() throws
    /// Makes everything durable and releases the backend's resources; later calls may fail.
    func close() throws
}

/// Logs one scalar metric of one trial (see `TrackProtocol.metricSink(trial:name:)`).
public protocol MetricSink: AnyObject, Sendable {
    /// Records `value` at `step` (nil: appended without a step), as `logTrialMetric` would.
    func log(_ value: Double, step: Int64?) throws
    /// Records `values[i]` at `steps[i]` (steps nil: without steps) in order, as that many `log`
    /// calls would: stops at the first point refused, throwing its error; `logged` counts the
    /// points that went in.
    func log(values: UnsafeBufferPointer<Double>, steps: UnsafeBufferPointer<Int64>?, logged: inout Int) throws
}

extension MetricSink {
    /// One `log` call per point.
    public func log(values: UnsafeBufferPointer<Double>, steps: UnsafeBufferPointer<Int64>?, logged: inout Int) throws {
        for i in values.indices {
            try log(values[i], step: steps.map { $0[i] })
            logged += 1
        }
    }
}

/// The sink of a backend without a faster path: each point is a `logTrialMetric` call.
public final class CallingMetricSink: MetricSink {
    private let backend: any TrackProtocol
    private let trial: String
    private let name: String

    /// A sink that calls `backend.logTrialMetric(trial, name:...)` for each point.
    public init(backend: any TrackProtocol, trial: String, name: String) {
        self.backend = backend
        self.trial = trial
        self.name = name
    }

    public func log(_ value: Double, step: Int64?) throws {
        try backend.logTrialMetric(trial, name: name, step: step, value: value)
    }
}

extension TrackProtocol {
    /// A sink calling `logTrialMetric` for each point.
    public func metricSink(trial: String, name: String) -> any MetricSink {
        CallingMetricSink(backend: self, trial: trial, name: name)
    }

    /// Reads the whole trial and converts its metric.
    public func metricPoints(trial: String, name: String) throws -> (steps: [Int64], values: [Double]) {
        guard let found = try getTrial(uid: trial) else { throw TrackError(.itemNotFound, "trial '\(trial)' does not exist") }
        let points = found.metrics[name]?.points ?? []
        return (points.map { $0.step?.intValue ?? MetricColumns.noStep }, points.map { $0.value.doubleValue ?? .nan })
    }

    /// Same as `logTrialMetrics` with one `.double` value.
    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try logTrialMetrics(trial, step: step.map(MetricStep.int), [name: .double(value)])
    }

    /// The trial with this uid, if any.
    public func getTrial(uid: String) throws -> Trial? {
        guard let parts = Trial.splitUID(uid) else { return nil }
        return try getTrial(hash: parts.hash).first { $0.revision == parts.revision }
    }

    /// Sets the trial's status with no error text.
    public func setTrialStatus(_ trial: String, _ status: Status) throws {
        try setTrialStatus(trial, status, error: nil)
    }

    /// Inserts a trial; an existing uid returns nil.
    public func newTrial(_ trial: Trial) throws -> Trial? {
        try newTrial(trial, autoIncrement: false)
    }

    /// Same as `commit()`.
    public func close() throws { try commit() }

    /// Same as `commit()`.
    public func persist() throws { try commit() }
}

/// A backend that can take a whole `track` FileProtocol database at once, keeping uids,
/// revisions, statuses, metrics, chronos and revision tags (the file:// and SQL backends).
public protocol DatabaseImporting: TrackProtocol {
    /// Brings `database` in, or throws and writes nothing when any of its projects, groups or
    /// trials already exists here. `progress` is called with the objects written and the total.
    func importDatabase(_ database: TrackFileDatabase, progress: (Int, Int) -> Void) throws
}

extension TrackProtocol {
    /// The whole state, as a `track` FileProtocol database (objects in creation order, metrics
    /// included).
    public func exportDatabase() throws -> TrackFileDatabase {
        TrackFileDatabase(projects: try fetchProjects(.all), groups: try fetchGroups(.all), trials: try fetchTrials(.all))
    }
}
