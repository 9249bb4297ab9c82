import TrackModel

/// What a request may touch. The server checks each user's projects (`AccessCheck` in
/// TrackServer); in-process callers (the C ABI) may use everything (`OpenRequestAccess`).
public protocol RequestAccess {
    /// Throws unless the trial `uid` may be used (a missing trial is left to the backend).
    func requireTrial(_ uid: String) throws
    /// Throws unless the group `uid` may be used (a missing group is left to the backend).
    func requireGroup(_ uid: String) throws
    /// Throws unless `project` may be used; `what` names it in the error.
    func require(project: String?, _ what: @autoclosure () -> String) throws
    /// True when `project` may be used.
    func mayUse(project: String?) -> Bool
    /// True when `trial` may be seen.
    func mayUse(trial: Trial) -> Bool
    /// Throws unless a project may be created (or used) under this name.
    func requireCreate(project: String) throws
    /// Throws unless `trial` may be created where it says it belongs.
    func requireCreate(trial: Trial) throws
    /// `query` narrowed to what may be used.
    func narrow(_ query: Query) -> Query
}

/// Everything may be used: the access of an in-process caller, who owns the database.
public struct OpenRequestAccess: RequestAccess {
    /// The open access.
    public init() {}
    public func requireTrial(_ uid: String) throws {}
    public func requireGroup(_ uid: String) throws {}
    public func require(project: String?, _ what: @autoclosure () -> String) throws {}
    public func mayUse(project: String?) -> Bool { true }
    public func mayUse(trial: Trial) -> Bool { true }
    public func requireCreate(project: String) throws {}
    public func requireCreate(trial: Trial) throws {}
    public func narrow(_ query: Query) -> Query { query }
}

/// A request that is not an operation: the reply that says why.
public struct RejectedRequest: Error {
    /// The failure reply.
    public let reply: Value
}

/// `track`'s protocol operations as JSON requests, without a socket or a login: turns one
/// request (a JSON object naming its operation in `__rpc__`, with track's argument names) into
/// one reply (`{"status": 0, "return": ...}` or `{"status": 1, "error": "..."}`) by calling a
/// backend. The socket server (`RPCDispatcher`) adds logins and per-user access over it; the C
/// ABI uses it directly. docs/FORMAT.md, section "Socket protocol".
public struct ProtocolRequests: Sendable {
    /// The backend every operation goes to.
    public let backend: any TrackProtocol

    /// Requests over `backend`.
    public init(backend: any TrackProtocol) { self.backend = backend }

    /// The operations, by `track`'s Python names.
    public static let operations: Set<String> = [
        "authenticate", "new_project", "get_project", "fetch_projects", "new_trial_group", "get_trial_group", "fetch_groups",
        "set_group_metadata", "fetch_and_update_group", "new_trial", "get_trial", "get_trail", "fetch_trials", "fetch_and_update_trial",
        "add_project_trial", "add_group_trial", "log_trial_start", "log_trial_finish", "log_trial_chrono_start",
        "log_trial_chrono_finish", "log_trial_arguments", "log_trial_metadata", "log_trial_metrics", "add_trial_tags",
        "set_trial_status", "commit",
    ]

    /// A failure reply; `code` (an extension: Python clients ignore it) names the kind of error
    /// for Swift clients.
    public static func failure(_ message: String, code: TrackError.Code? = nil) -> Value {
        var reply: Value = ["status": 1, "error": .string(message)]
        if let code, case .object(var o) = reply { o["code"] = .string(code.rawValue); reply = .object(o) }
        return reply
    }

    /// A success reply.
    public static func success(_ value: Value) -> Value { ["status": 0, "return": value] }

    /// The success reply of an operation returning nothing.
    public static let nullReply = success(.null)

    /// The failure reply for `error` thrown by `rpc`.
    public static func failure(_ rpc: String, _ error: any Error) -> Value {
        switch error {
        case let error as TrackError:
            return failure("\(rpc): \(error.message)", code: error.code)
        case let error as ModelError:
            return failure("\(rpc): \(error.message)", code: TrackError(error).code)
        default:
            return failure("\(rpc): \(error)")
        }
    }

