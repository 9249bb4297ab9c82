#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import TrackLog
import TrackModel
import TrackStore

/// The in-memory backend (`ephemeral://`): the whole state in one `TrackState` (the event log's
/// rules and projection, with no log beneath) behind a lock. Nothing survives the process.
/// `ephemeral://?strict=false` allows orphan groups and trials.
public final class MemoryBackend: TrackProtocol {
    private let state: Mutex<TrackState>
    private let clock: @Sendable () -> Double

    /// An empty in-memory database. `clock` gives seconds since 1970 (tests may fix it).
    public init(strict: Bool = true, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        state = Mutex(TrackState(strict: strict))
        self.clock = clock
    }

    /// An in-memory backend starting from `state` (which it then owns).
    public init(state: TrackState, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.state = Mutex(state)
        self.clock = clock
    }

    /// An in-memory database configured by `uri` (`ephemeral://?strict=false`).
    public convenience init(uri: TrackURI) throws {
        self.init(strict: try BackendOptions.strict(uri))
    }

    /// Runs `body` on the state, holding the lock (for a snapshot of it).
    public func withState<T>(_ body: (TrackState) throws -> T) rethrows -> T {
        try state.withLock { try body($0) }
    }

    private func read<T>(_ body: (TrackState) throws(ModelError) -> T) throws -> T {
        do {
            return try state.withLock { db throws(ModelError) in try body(db) }
        } catch {
            throw TrackError(error)
        }
    }

    private func write<T>(_ body: (TrackState, Double) throws(ModelError) -> T) throws -> T {
        let now = clock()
        do {
            return try state.withLock { db throws(ModelError) in try body(db, now) }
        } catch {
            throw TrackError(error)
        }
    }

    public func newProject(_ project: Project) throws -> Project { try write { db, now throws(ModelError) in try db.newProject(project, now: now) } }
    public func getProject(_ uid: String) throws -> Project? { try read { $0.project(uid) } }
    public func fetchProjects(_ query: Query) throws -> [Project] { try read { db throws(ModelError) in try db.fetchProjects(query) } }

    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { try write { db, now throws(ModelError) in try db.newTrialGroup(group, now: now) } }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try read { $0.group(uid) } }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] { try read { db throws(ModelError) in try db.fetchGroups(query) } }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.setGroupMetadata(group, metadata, now: now) }
    }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        try write { db, now throws(ModelError) in try db.fetchAndUpdateGroup(query, update, now: now) }
    }

    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        try write { db, now throws(ModelError) in try db.newTrial(trial, autoIncrement: autoIncrement, now: now) }
    }
    public func getTrial(hash: String) throws -> [Trial] { try read { $0.trials(hash: hash) } }
    public func metricPoints(trial: String, name: String) throws -> (steps: [Int64], values: [Double]) {
        let found = state.withLock { db -> (steps: [Int64], values: [Double])? in
            guard db.projection.hasTrial(trial) else { return nil }
            return db.projection.columns(trial: trial, metric: name)?.pythonPoints ?? ([], [])
        }
        guard let found else { throw TrackError(.itemNotFound, "trial '\(trial)' does not exist") }
        return found
    }
    public func fetchTrials(_ query: Query) throws -> [Trial] { try read { db throws(ModelError) in try db.fetchTrials(query) } }
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        try write { db, now throws(ModelError) in try db.fetchAndUpdateTrial(query, update, now: now) }
    }
    public func addProjectTrial(project: String, trial: String) throws {
        try write { db, now throws(ModelError) in try db.addProjectTrial(project: project, trial: trial, now: now) }
    }
    public func addGroupTrial(group: String, trial: String) throws {
        try write { db, now throws(ModelError) in try db.addGroupTrial(group: group, trial: trial, now: now) }
    }

    public func logTrialStart(_ trial: String) throws { try write { db, now throws(ModelError) in try db.changeTrial(.trialStarted(trial: trial), now: now) } }
    public func logTrialFinish(_ trial: String) throws { try write { db, now throws(ModelError) in try db.changeTrial(.trialFinished(trial: trial), now: now) } }
    public func logTrialChronoStart(_ trial: String, name: String) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.chronoStarted(trial: trial, name: name), now: now) }
    }
    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.chronoFinished(trial: trial, name: name), now: now) }
    }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.argumentsLogged(trial: trial, arguments), now: now) }
    }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.metadataLogged(trial: trial, metadata), now: now) }
    }
    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.metricsLogged(trial: trial, step: step, metrics), now: now) }
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.changeTrial(.tagsAdded(trial: trial, tags), now: now) }
    }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try write { db, now throws(ModelError) in try db.setTrialStatus(trial, status, error: error, now: now) }
    }

    /// What changed after `cursor` (nil: everything): see `Projection.changes(since:)`.
    public func changes(since cursor: ChangeCursor?) -> ProjectionChanges {
        state.withLock { $0.projection.changes(since: cursor) }
    }

    /// Nothing to make durable: the data lives in memory only.
    public func commit() throws {}
    /// Nothing to write: the state lives and dies with the process.
    public func persist() throws {}
}
