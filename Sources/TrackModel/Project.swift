import OrderedCollections
/// A project: a named set of trial groups and trials. Its uid is its name.
public struct Project: Sendable, Equatable {
    /// The project's name, which is also its uid.
    public var name: String
    /// A free-form description.
    public var description: String?
    /// Free-form metadata.
    public var metadata: ValueObject
    /// The uids of the project's groups, in the order they were added.
    public var groups: [String]
    /// The uids of the project's trials, in the order they were added.
    public var trials: [String]
    /// The revision tag: how many changes were applied to the project since it was created.
    public var updateCount: Int

    /// The uid (`track`: the name).
    public var uid: String { name }

    /// A project with no groups and no trials.
    public init(name: String, description: String? = nil, metadata: ValueObject = [:], groups: [String] = [], trials: [String] = [], updateCount: Int = 0) {
        self.name = name
        self.description = description
        self.metadata = metadata
        self.groups = groups
        self.trials = trials
        self.updateCount = updateCount
    }
}

/// A trial group: a named set of trials inside a project (a sweep, say).
/// Its uid is `compute_hash(name, project_id)`.
public struct TrialGroup: Sendable, Equatable {
    /// The uid; computed from name and project unless given (an imported group keeps its own).
    public var uid: String
    /// The group's name.
    public var name: String
    /// The uid of the project the group belongs to.
    public var projectID: String
    /// A free-form description.
    public var description: String?
    /// Free-form metadata.
    public var metadata: ValueObject
    /// The uids of the group's trials, in the order they were added.
    public var trials: [String]
    /// The revision tag: how many changes were applied to the group since it was created.
    public var updateCount: Int

    /// A group named `name` in project `projectID`, its uid computed as `track` does.
    public init(name: String, projectID: String, description: String? = nil, metadata: ValueObject = [:], trials: [String] = [], uid: String? = nil, updateCount: Int = 0) {
        self.uid = uid ?? TrialHash.group(name: name, projectID: projectID)
        self.name = name
        self.projectID = projectID
        self.description = description
        self.metadata = metadata
        self.trials = trials
        self.updateCount = updateCount
    }
}