    /// The operation a request names and its fields, or the reply refusing it (not an object,
    /// no `__rpc__`, an unknown operation).
    public static func operation(of request: Value) throws(RejectedRequest) -> (rpc: String, fields: ValueObject) {
        guard case .object(let fields) = request else {
            throw RejectedRequest(reply: failure("a request is a JSON object with an \"__rpc__\" field, got \(request.kindName)"))
        }
        guard let rpc = fields["__rpc__"]?.stringValue else {
            throw RejectedRequest(reply: failure("the request has no \"__rpc__\" field naming the operation (keys: \(fields.keys.joined(separator: ", ")))"))
        }
        guard operations.contains(rpc) else {
            throw RejectedRequest(reply: failure("unknown operation '\(rpc)'; known operations: \(operations.sorted().joined(separator: ", "))"))
        }
        return (rpc, fields)
    }

    /// Decodes a message's bytes (UTF-8 JSON) into a request, or the reply refusing them.
    public static func request(fromMessage bytes: [UInt8]) throws(RejectedRequest) -> Value {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw RejectedRequest(reply: failure("the message is not valid UTF-8")) }
        do {
            return try JSON.decode(bytes)
        } catch {
            throw RejectedRequest(reply: failure("the message is not valid JSON: \(error.message)", code: .invalidArgument))
        }
    }

    /// The reply to one message's bytes: a one-metric `log_trial_metrics` read straight from
    /// the bytes, anything else decoded as JSON. No login: `authenticate` succeeds.
    public func reply(toMessage bytes: [UInt8], access: some RequestAccess = OpenRequestAccess()) -> Value {
        if let reply = replyToOneMetric(bytes, access: access) { return reply }
        do {
            return reply(to: try Self.request(fromMessage: bytes), access: access)
        } catch {
            return error.reply
        }
    }

    /// The reply to `request`. No login: `authenticate` succeeds.
    public func reply(to request: Value, access: some RequestAccess = OpenRequestAccess()) -> Value {
        do {
            let (rpc, fields) = try Self.operation(of: request)
            if rpc == "authenticate" { return Self.success(Self.success(true)) }
            return reply(rpc: rpc, fields: fields, access: access)
        } catch {
            return error.reply
        }
    }

    /// The reply to a known operation other than `authenticate`.
    public func reply(rpc: String, fields: ValueObject, access: some RequestAccess) -> Value {
        do {
            return Self.success(try perform(rpc, Arguments(rpc: rpc, fields: fields), access))
        } catch {
            return Self.failure(rpc, error)
        }
    }

    /// The reply to a message that is a one-metric `log_trial_metrics` (`FastMetric`), logged
    /// without building a JSON value; nil when the general path must answer (another message,
    /// a malformed uid), so replies are the same either way.
    public func replyToOneMetric(_ bytes: [UInt8], access: some RequestAccess) -> Value? {
        guard let m = FastMetric.parse(bytes), Trial.splitUID(m.trial) != nil, m.name != "aggregator" else { return nil }
        do {
            try access.requireTrial(m.trial)
            try backend.logTrialMetric(m.trial, name: m.name, step: m.step, value: m.value)
            return Self.nullReply
        } catch {
            return Self.failure("log_trial_metrics", error)
        }
    }

    func perform(_ rpc: String, _ a: Arguments, _ access: some RequestAccess) throws -> Value {
        let b = backend
        // Every operation on a trial names it in "trial"; check it once here.
        if rpc.hasPrefix("log_trial") || rpc == "add_trial_tags" || rpc == "set_trial_status" || rpc == "add_project_trial" || rpc == "add_group_trial" {
            try access.requireTrial(try a.trialUID())
        }
        switch rpc {
        case "new_project":
            let project = try a.project()
            try access.requireCreate(project: project.uid)
            return projectJSON(try b.newProject(project))
        case "get_project":
            let uid = try a.projectUID()
            guard let project = try b.getProject(uid) else { return .null }
            try access.require(project: uid, "project '\(uid)'")
            return projectJSON(project)
        case "fetch_projects":
            return .array(try b.fetchProjects(try a.query()).filter { access.mayUse(project: $0.uid) }.map(projectJSON))
        case "new_trial_group":
            let group = try a.group()
            try access.requireCreate(project: group.projectID)
            // Python's new_trial_group returns None for a group that exists already.
            if try b.getTrialGroup(group.uid) != nil { return .null }
            return groupJSON(try b.newTrialGroup(group))
        case "get_trial_group":
            let uid = try a.groupUID()
            try access.requireGroup(uid)
            return try b.getTrialGroup(uid).map(groupJSON) ?? .null
        case "fetch_groups":
            return .array(try b.fetchGroups(try a.query()).filter { access.mayUse(project: $0.projectID) }.map(groupJSON))
        case "set_group_metadata":
            let uid = try a.groupUID()
            try access.requireGroup(uid)
            try b.setGroupMetadata(uid, a.extra(except: ["group"]))
            return .null
        case "fetch_and_update_group":
            let attr = try a.string("attr")
            guard attr == "set_group_metadata" else { throw a.bad("attr", "fetch_and_update_group supports set_group_metadata, not '\(attr)'") }
            return groupJSON(try b.fetchAndUpdateGroup(access.narrow(try a.query()), .setMetadata(a.extra(except: ["query", "attr"]))))
        case "new_trial":
            let trial = try a.trial()
            try access.requireCreate(trial: trial)
            return try b.newTrial(trial, autoIncrement: a.fields["auto_increment"]?.boolValue ?? false)?.trackJSON ?? .null
        case "get_trial", "get_trail":
            // A revision that is not a number (Python's client sends "exist" for a malformed uid)
            // names no trial: null, as Python answers.
            if case .object(let o)? = a.fields["trial"], let r = o["revision"]?.stringValue, Int64(r) == nil { return .null }
            let trials = try b.getTrial(hash: try a.trialHash()).filter(access.mayUse(trial:))
            return trials.isEmpty ? .null : .array(trials.map(\.trackJSON))
        case "fetch_trials":
            return .array(try b.fetchTrials(try a.query()).filter(access.mayUse(trial:)).map(\.trackJSON))
        case "fetch_and_update_trial":
            return try b.fetchAndUpdateTrial(access.narrow(try a.query()), try a.trialUpdate()).trackJSON
        case "add_project_trial":
            let uid = try a.projectUID()
            try access.require(project: uid, "project '\(uid)'")
            try b.addProjectTrial(project: uid, trial: try a.trialUID())
            return .null
        case "add_group_trial":
            let uid = try a.groupUID()
            try access.requireGroup(uid)
            try b.addGroupTrial(group: uid, trial: try a.trialUID())
            return .null
        case "log_trial_start":
            let uid = try a.trialUID()
            try b.logTrialStart(uid)
            return try b.getTrial(uid: uid)?.trackJSON ?? .null
        case "log_trial_finish":
            let uid = try a.trialUID()
            if let kind = a.fields["exc_type"], !kind.isNull {
                try b.setTrialStatus(uid, .exception, error: kind.stringValue ?? JSON.encode(kind))
            }
            try b.logTrialFinish(uid)
            return .null
        case "log_trial_chrono_start":
            try b.logTrialChronoStart(try a.trialUID(), name: try a.string("name"))
            return .null
        case "log_trial_chrono_finish":
            try b.logTrialChronoFinish(try a.trialUID(), name: try a.string("name"))
            return .null
        case "log_trial_arguments":
            try b.logTrialArguments(try a.trialUID(), a.extra(except: ["trial"]))
            return .null
        case "log_trial_metadata":
            try b.logTrialMetadata(try a.trialUID(), a.extra(except: ["trial", "aggregator"]))
            return .null
        case "log_trial_metrics":
            let uid = try a.trialUID()
            var step: MetricStep? = nil
            if let s = a.fields["step"], !s.isNull {
                // Python takes any hashable step; a number or a string is what JSON carries.
                guard let parsed = MetricStep(s) else { throw a.bad("step", "must be an integer, a float, a string or null, got \(s)") }
                step = parsed
            }
            let metrics = a.extra(except: ["trial", "step", "aggregator"])
            if metrics.count == 1, let (name, value) = metrics.elements.first.map({ ($0.key, $0.value) }), case .double(let d) = value,
               step == nil || step?.intValue != nil {
                try b.logTrialMetric(uid, name: name, step: step?.intValue, value: d)
            } else if !metrics.isEmpty {
                try b.logTrialMetrics(uid, step: step, metrics)
            }
            return .null
        case "add_trial_tags":
            try b.addTrialTags(try a.trialUID(), a.extra(except: ["trial"]))
            return .null
        case "set_trial_status":
            let error = a.fields["error"].flatMap { $0.isNull ? nil : ($0.stringValue ?? JSON.encode($0)) }
            try b.setTrialStatus(try a.trialUID(), try a.status(), error: error)
            return .null
        case "commit":
            try b.commit()
            return .null
        default:
            throw TrackError(.invalidArgument, "operation '\(rpc)' is not implemented")
        }
    }

    /// Projects travel with their trials and groups embedded, as `track`'s server sends them,
    /// plus their revision tag as `_update_count` (Python clients ignore the extra key).
    private func projectJSON(_ p: Project) -> Value {
        let trials = p.trials.compactMap { try? backend.getTrial(uid: $0) }
        let groups = p.groups.compactMap { try? backend.getTrialGroup($0) }
        guard case .object(var o) = p.trackJSON(embeddingTrials: trials, groups: groups) else { return .null }
        o["_update_count"] = .int(Int64(p.updateCount))
        return .object(o)
    }

    /// A group in `track`'s serialization plus its revision tag as `_update_count`.
    private func groupJSON(_ g: TrialGroup) -> Value {
        guard case .object(var o) = g.trackJSON else { return .null }
        o["_update_count"] = .int(Int64(g.updateCount))
        return .object(o)
    }
}

