import OrderedCollections
import PostgresNIO
import TrackBackends
import TrackModel

/// Reading and writing the projection tables (docs/FORMAT.md, "SQL schema"). Rows hold `track`'s
/// JSON of each object as text; a trial's metrics live in `track_points` and its revision tag is
/// `update_count + metric_updates`.
extension SQLConnection {
    // MARK: - Loading

    private static func lockClause(_ lock: Bool) -> String { lock ? " FOR UPDATE" : "" }

    /// Which of a project's or group's trials to read with it (`track_members`).
    enum Members {
        /// Every one, in the order they were added.
        case all
        /// Only these, where they are members: enough for a change that adds a trial, which then
        /// costs the same however large the project (an unloaded member is never re-added: its
        /// insert does nothing).
        case only([String])
    }

    /// The projects selected by `condition` (SQL over the table's columns), in creation order.
    func loadProjects(where condition: String, _ binds: PostgresBindings = PostgresBindings(), lock: Bool = false,
                      members: Members = .all) throws -> [Project] {
        try loadObjects("track_projects", condition, binds, lock: lock, count: \.updateCount,
                        members: ("project", \.trials, members)) { v throws(ModelError) in try Project(trackJSON: v) }
    }

    /// The groups selected by `condition`, in creation order.
    func loadGroups(where condition: String, _ binds: PostgresBindings = PostgresBindings(), lock: Bool = false,
                    members: Members = .all) throws -> [TrialGroup] {
        try loadObjects("track_groups", condition, binds, lock: lock, count: \.updateCount,
                        members: ("group", \.trials, members)) { v throws(ModelError) in try TrialGroup(trackJSON: v) }
    }

    /// The trial lists of the `kind` ("project" or "group") objects `owners`, in member order.
    private func loadMembers(_ kind: String, _ owners: [String], _ members: Members) throws -> [String: [String]] {
        if owners.isEmpty { return [:] }
        var binds = PostgresBindings(capacity: 3)
        binds.append(kind)
        binds.append(owners)
        var sql = "SELECT owner, trial FROM track_members WHERE owner_kind = $1 AND owner = ANY($2::TEXT[])"
        if case .only(let trials) = members {
            if trials.isEmpty { return [:] }
            binds.append(trials)
            sql += " AND trial = ANY($3::TEXT[])"
        }
        var lists: [String: [String]] = [:]
        for row in try execute(PostgresQuery(unsafeSQL: sql + " ORDER BY owner, pos", binds: binds)) {
            let (owner, trial) = try row.decode((String, String).self)
            lists[owner, default: []].append(trial)
        }
        return lists
    }

    /// Appends `trials` to the member list of `owner` (a trial already there stays where it is).
    func addMembers(_ kind: String, _ owner: String, _ trials: [String]) throws {
        if trials.isEmpty { return }
        var binds = PostgresBindings(capacity: 3)
        binds.append(kind)
        binds.append(owner)
        binds.append(trials)
        try execute(PostgresQuery(unsafeSQL: """
            INSERT INTO track_members (owner_kind, owner, trial, pos)
            SELECT $1, $2, t, (SELECT coalesce(max(pos), -1) FROM track_members WHERE owner_kind = $1 AND owner = $2) + o
            FROM unnest($3::TEXT[]) WITH ORDINALITY AS x(t, o)
            ON CONFLICT (owner_kind, owner, trial) DO NOTHING
            """, binds: binds))
    }

    /// Rows of `table` with their update counts, and their trial lists from `track_members`.
    private func loadObjects<T>(_ table: String, _ condition: String, _ binds: PostgresBindings, lock: Bool, count: WritableKeyPath<T, Int>,
                                members: (kind: String, trials: WritableKeyPath<T, [String]>, which: Members),
                                _ make: (Value) throws(ModelError) -> T) throws -> [T] {
        let sql = "SELECT uid, update_count, body FROM \(table) WHERE \(condition) ORDER BY ord" + Self.lockClause(lock)
        var uids: [String] = []
        var objects = try execute(PostgresQuery(unsafeSQL: sql, binds: binds)).map { row in
            let (uid, updates, body) = try row.decode((String, Int64, String).self)
            var object = try Self.decodeBody(body, table: table, uid: uid, make)
            object[keyPath: count] = Int(updates)
            uids.append(uid)
            return object
        }
        let lists = try loadMembers(members.kind, uids, members.which)
        for i in objects.indices { objects[i][keyPath: members.trials] = lists[uids[i]] ?? [] }
        return objects
    }

