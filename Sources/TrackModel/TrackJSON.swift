import OrderedCollections

// `track`'s JSON serialization of its objects (`track.serialization`): what its `FileProtocol`
// writes and what its socket protocol carries. Field names and order are `track`'s.

// MARK: - Trial

extension Trial {
    /// `{"dtype": "trial", "uid": ..., ...}` as `track` serializes a trial. The revision tag and
    /// last change go into `metadata` as `_update_count` and `_last_change`, first, as in `track`.
    public var trackJSON: Value {
        var meta = ValueObject()
        meta["_update_count"] = .int(Int64(updateCount))
        if let lastChange { meta["_last_change"] = .double(lastChange) }
        for (key, value) in metadata where key != "_update_count" && key != "_last_change" { meta[key] = value }
        var metricsJSON = ValueObject()
        for (key, series) in metrics { metricsJSON[key] = series.trackJSON }
        var chronosJSON = ValueObject()
        for (key, chrono) in chronos { chronosJSON[key] = chrono.trackJSON }
        return .object([
            "dtype": "trial",
            "uid": .string(uid),
            "revision": .int(Int64(revision)),
            "hash": .string(hash),
            "name": name.map(Value.string) ?? .null,
            "description": description.map(Value.string) ?? .null,
            "version": version ?? .null,
            "tags": .object(tags),
            "group_id": groupID.map(Value.string) ?? .null,
            "project_id": projectID.map(Value.string) ?? .null,
            "parameters": .object(parameters),
            "metadata": .object(meta),
            "metrics": .object(metricsJSON),
            "chronos": .object(chronosJSON),
            "errors": .array(errors.map(Value.string)),
            "status": status.trackJSON,
        ])
    }

    /// Reads `track`'s serialized trial. Missing optional fields take their defaults; the stored
    /// hash is kept (it may differ from what the current parameters would hash to). When there is
    /// no `hash` field, it is taken from `uid`, or computed.
    public init(trackJSON value: Value) throws(ModelError) {
        guard case .object(let f) = value else {
            throw ModelError(.malformedObject, "a trial is an object, got \(value.kindName)")
        }
        if let dtype = f["dtype"]?.stringValue, dtype != "trial" {
            throw ModelError(.malformedObject, "expected dtype 'trial', got '\(dtype)'")
        }
        func optionalString(_ key: String) throws(ModelError) -> String? {
            switch f[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            case let other?: throw ModelError(.malformedObject, "trial field '\(key)' must be a string or null, got \(other.kindName)")
            }
        }
        func object(_ key: String) throws(ModelError) -> ValueObject {
            switch f[key] {
            case nil, .null?: return [:]
            case .object(let o)?: return o
            case let other?: throw ModelError(.malformedObject, "trial field '\(key)' must be an object, got \(other.kindName)")
            }
        }
        let name = try optionalString("name")
        let version: Value? = f["version"].flatMap { $0.isNull ? Optional<Value>.none : $0 }
        let parameters = try object("parameters")
        var revision = 0
        if let r = f["revision"], !r.isNull {
            // Python's Trial.uid setter leaves the revision a string ("0"): read it as the number.
            guard let i = r.intValue ?? r.stringValue.flatMap({ Int64($0) }), i >= 0 else {
                throw ModelError(.malformedObject, "trial field 'revision' must be a non-negative integer (or its digits as a string), got \(r)")
            }
            revision = Int(i)
        }
        var hash: String
        if let h = try optionalString("hash") {
            hash = h
        } else if let uid = try optionalString("uid"), let parts = Trial.splitUID(uid) {
            hash = parts.hash
            if f["revision"] == nil { revision = parts.revision }
        } else {
            hash = try TrialHash.trial(name: name, version: version, parameters: parameters)
        }
        var metadata = try object("metadata")
        let updateCount = metadata.removeValue(forKey: "_update_count")?.intValue.map { Int($0) } ?? 0
        let lastChange = metadata.removeValue(forKey: "_last_change")?.doubleValue
        var metrics = OrderedDictionary<String, MetricSeries>()
        for (key, series) in try object("metrics") { metrics[key] = try MetricSeries(trackJSON: series) }
        var chronos = OrderedDictionary<String, Aggregator>()
        for (key, chrono) in try object("chronos") { chronos[key] = try Aggregator(trackJSON: chrono) }
        var errors: [String] = []
        switch f["errors"] {
        case nil, .null?: break
        case .array(let list)?: errors = list.map { $0.stringValue ?? JSON.encode($0) }
        case let other?: throw ModelError(.malformedObject, "trial field 'errors' must be a list, got \(other.kindName)")
        }
        let status = try f["status"].map { v throws(ModelError) in try Status(trackJSON: v) } ?? .createdGroup
        self.init(hash: hash, revision: revision, name: name, version: version, parameters: parameters,
                  description: try optionalString("description"), tags: try object("tags"),
                  projectID: try optionalString("project_id"), groupID: try optionalString("group_id"),
                  metadata: metadata, metrics: metrics, chronos: chronos, status: status, errors: errors,
                  updateCount: updateCount, lastChange: lastChange)
    }
}

// MARK: - Group

extension TrialGroup {
    /// `{"dtype": "trial_group", ...}` as `track` serializes a group.
    public var trackJSON: Value {
        .object([
            "dtype": "trial_group",
            "uid": .string(uid),
            "name": .string(name),
            "description": description.map(Value.string) ?? .null,
            "metadata": .object(metadata),
            "project_id": .string(projectID),
            "trials": .array(trials.map(Value.string)),
        ])
    }

