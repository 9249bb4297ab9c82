@_exported import TrackBackends
@_exported import TrackModel
import OrderedCollections

/// The entry point of a training script: picks a backend, a project and a group, and creates
/// trials to log into.
///
/// ```swift
/// let client = try TrackClient(backend: "ephemeral://")
/// try client.setProject(name: "mnist")
/// try client.setGroup(name: "lr-sweep")
/// let logger = try client.newTrial(name: "run", parameters: ["lr": 0.1])
/// try logger.start()
/// let loss = logger.metric("loss")
/// for step in 0..<100 { try loss.log(1.0 / Double(step + 1), step: Int64(step)) }
/// try logger.finish()
/// ```
public final class TrackClient {
    /// The backend every call goes to.
    public let backend: any TrackProtocol
    /// The current project, once set.
    public private(set) var project: Project?
    /// The current group, once set.
    public private(set) var group: TrialGroup?

    /// A client logging to the backend at `uri` (`ephemeral://`, `file://path`, ...).
    public convenience init(backend uri: String = "ephemeral://") throws {
        self.init(backend: try makeBackend(uri: uri))
    }

    /// A client logging to `backend`.
    public init(backend: any TrackProtocol) {
        self.backend = backend
    }

    /// Makes `name` the current project, creating it if it does not exist.
    @discardableResult
    public func setProject(name: String, description: String? = nil, metadata: ValueObject = [:]) throws -> Project {
        let project = try backend.newProject(Project(name: name, description: description, metadata: metadata))
        self.project = project
        group = nil
        return project
    }

    /// Makes `name` the current group of the current project, creating it if it does not exist.
    @discardableResult
    public func setGroup(name: String, description: String? = nil, metadata: ValueObject = [:]) throws -> TrialGroup {
        guard let project else {
            throw TrackError(.invalidArgument, "set a project (setProject(name:)) before setting group '\(name)'")
        }
        let group = try backend.newTrialGroup(TrialGroup(name: name, projectID: project.uid, description: description, metadata: metadata))
        self.group = group
        return group
    }

    /// Creates a trial in the current project and group and returns its logger.
    ///
    /// The trial's uid comes from `name`, `version` and `parameters` (`track`'s hash; `version`
    /// defaults to `0` as in `track`'s client). If that trial exists, the logger resumes its latest
    /// revision, unless `newRevision` is true, which creates revision max + 1.
    public func newTrial(name: String? = nil, version: Value = 0, parameters: ValueObject = [:], description: String? = nil,
                         tags: ValueObject = [:], newRevision: Bool = false) throws -> TrialLogger {
        let trial: Trial
        do {
            trial = try Trial(name: name, version: version, parameters: parameters, description: description, tags: tags,
                              projectID: project?.uid, groupID: group?.uid)
        } catch {
            throw TrackError(error)
        }
        if let created = try backend.newTrial(trial, autoIncrement: newRevision) {
            return TrialLogger(backend: backend, uid: created.uid)
        }
        guard let latest = try backend.getTrial(hash: trial.hash).last else {
            throw TrackError(.itemNotFound, "trial \(trial.uid) exists but could not be read back")
        }
        return TrialLogger(backend: backend, uid: latest.uid)
    }

    /// A logger for an existing trial.
    public func logger(forTrial uid: String) throws -> TrialLogger {
        guard try backend.getTrial(uid: uid) != nil else {
            throw TrackError(.itemNotFound, "trial '\(uid)' does not exist")
        }
        return TrialLogger(backend: backend, uid: uid)
    }

    /// Makes everything logged so far durable.
    public func commit() throws { try backend.commit() }
}