    /// The trials selected by `condition` (without metrics), in creation order, with the start
    /// times of their running chronos.
    func loadTrials(where condition: String, _ binds: PostgresBindings = PostgresBindings(), lock: Bool = false,
                    order: String = "ord") throws -> [(trial: Trial, chronoStarts: [String: Double])] {
        let sql = "SELECT uid, update_count + metric_updates, last_change, chrono_starts, body FROM track_trials WHERE \(condition) ORDER BY \(order)"
            + Self.lockClause(lock)
        return try execute(PostgresQuery(unsafeSQL: sql, binds: binds)).map { row in
            let (uid, count, lastChange, starts, body) = try row.decode((String, Int64, Double?, String, String).self)
            var trial = try Self.decodeBody(body, table: "track_trials", uid: uid) { v throws(ModelError) in try Trial(trackJSON: v) }
            trial.updateCount = Int(count)
            trial.lastChange = lastChange
            var chronoStarts: [String: Double] = [:]
            for (name, value) in try JSON.decode(starts).objectValue ?? [:] { chronoStarts[name] = value.doubleValue }
            return (trial, chronoStarts)
        }
    }

    private static func decodeBody<T>(_ text: String, table: String, uid: String, _ make: (Value) throws(ModelError) -> T) throws -> T {
        do {
            return try make(try JSON.decode(text))
        } catch {
            throw TrackError(.io, "the row '\(uid)' of \(table) holds a malformed object: \(error.message)")
        }
    }

    /// The metric series of each trial in `uids`, points in logging order.
    func loadMetrics(_ uids: [String]) throws -> [String: OrderedDictionary<String, MetricSeries>] {
        if uids.isEmpty { return [:] }
        var binds = PostgresBindings(capacity: 1)
        binds.append(uids)
        let rows = try execute(PostgresQuery(unsafeSQL: "SELECT trial, name, step, value, value_json, step_json FROM track_points WHERE trial = ANY($1::TEXT[]) ORDER BY trial, ord", binds: binds))
        var out: [String: OrderedDictionary<String, MetricSeries>] = [:]
        var currentUID = ""
        var current: OrderedDictionary<String, MetricSeries> = [:]
        for row in rows {
            let (trial, name, intStep, value, json, stepJSON) = try row.decode((String, String, Int64?, Double?, String?, String?).self)
            var step = intStep.map(MetricStep.int)
            if let stepJSON {
                guard let parsed = (try? JSON.decode(stepJSON)).flatMap(MetricStep.init) else {
                    throw TrackError(.io, "a metric point of trial '\(trial)' ('\(name)') holds a malformed step: \(stepJSON.prefix(40))")
                }
                step = parsed
            }
            if trial != currentUID {
                if !currentUID.isEmpty { out[currentUID] = current }
                currentUID = trial
                current = out[trial] ?? [:]
            }
            let point: Value
            if let json {
                do { point = try JSON.decode(json) } catch {
                    throw TrackError(.io, "a metric point of trial '\(trial)' ('\(name)') holds malformed JSON: \(error.message)")
                }
            } else {
                point = .double(value ?? .nan)
            }
            current[name, default: MetricSeries()].record(step: step, value: point)
        }
        if !currentUID.isEmpty { out[currentUID] = current }
        return out
    }

    /// `trials` with their metrics filled in.
    func withMetrics(_ trials: [Trial]) throws -> [Trial] {
        let metrics = try loadMetrics(trials.map(\.uid))
        return trials.map { trial in
            var t = trial
            t.metrics = metrics[trial.uid] ?? [:]
            return t
        }
    }

    // MARK: - Saving

