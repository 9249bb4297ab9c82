import TrackLog
import TrackModel

/// A database in memory with no log beneath it: each operation is checked by `Rules`, turned
/// into records and applied to a `Projection` at once, the same records and the same projection
/// the event log uses. The memory and pickled backends keep one for their whole state; the SQL
/// backend builds one from the rows a change locks and writes back what changed.
///
/// Times are passed in (seconds since 1970) and become timestamps that never go backwards, so
/// replaying the same operations at the same times gives the same state. Not thread-safe: its
/// owner holds a lock.
public final class TrackState: @unchecked Sendable {
    /// Whether references to missing projects and groups are refused.
    public let strict: Bool
    /// The objects as the applied records built them.
    public let projection: Projection
    private var clock: HybridClock
    /// The records applied since this state was made, oldest first (the events of the
    /// changes: what the SQL backend stores beside the rows it writes back).
    public private(set) var applied: [LogRecord] = []
    /// Whether `applied` is kept (a long-lived state does not).
    private let journaling: Bool
    /// The stream name running timers are kept under (there is one writer).
    private static let stream = ""

    /// An empty database.
    public init(strict: Bool = true) {
        self.strict = strict
        projection = Projection()
        clock = HybridClock()
        journaling = false
    }

    /// A database holding exactly these objects, as stored (revision tags included): the rows
    /// an SQL change loaded. References are not checked. The records applied afterwards are
    /// kept in `applied`.
    public init(strict: Bool = true, projects: [Project] = [], groups: [TrialGroup] = [], trials: [Trial] = []) {
        self.strict = strict
        projection = Projection.restoring(projects: projects, groups: groups, trials: trials)
        clock = HybridClock(after: projection.maxHLC)
        journaling = true
    }

    /// A database over `projection` (a snapshot read back); later changes apply on top of it.
    public init(strict: Bool = true, projection: Projection) {
        self.strict = strict
        self.projection = projection
        clock = HybridClock(after: projection.maxHLC)
        journaling = false
    }

    /// Applies `record` as of `now` (seconds since 1970).
    public func apply(_ record: LogRecord, now: Double) {
        let microseconds = now.isFinite && now > 0 ? UInt64(min(now * 1_000_000, 1e17)) : 0
        projection.apply(record, hlc: clock.tick(wallMicroseconds: microseconds), stream: Self.stream)
        if journaling { applied.append(record) }
    }

    private func apply(_ record: LogRecord?, _ now: Double) {
        if let record { apply(record, now: now) }
    }

    // MARK: - Reading

    /// The project with this uid.
    public func project(_ uid: String) -> Project? { projection.project(uid) }
    /// The group with this uid.
    public func group(_ uid: String) -> TrialGroup? { projection.group(uid) }
    /// The trial with this uid.
    public func trial(_ uid: String) -> Trial? { projection.trial(uid) }
    /// Every revision of the trials with this hash, by revision.
    public func trials(hash: String) -> [Trial] { projection.trials(hash: hash) }
    /// Every project, by creation.
    public var projects: [Project] { projection.allProjects }
    /// Every group, by creation.
    public var groups: [TrialGroup] { projection.allGroups }
    /// Every trial, by creation.
    public var trials: [Trial] { projection.allTrials }

    /// The projects `query` selects, by creation.
    public func fetchProjects(_ query: Query) throws(ModelError) -> [Project] {
        try query.validate(for: Project.self)
        var out: [Project] = []
        for project in projection.allProjects where try query.matches(project) { out.append(project) }
        return out
    }

    /// The groups `query` selects, by creation.
    public func fetchGroups(_ query: Query) throws(ModelError) -> [TrialGroup] {
        try query.validate(for: TrialGroup.self)
        var out: [TrialGroup] = []
        for group in projection.allGroups where try query.matches(group) { out.append(group) }
        return out
    }

    /// The trials `query` selects, by creation.
    public func fetchTrials(_ query: Query) throws(ModelError) -> [Trial] {
        try query.validate(for: Trial.self)
        var out: [Trial] = []
        for trial in projection.allTrials where try query.matches(trial) { out.append(trial) }
        return out
    }

