import Foundation
import Synchronization
import TrackModel

/// The in-memory backend (`ephemeral://`): the whole state in one `TrackDatabase` behind a lock.
/// Nothing survives the process. `ephemeral://?strict=false` allows orphan groups and trials.
public final class MemoryBackend: TrackProtocol {
    private let state: Mutex<TrackDatabase>
    private let clock: @Sendable () -> Double

    /// An empty in-memory database. `clock` gives seconds since 1970 (tests may fix it).
    public init(strict: Bool = true, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        state = Mutex(TrackDatabase(strict: strict))
        self.clock = clock
    }

    /// An in-memory backend starting from `database`.
    public init(database: TrackDatabase, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        state = Mutex(database)
        self.clock = clock
    }

    /// An in-memory database configured by `uri` (`ephemeral://?strict=false`).
    public convenience init(uri: TrackURI) throws {
        self.init(strict: try BackendOptions.strict(uri))
    }

    /// A copy of the whole state.
    public var database: TrackDatabase { state.withLock { $0 } }

    private func read<T>(_ body: (TrackDatabase) throws(ModelError) -> T) throws -> T {
        do {
            return try state.withLock { db throws(ModelError) in try body(db) }
        } catch {
            throw TrackError(error)
        }
    }

    private func write<T>(_ body: (inout TrackDatabase, Double) throws(ModelError) -> T) throws -> T {
        let now = clock()
        do {
            return try state.withLock { db throws(ModelError) in try body(&db, now) }
        } catch {
            throw TrackError(error)
        }
    }

    public func newProject(_ project: Project) throws -> Project { try write { db, _ in db.newProject(project) } }
    public func getProject(_ uid: String) throws -> Project? { try read { $0.projects[uid] } }
    public func fetchProjects(_ query: Query) throws -> [Project] { try read { db throws(ModelError) in try db.fetchProjects(query) } }

    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { try write { db, _ throws(ModelError) in try db.newTrialGroup(group) } }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try read { $0.groups[uid] } }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] { try read { db throws(ModelError) in try db.fetchGroups(query) } }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        try write { db, _ throws(ModelError) in try db.setGroupMetadata(group, metadata) }
    }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        try write { db, _ throws(ModelError) in try db.fetchAndUpdateGroup(query, update) }
    }

    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        try write { db, now throws(ModelError) in try db.newTrial(trial, autoIncrement: autoIncrement, now: now) }
    }
    public func getTrial(hash: String) throws -> [Trial] { try read { $0.trials(hash: hash) } }
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

    public func logTrialStart(_ trial: String) throws { try write { db, now throws(ModelError) in try db.logTrialStart(trial, now: now) } }
    public func logTrialFinish(_ trial: String) throws { try write { db, now throws(ModelError) in try db.logTrialFinish(trial, now: now) } }
    public func logTrialChronoStart(_ trial: String, name: String) throws {
        try write { db, now throws(ModelError) in try db.logTrialChronoStart(trial, name: name, now: now) }
    }
    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        try write { db, now throws(ModelError) in try db.logTrialChronoFinish(trial, name: name, now: now) }
    }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.logTrialArguments(trial, arguments, now: now) }
    }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.logTrialMetadata(trial, metadata, now: now) }
    }
    public func logTrialMetrics(_ trial: String, step: Int64?, _ metrics: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.logTrialMetrics(trial, step: step, metrics, now: now) }
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        try write { db, now throws(ModelError) in try db.addTrialTags(trial, tags, now: now) }
    }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try write { db, now throws(ModelError) in try db.setTrialStatus(trial, status, error: error, now: now) }
    }

    /// Nothing to make durable: the data lives in memory only.
    public func commit() throws {}
    /// Nothing to write: the state lives and dies with the process.
    public func persist() throws {}
}