    /// Inserts a new project row (a concurrent insert of the same uid fails with 23505, and the
    /// transaction is run again).
    /// Bodies leave the trial list out: it is in `track_members`.
    private static func body(_ p: Project) -> String {
        var p = p
        p.trials = []
        return JSON.encode(p.trackJSON())
    }

    private static func body(_ g: TrialGroup) -> String {
        var g = g
        g.trials = []
        return JSON.encode(g.trackJSON)
    }

    func insertProject(_ p: Project) throws {
        try execute("""
            INSERT INTO track_projects (uid, update_count, attrs, body)
            VALUES (\(p.uid), \(Int64(p.updateCount)), \(Self.attrs(["metadata": .object(p.metadata)]))::JSONB, \(Self.body(p)))
            """)
        try addMembers("project", p.uid, p.trials)
    }

    /// Saves `p`, whose trial list was loaded as `before` (whole or in part): trials not in it
    /// are appended to the member list.
    func updateProject(_ p: Project, before: [String]) throws {
        try updateListOwner("track_projects", "project", uid: p.uid, updateCount: p.updateCount, metadata: p.metadata, body: Self.body(p),
                            trials: p.trials, before: before)
    }

    func insertGroup(_ g: TrialGroup) throws {
        try execute("""
            INSERT INTO track_groups (uid, name, project_id, update_count, attrs, body)
            VALUES (\(g.uid), \(g.name), \(g.projectID), \(Int64(g.updateCount)), \(Self.attrs(["metadata": .object(g.metadata)]))::JSONB, \(Self.body(g)))
            """)
        try addMembers("group", g.uid, g.trials)
    }

    /// Saves `g`, whose trial list was loaded as `before` (as `updateProject`).
    func updateGroup(_ g: TrialGroup, before: [String]) throws {
        try updateListOwner("track_groups", "group", uid: g.uid, updateCount: g.updateCount, metadata: g.metadata, body: Self.body(g),
                            trials: g.trials, before: before)
    }

    /// Rewrites a project's or group's row and appends the trials not in `before` to its members.
    private func updateListOwner(_ table: String, _ kind: String, uid: String, updateCount: Int, metadata: ValueObject, body: String,
                                 trials: [String], before: [String]) throws {
        var binds = PostgresBindings(capacity: 4)
        binds.append(Int64(updateCount))
        binds.append(Self.attrs(["metadata": .object(metadata)]))
        binds.append(body)
        binds.append(uid)
        try execute(PostgresQuery(unsafeSQL: "UPDATE \(table) SET update_count = $1, attrs = $2::JSONB, body = $3 WHERE uid = $4", binds: binds))
        let known = Set(before)
        try addMembers(kind, uid, trials.filter { !known.contains($0) })
    }

    /// Writes an imported project, group or trial over any row of the same uid: its member rows,
    /// or its points, are replaced too.
    func replaceProject(_ p: Project) throws {
        try execute("DELETE FROM track_members WHERE owner_kind = 'project' AND owner = \(p.uid)")
        try execute("DELETE FROM track_projects WHERE uid = \(p.uid)")
        try insertProject(p)
    }

    func replaceGroup(_ g: TrialGroup) throws {
        try execute("DELETE FROM track_members WHERE owner_kind = 'group' AND owner = \(g.uid)")
        try execute("DELETE FROM track_groups WHERE uid = \(g.uid)")
        try insertGroup(g)
    }

    func replaceTrial(_ t: Trial) throws {
        try execute("DELETE FROM track_trials WHERE uid = \(t.uid)")
        try execute("DELETE FROM track_points WHERE trial = \(t.uid)")
        try insertTrial(t, chronoStarts: [:])
        var points = PointBatch()
        points.add(metricsOf: t)
        try insertPoints(points)
    }