    // MARK: - Changing

    /// Creates `project`, or returns the existing project of the same uid unchanged.
    public func newProject(_ project: Project, now: Double) throws(ModelError) -> Project {
        apply(try Rules.newProject(project, in: projection), now)
        return projection.project(project.uid)!
    }

    /// Creates `group`, or returns the existing group of the same uid unchanged.
    public func newTrialGroup(_ group: TrialGroup, now: Double) throws(ModelError) -> TrialGroup {
        apply(try Rules.newTrialGroup(group, strict: strict, in: projection), now)
        return projection.group(group.uid)!
    }

    /// Merges `metadata` into the group's metadata.
    public func setGroupMetadata(_ uid: String, _ metadata: ValueObject, now: Double) throws(ModelError) {
        apply(try Rules.setGroupMetadata(uid, metadata, in: projection), now: now)
    }

    /// Applies `update` to the first group `query` selects and returns it.
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate, now: Double) throws(ModelError) -> TrialGroup {
        let (uid, record) = try Rules.fetchAndUpdateGroup(query, update, in: projection)
        apply(record, now: now)
        return projection.group(uid)!
    }

    /// Creates `trial`; nil when its uid exists and `autoIncrement` is off.
    public func newTrial(_ trial: Trial, autoIncrement: Bool, now: Double) throws(ModelError) -> Trial? {
        guard let record = try Rules.newTrial(trial, autoIncrement: autoIncrement, strict: strict, in: projection) else { return nil }
        apply(record, now: now)
        return record.trialUID.flatMap(projection.trial)
    }

    /// Applies `update` to the first trial `query` selects and returns it.
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate, now: Double) throws(ModelError) -> Trial {
        let (uid, record) = try Rules.fetchAndUpdateTrial(query, update, in: projection)
        apply(record, now: now)
        return projection.trial(uid)!
    }

    /// Sets the trial's project and lists the trial in it.
    public func addProjectTrial(project: String, trial: String, now: Double) throws(ModelError) {
        apply(try Rules.addProjectTrial(project: project, trial: trial, trialExists: projection.hasTrial(trial), strict: strict, in: projection), now: now)
    }

    /// Sets the trial's group and lists the trial in it.
    public func addGroupTrial(group: String, trial: String, now: Double) throws(ModelError) {
        apply(try Rules.addGroupTrial(group: group, trial: trial, trialExists: projection.hasTrial(trial), strict: strict, in: projection), now: now)
    }

    /// Applies a change to one existing trial (`Rules.trialChange`): start, finish, chronos,
    /// arguments, metadata, metrics, tags.
    public func changeTrial(_ record: LogRecord, now: Double) throws(ModelError) {
        apply(try Rules.trialChange(record, trialExists: record.trialUID.map(projection.hasTrial) ?? false), now: now)
    }

    /// Sets the trial's status; a non-nil `error` is appended to its errors.
    public func setTrialStatus(_ uid: String, _ status: Status, error: String?, now: Double) throws(ModelError) {
        apply(try Rules.setTrialStatus(uid, status, error: error, in: projection), now: now)
    }

    // MARK: - Running timers

    /// Start times (seconds since 1970) of the trial's running chronos by name (`runtime`: the
    /// run itself), for stores that keep them outside between changes (the SQL backend's rows).
    public func runningChronos(_ uid: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, hlc) in projection.openTimers(stream: Self.stream, trial: uid) { out[name.isEmpty ? "runtime" : name] = hlc.seconds }
        return out
    }

    /// Puts back the trial's running chronos (see `runningChronos`).
    public func setRunningChronos(_ starts: [String: Double], for uid: String) {
        var timers: [String: HLC] = [:]
        for (name, seconds) in starts {
            timers[name == "runtime" ? "" : name] = HLC(microseconds: UInt64(max(0, (seconds * 1_000_000).rounded())))
        }
        projection.setOpenTimers(timers, stream: Self.stream, trial: uid)
    }
}
