import Foundation
import Synchronization
import TrackBackends
import TrackModel

/// Who may read and change which project on a server.
public protocol AccessPolicy: Sendable {
    /// The projects `user` may use, or nil when the user may use every project.
    func projects(of user: String) -> Set<String>?
    /// True when `user` may use every project.
    func isUnrestricted(_ user: String) -> Bool
    /// True when `user` may read and change `project`.
    func may(_ user: String, use project: String) -> Bool
    /// Records `user` as the creator of the new project `project`. False when someone else
    /// created it first.
    func claim(project: String, for user: String) throws -> Bool
}

/// Everyone may use everything (a server started with --allow-anonymous).
public struct OpenAccess: AccessPolicy {
    /// The open policy.
    public init() {}
    public func projects(of user: String) -> Set<String>? { nil }
    public func isUnrestricted(_ user: String) -> Bool { true }
    public func may(_ user: String, use project: String) -> Bool { true }
    public func claim(project: String, for user: String) throws -> Bool { true }
}

/// A user may use the projects they created and the projects the users file grants them
/// (`*` grants all). Creators are kept in an owners file: one JSON line
/// `{"project": …, "owner": …}` per project, appended and synced when a project is first created
/// through the server (docs/FORMAT.md, "Server files").
public final class ProjectAccess: AccessPolicy, @unchecked Sendable {
    private let grants: [String: Set<String>]
    private let path: String?
    private let owners: Mutex<[String: String]>

    /// The policy of `users`, with creators kept in the file at `ownersPath` (in memory only when nil).
    public init(users: UserStore, ownersPath: String?) throws {
        self.grants = Dictionary(uniqueKeysWithValues: users.names.map { ($0, Set(users.grants(of: $0))) })
        self.path = ownersPath
        var owners: [String: String] = [:]
        if let ownersPath, var data = FileManager.default.contents(atPath: ownersPath) {
            // A torn last line (a crash while appending, before the claim was acknowledged) is cut off.
            if let last = data.last, last != UInt8(ascii: "\n") {
                let keep = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
                guard truncate(ownersPath, off_t(keep)) == 0 else {
                    throw ServerError("cannot cut the torn last line of the owners file '\(ownersPath)': \(String(cString: strerror(errno)))")
                }
                data = data.prefix(keep)
            }
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                guard let record = try? JSON.decode(String(line)), let project = record["project"]?.stringValue,
                      let owner = record["owner"]?.stringValue else {
                    throw ServerError("\(ownersPath) line \(number + 1) is not {\"project\": …, \"owner\": …}")
                }
                if owners[project] == nil { owners[project] = owner }
            }
        }
        self.owners = Mutex(owners)
    }

    public func isUnrestricted(_ user: String) -> Bool { grants[user]?.contains("*") ?? false }

    public func may(_ user: String, use project: String) -> Bool {
        if let granted = grants[user], granted.contains("*") || granted.contains(project) { return true }
        return owners.withLock { $0[project] == user }
    }

    public func projects(of user: String) -> Set<String>? {
        if isUnrestricted(user) { return nil }
        var set = grants[user] ?? []
        owners.withLock { for (project, owner) in $0 where owner == user { set.insert(project) } }
        return set
    }

    public func claim(project: String, for user: String) throws -> Bool {
        try owners.withLock { owners in
            if let owner = owners[project] { return owner == user }
            if let path {
                let line = JSON.encode(["project": .string(project), "owner": .string(user)]) + "\n"
                let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600)
                guard fd >= 0 else { throw ServerError("cannot open the owners file '\(path)': \(String(cString: strerror(errno)))") }
                defer { close(fd) }
                let bytes = Array(line.utf8)
                guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
                    throw ServerError("cannot append to the owners file '\(path)': \(String(cString: strerror(errno)))")
                }
            }
            owners[project] = user
            return true
        }
    }
}

/// The access checks of one request: which project an object belongs to, and whether the user
/// may use it.
struct AccessCheck: RequestAccess {
    let user: String
    let policy: any AccessPolicy
    let backend: any TrackProtocol
    let trialProjects: TrialProjectCache
    let unrestricted: Bool