    /// The `attrs` column: the objects queries look into, as JSON that JSONB accepts. NaN
    /// becomes null and ±Infinity the largest finite double of its sign, which orders the same
    /// against finite operands; a NUL character (JSONB refuses it) becomes U+FFFD. Pushed-down
    /// conditions are rechecked in Swift on the real values.
    static func attrs(_ objects: ValueObject) -> String {
        func clean(_ s: String) -> String {
            guard s.unicodeScalars.contains("\u{0}") else { return s }
            var out = String.UnicodeScalarView()
            for scalar in s.unicodeScalars { out.append(scalar == "\u{0}" ? "\u{FFFD}" : scalar) }
            return String(out)
        }
        func finite(_ v: Value) -> Value {
            switch v {
            case .double(let d) where d.isNaN: return .null
            case .double(let d) where d.isInfinite: return .double(d > 0 ? .greatestFiniteMagnitude : -.greatestFiniteMagnitude)
            case .string(let s): return .string(clean(s))
            case .array(let items): return .array(items.map(finite))
            case .object(let fields):
                var out = ValueObject()
                for (k, x) in fields { out[clean(k)] = finite(x) }
                return .object(out)
            default: return v
            }
        }
        return JSON.encode(finite(.object(objects)))
    }

    private static func trialAttrs(_ t: Trial) -> String {
        attrs(["metadata": .object(t.metadata), "parameters": .object(t.parameters), "tags": .object(t.tags)])
    }

    /// The trial's row body: its JSON without metrics and without the revision bookkeeping
    /// (those live in columns).
    private static func trialBody(_ trial: Trial) -> String {
        var t = trial
        t.metrics = [:]
        t.updateCount = 0
        t.lastChange = nil
        return JSON.encode(t.trackJSON)
    }

    private static func startsJSON(_ starts: [String: Double]) -> String {
        var o = ValueObject()
        for (k, v) in starts.sorted(by: { $0.key < $1.key }) { o[k] = .double(v) }
        return JSON.encode(.object(o))
    }

    func insertTrial(_ t: Trial, chronoStarts: [String: Double]) throws {
        try execute("""
            INSERT INTO track_trials (uid, hash, revision, name, project_id, group_id, status_name, status_value, update_count, last_change, chrono_starts, attrs, body)
            VALUES (\(t.uid), \(t.hash), \(Int64(t.revision)), \(t.name), \(t.projectID), \(t.groupID), \(t.status.name), \(Int64(t.status.value)),
                    \(Int64(t.updateCount)), \(t.lastChange), \(Self.startsJSON(chronoStarts)), \(Self.trialAttrs(t))::JSONB, \(Self.trialBody(t)))
            """)
    }

    /// Rewrites a trial's row; `updateCount` is the whole revision tag (the row's share is what
    /// metric batches have not added). The row must be locked by the transaction.
    func updateTrial(_ t: Trial, chronoStarts: [String: Double]) throws {
        try execute("""
            UPDATE track_trials SET name = \(t.name), project_id = \(t.projectID), group_id = \(t.groupID),
                status_name = \(t.status.name), status_value = \(Int64(t.status.value)),
                update_count = \(Int64(t.updateCount)) - metric_updates,
                last_change = GREATEST(coalesce(last_change, 0), \(t.lastChange ?? 0)),
                chrono_starts = \(Self.startsJSON(chronoStarts)), attrs = \(Self.trialAttrs(t))::JSONB, body = \(Self.trialBody(t))
            WHERE uid = \(t.uid)
            """)
    }

    // MARK: - Metric points

