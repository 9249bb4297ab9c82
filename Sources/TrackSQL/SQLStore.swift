import Foundation
import OrderedCollections
import PostgresNIO
import TrackBackends
import TrackLog
import TrackModel
import TrackStore

/// A transaction found its events already stored: the batch was applied before (a retry after
/// a lost reply, or another shipper of the same stream) and is not applied again.
struct AlreadyApplied: Error {}

/// The SQL store's changes, shared by the direct backend and the buffer shipper. Every change
/// runs in a transaction that loads the rows it touches (locked), applies `track`'s rules to them
/// through a `TrackState` holding just those objects (the rules and projection every backend
/// uses), writes back what changed, and stores its event: projections and events move together.
struct SQLStore {
    /// What a change reads (and locks) before applying its rule.
    struct Loads {
        var projects: [String] = []
        var groups: [String] = []
        var trials: [String] = []
        /// Every revision of these hashes (for `newTrial`).
        var hashes: [String] = []
        /// Whether the loaded trials need their metrics (a query on metrics).
        var metrics = false
        /// Whether projects and groups are loaded with all their trials (for a change that
        /// returns them); otherwise only with the loaded trials, so that adding a trial to a
        /// project costs the same however many it has.
        var wholeMemberLists = false
    }

    let connection: SQLConnection

    /// Loads the rows `loads` names (locked until the transaction ends), applies `body` to a
    /// database of just those objects and writes back what it created or changed. Returns
    /// `body`'s result and the records the change applied (none: nothing changed). Must run in
    /// `connection.transaction`.
    @discardableResult
    func change<T>(_ loads: Loads, strict: Bool, _ body: (TrackState) throws -> T) throws -> (result: T, records: [LogRecord]) {
        let projectUIDs = loads.projects.filter { !$0.isEmpty }
        let groupUIDs = loads.groups.filter { !$0.isEmpty }
        var trialRows: [(trial: Trial, chronoStarts: [String: Double])] = []
        if !loads.trials.isEmpty || !loads.hashes.isEmpty {
            var b = PostgresBindings(capacity: 2)
            b.append(loads.trials)
            b.append(loads.hashes)
            trialRows = try connection.loadTrials(where: "uid = ANY($1::TEXT[]) OR hash = ANY($2::TEXT[])", b, lock: true)
        }
        let members: SQLConnection.Members = loads.wholeMemberLists ? .all : .only(loads.trials + trialRows.map(\.trial.uid))
        let projects = projectUIDs.isEmpty ? [] : try connection.loadProjects(where: "uid = ANY($1::TEXT[])", binds(projectUIDs), lock: true, members: members)
        let groups = groupUIDs.isEmpty ? [] : try connection.loadGroups(where: "uid = ANY($1::TEXT[])", binds(groupUIDs), lock: true, members: members)
        var trials = trialRows.map(\.trial)
        if loads.metrics { trials = try connection.withMetrics(trials) }

        let db = TrackState(strict: strict, projects: projects, groups: groups, trials: trials)
        for row in trialRows { db.setRunningChronos(row.chronoStarts, for: row.trial.uid) }
        let result = try body(db)
        let records = db.applied
        guard !records.isEmpty else { return (result, []) }

        let projectsBefore = Dictionary(uniqueKeysWithValues: projects.map { ($0.uid, $0) })
        for project in db.projects {
            let uid = project.uid
            if let before = projectsBefore[uid] { if before != project { try connection.updateProject(project, before: before.trials) } }
            else { try connection.insertProject(project) }
        }
        let groupsBefore = Dictionary(uniqueKeysWithValues: groups.map { ($0.uid, $0) })
        for group in db.groups {
            let uid = group.uid
            if let before = groupsBefore[uid] { if before != group { try connection.updateGroup(group, before: before.trials) } }
            else { try connection.insertGroup(group) }
        }
        let trialsBefore = Dictionary(uniqueKeysWithValues: trialRows.map { ($0.trial.uid, $0) })
        for trial in db.trials {
            let uid = trial.uid
            let starts = db.runningChronos(uid)
            if let before = trialsBefore[uid] {
                var unchanged = trial
                unchanged.metrics = before.trial.metrics
                if unchanged != before.trial || starts != before.chronoStarts { try connection.updateTrial(trial, chronoStarts: starts) }
            } else {
                try connection.insertTrial(trial, chronoStarts: starts)
            }
        }
        return (result, records)
    }

    private func binds(_ uids: [String]) -> PostgresBindings {
        var b = PostgresBindings(capacity: 1)
        b.append(uids)
        return b
    }