/// The arguments of one request, with readers that say which argument is wrong.
struct Arguments {
    let rpc: String
    let fields: ValueObject

    func bad(_ name: String, _ why: String) -> TrackError {
        TrackError(.invalidArgument, "argument '\(name)' \(why)")
    }

    func required(_ name: String) throws -> Value {
        guard let v = fields[name], !v.isNull else { throw bad(name, "is missing") }
        return v
    }

    func string(_ name: String) throws -> String {
        let v = try required(name)
        guard let s = v.stringValue else { throw bad(name, "must be a string, got \(v.kindName)") }
        return s
    }

    /// Every argument but `__rpc__` and `names` (the `**kwargs` of the Python call).
    func extra(except names: Set<String>) -> ValueObject {
        var out = ValueObject()
        for (k, v) in fields where k != "__rpc__" && !names.contains(k) { out[k] = v }
        return out
    }

    func project() throws -> Project {
        let v = try required("project")
        if let name = v.stringValue { return Project(name: name) }
        do { return try Project(trackJSON: v) } catch { throw bad("project", error.message) }
    }

    func projectUID() throws -> String {
        let v = try required("project")
        if let name = v.stringValue { return name }
        guard let uid = v["uid"]?.stringValue ?? v["name"]?.stringValue else { throw bad("project", "has no uid or name") }
        return uid
    }