    /// Appends a batch of points and adds each trial's logging calls to its revision tag.
    func insertPoints(_ batch: PointBatch) throws {
        guard !batch.isEmpty else { return }
        var binds = PostgresBindings(capacity: 6)
        binds.append(batch.trials)
        binds.append(batch.names)
        binds.append(batch.steps)
        binds.append(batch.values)
        if batch.hasJSON || batch.hasStepJSON {
            binds.append(batch.hasJSON ? batch.json : Array(repeating: "", count: batch.count))
            binds.append(batch.hasStepJSON ? batch.stepJSON : Array(repeating: "", count: batch.count))
            try execute(PostgresQuery(unsafeSQL: """
                INSERT INTO track_points (trial, name, step, value, value_json, step_json)
                SELECT t, n, NULLIF(s, \(PointBatch.noStep)), CASE WHEN j = '' THEN v END, NULLIF(j, ''), NULLIF(sj, '')
                FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::FLOAT8[], $5::TEXT[], $6::TEXT[]) WITH ORDINALITY AS p(t, n, s, v, j, sj, i) ORDER BY i
                """, binds: binds))
        } else {
            try execute(PostgresQuery(unsafeSQL: """
                INSERT INTO track_points (trial, name, step, value)
                SELECT t, n, NULLIF(s, \(PointBatch.noStep)), v
                FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::FLOAT8[]) WITH ORDINALITY AS p(t, n, s, v, i) ORDER BY i
                """, binds: binds))
        }
        var counts = PostgresBindings(capacity: 3)
        let calls = batch.calls.sorted { $0.key < $1.key }
        counts.append(calls.map(\.key))
        counts.append(calls.map { Int64($0.value.calls) })
        counts.append(calls.map(\.value.lastChange))
        try execute(PostgresQuery(unsafeSQL: """
            UPDATE track_trials AS t SET metric_updates = t.metric_updates + c.n, last_change = GREATEST(coalesce(t.last_change, 0), c.at)
            FROM unnest($1::TEXT[], $2::BIGINT[], $3::FLOAT8[]) AS c(uid, n, at) WHERE t.uid = c.uid
            """, binds: counts))
    }
}

/// Metric points gathered for one multi-row insert, in logging order.
struct PointBatch: Sendable {
    /// The step column's stand-in for "no step" (arrays cannot carry nulls here).
    static let noStep = Int64.min
    var trials: [String] = []
    var names: [String] = []
    var steps: [Int64] = []
    var values: [Double] = []
    /// JSON text of values that are not doubles; "" for doubles.
    var json: [String] = []
    var hasJSON = false
    /// JSON text of steps that are not integers (their `steps` entry is `noStep`); "" for others.
    var stepJSON: [String] = []
    var hasStepJSON = false
    /// Per trial: logging calls (each adds one to the revision tag) and the time of the last.
    var calls: [String: (calls: Int, lastChange: Double)] = [:]

    var count: Int { trials.count }
    var isEmpty: Bool { trials.isEmpty }

    /// Adds the points of one logging call.
    mutating func add(trial: String, step: MetricStep?, _ metrics: ValueObject, at time: Double) {
        for (name, value) in metrics { add(trial: trial, name: name, step: step, value: value) }
        countCall(trial: trial, at: time)
    }

    /// Adds one point of any value: a double in `values`, anything else as JSON text.
    mutating func add(trial: String, name: String, step: MetricStep?, value: Value) {
        let intStep = step?.intValue
        if case .double(let d) = value { add(trial: trial, name: name, step: intStep, double: d, json: nil) }
        else { add(trial: trial, name: name, step: intStep, double: 0, json: JSON.encode(value)) }
        if let step, intStep == nil {
            if !hasStepJSON { stepJSON = Array(repeating: "", count: trials.count); hasStepJSON = true }
            stepJSON[trials.count - 1] = JSON.encode(step.value)
        }
    }

    /// Adds every point of `trial`'s metrics, series by series in order (an imported trial's).
    mutating func add(metricsOf trial: Trial) {
        for (name, series) in trial.metrics {
            for point in series.points { add(trial: trial.uid, name: name, step: point.step, value: point.value) }
        }
    }

    /// Adds one point (not counted as a call: see `countCall`).
    mutating func add(trial: String, name: String, step: Int64?, double: Double, json: String?) {
        if hasStepJSON { stepJSON.append("") }
        trials.append(trial)
        names.append(name)
        steps.append(step ?? Self.noStep)
        values.append(double)
        if let json {
            if !hasJSON { self.json = Array(repeating: "", count: trials.count - 1); hasJSON = true }
            self.json.append(json)
        } else if hasJSON {
            self.json.append("")
        }
    }

    /// Counts one logging call of `trial` at `time`.
    mutating func countCall(trial: String, at time: Double) {
        let previous = calls[trial] ?? (0, 0)
        calls[trial] = (previous.calls + 1, Swift.max(previous.lastChange, time))
    }
}
