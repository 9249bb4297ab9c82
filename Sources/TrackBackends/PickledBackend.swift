#if canImport(Glibc)
import Glibc
#endif
import TrackLog
import TrackStore
import TrackModel

/// `pickled://path/to/file.snap`: `track`'s pickled backend in our form. The whole state lives
/// in memory (the in-memory backend's `TrackState`, with every backend's rules and limits) and is loaded from one file when opened and written
/// to it on `commit()` and `close()`, in the compaction snapshot format (docs/FORMAT.md). For one
/// small file and no log; a process that dies loses what it did not commit.
public final class PickledBackend: TrackProtocol, @unchecked Sendable {
    /// The snapshot file.
    public let path: String
    private let memory: MemoryBackend

    /// Opens `path` (an absent file is an empty database).
    public init(path: String, strict: Bool = true) throws {
        self.path = path
        var state = TrackState(strict: strict)
        if FileSystem.exists(path) {
            do {
                let file = try LogFile.open(path, flags: O_RDONLY)
                let bytes = try file.readAll()
                file.close()
                state = TrackState(strict: strict, projection: try Snapshot.decode(bytes, path: path))
            } catch {
                throw TrackError(.io, "cannot open the pickled database '\(path)': \(error)", cause: error)
            }
        }
        memory = MemoryBackend(state: state)
    }

    /// Opens the file a `pickled:` URI names (`pickled://runs/db.snap?strict=false`).
    public convenience init(uri: TrackURI) throws {
        guard !uri.filePath.isEmpty else {
            throw TrackError(.invalidArgument, "the URI '\(uri)' names no file; write it as pickled://path/to/file.snap")
        }
        try self.init(path: uri.filePath, strict: try BackendOptions.strict(uri))
    }

    /// Nothing: a pickled database keeps changes in memory until `commit()` writes the whole
    /// file (rewriting it on every acknowledgement would cost what the event log avoids).
    public func persist() throws {}

    /// Writes the whole state to the file atomically (temporary file, fsync, rename).
    public func commit() throws {
        let bytes = memory.withState { Snapshot.encode($0.projection, generation: 1) }
        // What is written must open again: read it back before it replaces the old file.
        do {
            _ = try Snapshot.decode(bytes, path: path)
        } catch {
            throw TrackError(.damaged, "the pickled database '\(path)' would not read back, so it was not written: \(error)", cause: error)
        }
        let temporary = path + ".tmp"
        do {
            let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
            try FileSystem.createDirectory(directory)
            let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(bytes, at: 0)
            try file.sync()
            file.close()
            try FileSystem.rename(temporary, to: path)
            try FileSystem.syncDirectory(directory)
        } catch {
            throw TrackError(.io, "cannot write the pickled database '\(path)': \(error)", cause: error)
        }
    }

    public func newProject(_ project: Project) throws -> Project { try memory.newProject(project) }
    public func getProject(_ uid: String) throws -> Project? { try memory.getProject(uid) }
    public func fetchProjects(_ query: Query) throws -> [Project] { try memory.fetchProjects(query) }
    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { try memory.newTrialGroup(group) }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try memory.getTrialGroup(uid) }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] { try memory.fetchGroups(query) }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws { try memory.setGroupMetadata(group, metadata) }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup { try memory.fetchAndUpdateGroup(query, update) }
    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? { try memory.newTrial(trial, autoIncrement: autoIncrement) }
    public func getTrial(hash: String) throws -> [Trial] { try memory.getTrial(hash: hash) }
    public func fetchTrials(_ query: Query) throws -> [Trial] { try memory.fetchTrials(query) }
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial { try memory.fetchAndUpdateTrial(query, update) }
    public func addProjectTrial(project: String, trial: String) throws { try memory.addProjectTrial(project: project, trial: trial) }
    public func addGroupTrial(group: String, trial: String) throws { try memory.addGroupTrial(group: group, trial: trial) }
    public func logTrialStart(_ trial: String) throws { try memory.logTrialStart(trial) }
    public func logTrialFinish(_ trial: String) throws { try memory.logTrialFinish(trial) }
    public func logTrialChronoStart(_ trial: String, name: String) throws { try memory.logTrialChronoStart(trial, name: name) }
    public func logTrialChronoFinish(_ trial: String, name: String) throws { try memory.logTrialChronoFinish(trial, name: name) }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws { try memory.logTrialArguments(trial, arguments) }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws { try memory.logTrialMetadata(trial, metadata) }
    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws { try memory.logTrialMetrics(trial, step: step, metrics) }
    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try memory.logTrialMetric(trial, name: name, step: step, value: value)
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws { try memory.addTrialTags(trial, tags) }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws { try memory.setTrialStatus(trial, status, error: error) }
}