    /// Stores `events`; throws `AlreadyApplied` when any of them was stored before (the
    /// transaction is then rolled back whole).
    func gate(_ events: [SQLEvent]) throws {
        guard !events.isEmpty else { return }
        if try connection.insertEvents(events) != events.count { throw AlreadyApplied() }
    }

    // MARK: - Applying recorded operations (shipping a local log)

    /// Applies one operation recorded in a local event log, leniently: a reference to a missing
    /// project or group is kept (as with strict=false) and an operation on an object the
    /// database lacks is skipped (reported through `skipped`), so that one bad event cannot stop
    /// shipping. Must run in `connection.transaction`.
    func apply(_ record: LogRecord, at now: Double, points: inout PointBatch, skipped: (String) -> Void) throws {
        do {
            try applyStrictly(record, at: now, points: &points)
        } catch let error as ModelError where error.code == .notFound {
            skipped("\(record.kindName): \(error.message)")
        }
    }

    private func applyStrictly(_ record: LogRecord, at now: Double, points: inout PointBatch) throws {
        switch record {
        case .projectCreated(let p):
            try change(Loads(projects: [p.uid]), strict: false) { db in _ = try db.newProject(p, now: now) }
        case .groupCreated(let g):
            try change(Loads(projects: [g.projectID], groups: [g.uid]), strict: false) { db in _ = try db.newTrialGroup(g, now: now) }
        case .trialCreated(let t, _):
            try change(Loads(projects: [t.projectID ?? ""], groups: [t.groupID ?? ""], trials: [t.uid]), strict: false) { db in
                _ = try db.newTrial(t, autoIncrement: false, now: now)
            }
        case .trialAddedToProject(let t, let p):
            try change(Loads(projects: [p], trials: [t]), strict: false) { db in try db.addProjectTrial(project: p, trial: t, now: now) }
        case .trialAddedToGroup(let t, let g):
            try change(Loads(groups: [g], trials: [t]), strict: false) { db in try db.addGroupTrial(group: g, trial: t, now: now) }
        case .trialStarted(let t), .trialFinished(let t), .chronoStarted(let t, _), .chronoFinished(let t, _),
             .argumentsLogged(let t, _), .metadataLogged(let t, _), .tagsAdded(let t, _):
            try change(Loads(trials: [t]), strict: false) { db in try db.changeTrial(record, now: now) }
        case .statusSet(let t, let status, let error):
            try change(Loads(trials: [t]), strict: false) { db in try db.setTrialStatus(t, status, error: error, now: now) }
        case .groupMetadataSet(let g, let values):
            try change(Loads(groups: [g]), strict: false) { db in try db.setGroupMetadata(g, values, now: now) }
        case .metricsLogged(let t, let step, let metrics):
            points.add(trial: t, step: step, metrics, at: now)
        case .projectImported(let p): try connection.replaceProject(p)
        case .groupImported(let g): try connection.replaceGroup(g)
        case .trialImported(let t): try connection.replaceTrial(t)
        case .lossAccepted: break  // a note of the event log's own maintenance: nothing to apply here
        }
    }
}

/// The body of a record's event in `track_events` (docs/FORMAT.md, "SQL schema").
func eventBody(_ record: LogRecord) -> String {
    let body: ValueObject
    switch record {
    case .projectCreated(let p), .projectImported(let p): body = ["project": p.trackJSON()]
    case .groupCreated(let g), .groupImported(let g): body = ["group": g.trackJSON]
    case .trialCreated(let t, let auto): body = ["trial": t.trackJSON, "auto_increment": .bool(auto)]
    case .trialImported(let t): body = ["trial": t.trackJSON]
    case .trialAddedToProject(let t, let p): body = ["trial": .string(t), "project": .string(p)]
    case .trialAddedToGroup(let t, let g): body = ["trial": .string(t), "group": .string(g)]
    case .trialStarted(let t), .trialFinished(let t): body = ["trial": .string(t)]
    case .chronoStarted(let t, let name), .chronoFinished(let t, let name): body = ["trial": .string(t), "name": .string(name)]
    case .argumentsLogged(let t, let v), .metadataLogged(let t, let v), .tagsAdded(let t, let v): body = ["trial": .string(t), "values": .object(v)]
    case .statusSet(let t, let status, let error):
        body = ["trial": .string(t), "status": status.trackJSON, "error": error.map(Value.string) ?? .null]
    case .groupMetadataSet(let g, let v): body = ["group": .string(g), "values": .object(v)]
    case .metricsLogged(let t, let step, let m): body = ["trial": .string(t), "step": step?.value ?? .null, "metrics": .object(m)]
    case .lossAccepted(let text): body = ["loss": .string(text)]
    }
    return JSON.encode(.object(body))
}