    init(user: String, policy: any AccessPolicy, backend: any TrackProtocol, trialProjects: TrialProjectCache) {
        self.user = user
        self.policy = policy
        self.backend = backend
        self.trialProjects = trialProjects
        unrestricted = policy.isUnrestricted(user)
    }

    func denied(_ what: String) -> TrackError {
        TrackError(.permissionDenied, "user '\(user)' may not use \(what); a user uses the projects they create and those granted to them in the users file")
    }

    /// Throws unless the user may use `project` (objects without a project need access to all).
    func require(project: String?, _ what: @autoclosure () -> String) throws {
        guard !mayUse(project: project) else { return }
        throw denied(what())
    }

    func mayUse(project: String?) -> Bool {
        if unrestricted { return true }
        guard let project else { return false }
        return policy.may(user, use: project)
    }

    /// What a trial belongs to for access: its project, or (a trial without a project) itself.
    static func owner(of trial: Trial) -> String { trial.projectID ?? "\u{1}trial:\(trial.hash)" }

    /// `new_project`, and a group or trial naming a project: allowed for projects the user may
    /// use, and for projects that do not exist yet, which the user then owns. A trial without a
    /// project is owned by its creator the same way.
    func requireCreate(project: String, exists: () throws -> Bool, _ what: @autoclosure () -> String) throws {
        if mayUse(project: project) { return }
        if try !exists(), try policy.claim(project: project, for: user) { return }
        throw denied(what())
    }

    /// `requireCreate` for a project.
    func requireCreate(project: String) throws {
        try requireCreate(project: project, exists: { try backend.getProject(project) != nil }, "project '\(project)'")
    }

    /// `requireCreate` for what a new trial belongs to: its project, and the group it joins,
    /// which must be one the user may use (a trial cannot be slipped into another's group).
    func requireCreate(trial: Trial) throws {
        if let group = trial.groupID { try requireGroup(group) }
        if let project = trial.projectID { return try requireCreate(project: project) }
        try requireCreate(project: Self.owner(of: trial), exists: { try !backend.getTrial(hash: trial.hash).isEmpty }, "trial '\(trial.name ?? trial.hash)'")
    }

    /// True when the user may see `trial`.
    func mayUse(trial: Trial) -> Bool { mayUse(project: Self.owner(of: trial)) }

    /// Throws unless the user may use the group `uid` (a missing group is left to the backend).
    func requireGroup(_ uid: String) throws {
        guard !unrestricted, let group = try backend.getTrialGroup(uid) else { return }
        try require(project: group.projectID, "group '\(uid)'")
    }

    /// Throws unless the user may use the trial `uid` (a missing trial is left to the backend).
    func requireTrial(_ uid: String) throws {
        guard !unrestricted else { return }
        if let project = trialProjects.project(of: uid) { return try require(project: project, "trial '\(uid)'") }
        guard let trial = try backend.getTrial(uid: uid) else { return }
        trialProjects.remember(uid, Self.owner(of: trial))
        try require(project: Self.owner(of: trial), "trial '\(uid)'")
    }

    /// `query` narrowed to the projects the user may use.
    func narrow(_ query: Query) -> Query {
        guard !unrestricted, let allowed = policy.projects(of: user) else { return query }
        var q = query
        q.conditions.append(Query.Condition("project_id", .oneOf, .array(allowed.sorted().map { .string($0) })))
        return q
    }
}

/// Trial uid → project id, so logging a metric does not read the trial each time (a trial's
/// project never changes). Bounded: cleared when it grows past `limit`.
final class TrialProjectCache: @unchecked Sendable {
    private let map = Mutex<[String: String]>([:])
    private let limit = 1 << 18

    func project(of uid: String) -> String? {
        map.withLock { $0[uid] }
    }

    func remember(_ uid: String, _ project: String) {
        map.withLock {
            if $0.count >= limit { $0.removeAll(keepingCapacity: true) }
            $0[uid] = project
        }
    }
}