    func group() throws -> TrialGroup {
        do { return try TrialGroup(trackJSON: try required("group")) } catch let e as ModelError { throw bad("group", e.message) }
    }

    func groupUID() throws -> String {
        let v = try required("group")
        if let uid = v.stringValue { return uid }
        if let uid = v["uid"]?.stringValue { return uid }
        if let name = v["name"]?.stringValue, let project = v["project_id"]?.stringValue { return TrialHash.group(name: name, projectID: project) }
        throw bad("group", "has no uid, and no name and project_id to compute it")
    }

    func trial() throws -> Trial {
        let v = try required("trial")
        do { return try Trial(trackJSON: v) } catch { throw bad("trial", error.message) }
    }

    func trialUID() throws -> String {
        let v = try required("trial")
        if let uid = v.stringValue {
            guard Trial.splitUID(uid) != nil else { throw bad("trial", "'\(uid)' is not a uid of the form <hash>_<revision>") }
            return uid
        }
        return try trial().uid
    }

    func trialHash() throws -> String {
        let v = try required("trial")
        if let uid = v.stringValue { return Trial.splitUID(uid)?.hash ?? uid }
        return try trial().hash
    }

    func status() throws -> Status {
        do { return try Status(trackJSON: try required("status")) } catch let e as ModelError { throw bad("status", e.message) }
    }

    func query() throws -> Query {
        do { return try Query(trackJSON: fields["query"] ?? .null) } catch { throw bad("query", error.message) }
    }

    /// `fetch_and_update_trial`'s `attr` (a method name) and its keyword arguments as an update.
    func trialUpdate() throws -> TrialUpdate {
        let attr = try string("attr")
        let rest = extra(except: ["query", "attr"])
        switch attr {
        case "set_trial_status":
            guard let s = rest["status"] else { throw bad("status", "is missing for set_trial_status") }
            let status: Status
            do { status = try Status(trackJSON: s) } catch { throw bad("status", error.message) }
            return .setStatus(status, error: rest["error"].flatMap { $0.isNull ? nil : ($0.stringValue ?? JSON.encode($0)) })
        case "log_trial_metadata": return .logMetadata(rest)
        case "add_trial_tags": return .addTags(rest)
        case "log_trial_arguments": return .logArguments(rest)
        case "increment_trial_metadata":
            guard let key = rest["key"]?.stringValue, let by = rest["by"]?.intValue else { throw bad("key", "increment_trial_metadata needs a string key and an integer by") }
            return .incrementMetadata(key: key, by: by)
        default:
            throw bad("attr", "fetch_and_update_trial supports set_trial_status, log_trial_metadata, add_trial_tags and log_trial_arguments, not '\(attr)'")
        }
    }
}