    /// Reads `track`'s serialized group; a stored uid is kept.
    public init(trackJSON value: Value) throws(ModelError) {
        guard case .object(let f) = value else {
            throw ModelError(.malformedObject, "a trial group is an object, got \(value.kindName)")
        }
        guard let name = f["name"]?.stringValue else {
            throw ModelError(.malformedObject, "a trial group needs a string 'name'")
        }
        guard let projectID = f["project_id"]?.stringValue else {
            throw ModelError(.malformedObject, "trial group '\(name)' needs a string 'project_id'")
        }
        let trials = (f["trials"]?.arrayValue ?? []).compactMap { $0.stringValue ?? $0["uid"]?.stringValue }
        self.init(name: name, projectID: projectID, description: f["description"]?.stringValue,
                  metadata: f["metadata"]?.objectValue ?? [:], trials: trials, uid: f["uid"]?.stringValue)
    }
}

// MARK: - Project

extension Project {
    /// `{"dtype": "project", ...}` as `track` serializes a project. `track`'s `FileProtocol`
    /// embeds whole trials and groups: pass them to embed them, otherwise their uids are listed.
    public func trackJSON(embeddingTrials trialObjects: [Trial]? = nil, groups groupObjects: [TrialGroup]? = nil) -> Value {
        .object([
            "dtype": "project",
            "uid": .string(uid),
            "name": .string(name),
            "description": description.map(Value.string) ?? .null,
            "metadata": .object(metadata),
            "trials": .array(trialObjects?.map(\.trackJSON) ?? trials.map(Value.string)),
            "groups": .array(groupObjects?.map(\.trackJSON) ?? groups.map(Value.string)),
        ])
    }

    /// Reads `track`'s serialized project: embedded trials and groups are reduced to their uids.
    public init(trackJSON value: Value) throws(ModelError) {
        guard case .object(let f) = value else {
            throw ModelError(.malformedObject, "a project is an object, got \(value.kindName)")
        }
        guard let name = f["name"]?.stringValue ?? f["uid"]?.stringValue else {
            throw ModelError(.malformedObject, "a project needs a string 'name'")
        }
        func uids(_ key: String) -> [String] {
            (f[key]?.arrayValue ?? []).compactMap { element -> String? in
                if let s = element.stringValue { return s }
                if let uid = element["uid"]?.stringValue { return uid }
                if element["dtype"]?.stringValue == "trial", let t = try? Trial(trackJSON: element) { return t.uid }
                return nil
            }
        }
        self.init(name: name, description: f["description"]?.stringValue, metadata: f["metadata"]?.objectValue ?? [:],
                  groups: uids("groups"), trials: uids("trials"))
    }
}

// MARK: - FileProtocol database

/// The JSON database of `track`'s `FileProtocol` (`file://x.json`): a list of projects, each
/// embedding its trials and groups (docs/FORMAT.md, section 2).
public struct TrackFileDatabase: Sendable, Equatable {
    /// The projects, in file order.
    public var projects: [Project]
    /// Every group, project by project in file order.
    public var groups: [TrialGroup]
    /// Every trial, project by project in file order.
    public var trials: [Trial]

    /// A database of these objects.
    public init(projects: [Project], groups: [TrialGroup], trials: [Trial]) {
        self.projects = projects
        self.groups = groups
        self.trials = trials
    }

    /// Reads the database; the error names the project, trial or group that is malformed.
    public init(trackJSON value: Value) throws(ModelError) {
        guard case .array(let list) = value else {
            throw ModelError(.malformedObject, "a track FileProtocol database is a list of projects, got \(value.kindName)")
        }
        projects = []
        groups = []
        trials = []
        for (index, element) in list.enumerated() {
            let project: Project
            do { project = try Project(trackJSON: element) } catch {
                throw ModelError(.malformedObject, "project \(index + 1): \(error.message)")
            }
            projects.append(project)
            for t in element["trials"]?.arrayValue ?? [] where t.objectValue != nil {
                do { trials.append(try Trial(trackJSON: t)) } catch {
                    throw ModelError(.malformedObject, "project '\(project.name)', trial \(t["uid"]?.stringValue ?? "?"): \(error.message)")
                }
            }
            for g in element["groups"]?.arrayValue ?? [] where g.objectValue != nil {
                do { groups.append(try TrialGroup(trackJSON: g)) } catch {
                    throw ModelError(.malformedObject, "project '\(project.name)', group \(g["name"]?.stringValue ?? "?"): \(error.message)")
                }
            }
        }
    }

    /// The database as `track`'s `FileProtocol` writes it: each project embedding its trials and
    /// groups, in the project's own order. Trials and groups no project lists are left out (the
    /// format cannot hold them); `unplaced` returns their uids.
    public func trackJSON(unplaced: inout [String]) -> Value {
        let trialsByUID = Dictionary(trials.map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        let groupsByUID = Dictionary(groups.map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        var placed = Set<String>()
        var out: [Value] = []
        for project in projects {
            let embeddedTrials = project.trials.compactMap { trialsByUID[$0] }
            let embeddedGroups = project.groups.compactMap { groupsByUID[$0] }
            placed.formUnion(embeddedTrials.map(\.uid))
            placed.formUnion(embeddedGroups.map(\.uid))
            out.append(project.trackJSON(embeddingTrials: embeddedTrials, groups: embeddedGroups))
        }
        unplaced = (trials.map(\.uid) + groups.map(\.uid)).filter { !placed.contains($0) }
        return .array(out)
    }
}
