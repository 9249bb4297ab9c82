import OrderedCollections

/// One training run. Its hash is `compute_hash(name, version, **parameters)` at creation and its
/// uid is `"<hash>_<revision>"`; the revision grows when the same trial is inserted again with
/// auto-increment.
public struct Trial: Sendable, Equatable {
    /// The hash fixed at creation (arguments logged later do not change it).
    public var hash: String
    /// The revision: 0 for the first run, then max + 1 for each auto-incremented re-run.
    public var revision: Int
    /// The trial's name.
    public var name: String?
    /// A free-form description.
    public var description: String?
    /// Tags, key to value.
    public var tags: ValueObject
    /// The version: a string, or an int (`track`'s client default is `0`).
    public var version: Value?
    /// The uid of the trial's group, if any.
    public var groupID: String?
    /// The uid of the trial's project, if any.
    public var projectID: String?
    /// The parameters (hyper-parameters, command-line arguments), in order.
    public var parameters: ValueObject
    /// Free-form metadata, without the revision bookkeeping (`updateCount`, `lastChange`).
    public var metadata: ValueObject
    /// Metric name to its series, in the order metrics were first logged.
    public var metrics: OrderedDictionary<String, MetricSeries>
    /// Timers: `runtime` (value aggregator) and named chronos (stat aggregators).
    public var chronos: OrderedDictionary<String, Aggregator>
    /// The current status.
    public var status: Status
    /// Error texts, oldest first.
    public var errors: [String]
    /// The revision tag: changes applied since creation (`track`'s `metadata._update_count`).
    public var updateCount: Int
    /// Seconds since 1970 of the last change (`track`'s `metadata._last_change`).
    public var lastChange: Double?

    /// `"<hash>_<revision>"`.
    public var uid: String { "\(hash)_\(revision)" }

    /// A new trial whose hash is computed from `name`, `version` and `parameters` as `track` does.
    /// Throws when `track` could not hash the parameters (see `TrialHash`).
    public init(name: String? = nil, version: Value? = nil, parameters: ValueObject = [:], description: String? = nil,
                tags: ValueObject = [:], projectID: String? = nil, groupID: String? = nil, revision: Int = 0) throws(ModelError) {
        let hash = try TrialHash.trial(name: name, version: version, parameters: parameters)
        self.init(hash: hash, revision: revision, name: name, version: version, parameters: parameters,
                  description: description, tags: tags, projectID: projectID, groupID: groupID)
    }

    /// A trial with a given hash (an imported or received trial keeps the hash it was stored with).
    public init(hash: String, revision: Int = 0, name: String? = nil, version: Value? = nil, parameters: ValueObject = [:],
                description: String? = nil, tags: ValueObject = [:], projectID: String? = nil, groupID: String? = nil,
                metadata: ValueObject = [:], metrics: OrderedDictionary<String, MetricSeries> = [:],
                chronos: OrderedDictionary<String, Aggregator> = [:], status: Status = .createdGroup, errors: [String] = [],
                updateCount: Int = 0, lastChange: Double? = nil) {
        self.hash = hash
        self.revision = revision
        self.name = name
        self.description = description
        self.tags = tags
        self.version = version
        self.groupID = groupID
        self.projectID = projectID
        self.parameters = parameters
        self.metadata = metadata
        self.metrics = metrics
        self.chronos = chronos
        self.status = status
        self.errors = errors
        self.updateCount = updateCount
        self.lastChange = lastChange
    }

    /// Splits a uid `"<hash>_<revision>"` into its parts; nil when it is not of that form.
    public static func splitUID(_ uid: String) -> (hash: String, revision: Int)? {
        guard let underscore = uid.lastIndex(of: "_"), let revision = Int(uid[uid.index(after: underscore)...]), revision >= 0 else {
            return nil
        }
        return (String(uid[..<underscore]), revision)
    }

    /// The short form of the uid people read and every tool accepts: the hash's first 12
    /// characters and the revision (`2e1b2597e896_0`).
    public var shortID: String { String(hash.prefix(12)) + "_" + String(revision) }

    /// The parameter names whose values are not the same in every one of `trials` (present in
    /// some only, or with different values), sorted: what tells the runs of a sweep apart.
    public static func differingParameters(_ trials: [Trial]) -> [String] {
        guard trials.count > 1 else { return [] }
        var keys = Set<String>()
        for t in trials { keys.formUnion(t.parameters.keys) }
        return keys.filter { key in
            let first = trials[0].parameters[key]
            return trials.contains { $0.parameters[key] != first }
        }.sorted()
    }
}
