import Foundation
import PostgresNIO
import TrackBackends
import TrackLog
import TrackModel
import TrackStore

/// The SQL backend (`cockroach://user:password@host:26257/database`, `postgres://...`): one
/// shared store for many machines, over the PostgreSQL wire protocol, so PostgreSQL and
/// CockroachDB both serve it.
///
/// - Each change (creations, status, metadata, ...) is one transaction: it stores the change's
///   event in `track_events` and updates the projection tables the queries read.
/// - Metric points are gathered and written in batches (one multi-row insert through `unnest`
///   arrays, plus one statement adding to the revision tags), flushed when `batch_points` points
///   are waiting, every `flush_ms` milliseconds, before any other operation and on `commit()`.
///   A batch is one event covering its sequence numbers: a batch retried after a lost reply is
///   refused by the events key and not written twice.
/// - If the database fails, the operation throws an `io` error naming it. A metric batch that
///   could not be written is kept and retried (nothing a call returned from is dropped), and
///   `commit()` throws until it is written.
/// - Queries translate the conditions that map onto columns into SQL and evaluate the whole
///   query in Swift on the rows read, so answers are those of the in-memory backend.
/// - URI options: `strict=false`, `sslmode=`, `sslrootcert=`, `sslcert=`, `sslkey=` (see `SQLLocation`), `batch_points=N` (default 10,000), `flush_ms=N`
///   (default 200), `buffer=PATH` (see `BufferedSQLBackend`).
public final class SQLBackend: DatabaseImporting, @unchecked Sendable {
    /// Whether references to missing projects and groups are refused.
    public let strict: Bool
    /// This writer's stream in `track_events`.
    public let stream: String
    let connection: SQLConnection
    private let store: SQLStore
    private let lock = NSLock()
    private var nextSeq: Int64 = 0
    private let batchPoints: Int
    /// Points gathered since the last flush, and batches that failed to be written (oldest first).
    private var gathering = PointBatch()
    private var gatheringSeqs: ClosedRange<Int64>?
    private var unwritten: [(batch: PointBatch, seqs: ClosedRange<Int64>)] = []
    private var knownTrials: Set<String> = []
    private var closed = false
    private let clock: @Sendable () -> Double

    /// Connects to the database at `location`, creating or migrating its schema.
    public init(location: SQLLocation, strict: Bool = true, batchPoints: Int = 10_000, flushMilliseconds: Int = 200,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        self.strict = strict
        self.batchPoints = max(1, batchPoints)
        self.clock = clock
        connection = try SQLConnection(location)
        store = SQLStore(connection: connection)
        stream = "sql-" + UUID().uuidString.lowercased()
        try SQLSchema.migrate(connection)
        if flushMilliseconds > 0 {
            let interval = Double(flushMilliseconds) / 1000
            let thread = Thread { [weak self] in
                // After a failure, wait longer before trying again (up to 10 s): connecting to an
                // unreachable host holds the lock for the connect timeout.
                var failures = 0
                while true {
                    Thread.sleep(forTimeInterval: failures == 0 ? interval : min(10, interval * Double(1 << min(failures, 10))))
                    guard let self, !self.isClosed else { return }
                    self.lock.lock()
                    do {
                        try self.flushLocked()
                        failures = 0
                    } catch {
                        failures += 1
                    }
                    self.lock.unlock()
                }
            }
            thread.name = "swift-track sql flusher"
            thread.start()
        }
    }

    /// A backend for a `cockroach://` or `postgres://` URI (without `buffer=`).
    public convenience init(uri: TrackURI) throws {
        try self.init(location: SQLLocation(uri: uri), strict: BackendOptions.strict(uri),
                      batchPoints: Self.intOption(uri, "batch_points", default: 10_000, range: 1...1_000_000),
                      flushMilliseconds: Self.intOption(uri, "flush_ms", default: 200, range: 0...3_600_000))
    }

    static func intOption(_ uri: TrackURI, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = uri.option(name) else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw TrackError(.invalidArgument, "option \(name)=\(text) in '\(uri)' must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    private var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    // MARK: - Plumbing

    private func failure(_ error: any Error) -> TrackError {
        switch error {
        case let e as TrackError: return e
        case let e as ModelError: return TrackError(e)
        case let e as SQLFailure where e.sqlState == "22021" && e.message.contains("0x00"):
            // Bodies and attrs hold NUL escaped or replaced; columns of names and ids cannot.
            return TrackError(.invalidArgument, "PostgreSQL cannot store the NUL character (U+0000) that a name, id or metric name contains (in \(connection.place))")
        case let e as SQLFailure:
            return TrackError(.io, "the SQL database \(connection.place) failed: \(e.message)\(e.sqlState.map { " (SQLSTATE \($0))" } ?? "")")
        default: return TrackError(.io, "the SQL database \(connection.place) failed: \(error)")
        }
    }

    /// Runs `body` holding the lock, after writing the gathered points (so that it sees them and
    /// events keep their order).
    private func locked<T>(_ body: () throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw TrackError(.io, "the SQL backend for \(connection.place) is closed") }
        do {
            try flushLocked()
            return try body()
        } catch {
            throw failure(error)
        }
    }

    /// A change: loads, applies `body`, writes back and stores the event of the record it
    /// applied (none: nothing changed, no event).
    ///
    /// A COMMIT whose reply is lost leaves no doubt behind: the change runs again (same time,
    /// same event key) and, if the first attempt had committed, its stored event refuses the
    /// second, which returns the first's result.
    private func mutate<T>(_ loads: SQLStore.Loads, _ body: (TrackState, Double) throws -> T) throws -> T {
        try locked {
            let now = clock()
            let seq = nextSeq
            nextSeq += 1
            var computed: (result: T, wroteEvent: Bool)?
            func attempt() throws -> T {
                try connection.transaction {
                    let (result, records) = try store.change(loads, strict: strict) { db in try body(db, now) }
                    // One operation applies at most one record: its event, keyed by this change's seq.
                    if let record = records.first { try store.gate([SQLEvent(stream: stream, seq: seq, kind: record.kindName, body: eventBody(record))]) }
                    computed = (result, !records.isEmpty)
                    return result
                }
            }
            do {
                return try attempt()
            } catch let lost as SQLFailure where lost.outcomeUnknown {
                guard let first = computed else { throw lost }
                // Without an event the change wrote nothing: committed or not, it is the same.
                guard first.wroteEvent else { return first.result }
                do {
                    if try connection.eventStored(stream: stream, seq: seq) { return first.result }
                    return try attempt()
                } catch is AlreadyApplied {
                    return first.result
                } catch let again as SQLFailure where again.sqlState == nil {
                    throw lost // the database is away: still unknown
                } catch {
                    // The first attempt may have committed while this one ran (its effects then
                    // make the change fail): its event says so.
                    if (try? connection.eventStored(stream: stream, seq: seq)) == true { return first.result }
                    throw error
                }
            }
        }
    }

    /// Writes the failed batches, then the gathered points. Must hold the lock.
    private func flushLocked() throws {
        if let seqs = gatheringSeqs {
            unwritten.append((gathering, seqs))
            gathering = PointBatch()
            gatheringSeqs = nil
        }
        while let (batch, seqs) = unwritten.first {
            do {
                try connection.transaction {
                    try store.gate([SQLEvent(stream: stream, seq: seqs.lowerBound, lastSeq: seqs.upperBound, kind: "metric_points",
                                             body: #"{"points": \#(batch.count)}"#)])
                    try connection.insertPoints(batch)
                }
            } catch is AlreadyApplied {
                // Written by an attempt whose reply was lost.
            }
            unwritten.removeFirst()
        }
    }

    /// Throws `itemNotFound` unless the trial exists (trials are never deleted: one check each).
    private func checkTrial(_ uid: String) throws {
        if knownTrials.contains(uid) { return }
        guard try !connection.loadTrialUIDs([uid]).isEmpty else {
            throw TrackError(.itemNotFound, "trial '\(uid)' does not exist")
        }
        knownTrials.insert(uid)
    }

    // MARK: - Reading

    /// The trials `query` selects, the first `limit` of them; with their metrics, unless
    /// `metrics` is false (they are read anyway when the query looks at them).
    private func trials(_ query: Query, limit: Int? = nil, metrics: Bool = true) throws -> [Trial] {
        try query.validate(for: Trial.self)
        let pushdown = SQLPushdown(query, columns: SQLPushdown.trialColumns, cockroach: connection.isCockroach)
        var rows = try connection.loadTrials(where: pushdown.condition, pushdown.binds).map(\.trial)
        let onMetrics = query.conditions.contains { $0.path[0] == "metrics" }
        if onMetrics { rows = try connection.withMetrics(rows) }
        var out: [Trial] = []
        for trial in rows where try query.matches(trial) {
            out.append(trial)
            if let limit, out.count >= limit { break }
        }
        return onMetrics || !metrics ? out : try connection.withMetrics(out)
    }

    /// The first trial `query` selects, without reading its metrics unless the query needs them:
    /// for choosing the trial a fetch-and-update changes.
    func firstTrial(_ query: Query) throws -> Trial? {
        try locked { try trials(query, limit: 1, metrics: false).first }
    }

    public func newProject(_ project: Project) throws -> Project {
        try mutate(SQLStore.Loads(projects: [project.uid], wholeMemberLists: true)) { db, now in try db.newProject(project, now: now) }
    }

    public func getProject(_ uid: String) throws -> Project? {
        try locked { try connection.loadProjects(where: "uid = $1", .one(uid)).first }
    }

    public func fetchProjects(_ query: Query) throws -> [Project] {
        try fetch(query, SQLPushdown.projectColumns) { try connection.loadProjects(where: $0, $1) }
    }

    /// The objects `query` selects: the rows its translated conditions select, filtered by the
    /// whole query.
    private func fetch<T: QueryTarget>(_ query: Query, _ columns: [String: SQLPushdown.Column],
                                       _ load: (String, PostgresBindings) throws -> [T]) throws -> [T] {
        try locked {
            try query.validate(for: T.self)
            let pushdown = SQLPushdown(query, columns: columns, cockroach: connection.isCockroach)
            return try load(pushdown.condition, pushdown.binds).filter { try query.matches($0) }
        }
    }

    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup {
        try mutate(SQLStore.Loads(projects: [group.projectID], groups: [group.uid], wholeMemberLists: true)) { db, now in
            try db.newTrialGroup(group, now: now)
        }
    }

    public func getTrialGroup(_ uid: String) throws -> TrialGroup? {
        try locked { try connection.loadGroups(where: "uid = $1", .one(uid)).first }
    }

    public func fetchGroups(_ query: Query) throws -> [TrialGroup] {
        try fetch(query, SQLPushdown.groupColumns) { try connection.loadGroups(where: $0, $1) }
    }

    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        try mutate(SQLStore.Loads(groups: [group])) { db, now in try db.setGroupMetadata(group, metadata, now: now) }
    }

    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        for _ in 0..<20 {
            guard let first = try fetchGroups(query).first else {
                throw TrackError(.itemNotFound, "no trial group matches the query \(query)")
            }
            // Applied to the group as it is once locked; if it no longer matches, look again.
            let updated: TrialGroup? = try mutate(SQLStore.Loads(projects: [first.projectID], groups: [first.uid], wholeMemberLists: true)) { db, now in
                guard let current = db.group(first.uid), try query.matches(current) else { return nil }
                return try db.fetchAndUpdateGroup(query, update, now: now)
            }
            if let updated { return updated }
        }
        throw TrackError(.concurrentWrite, "the group the query \(query) selects kept changing under concurrent writers; try again")
    }

    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        let loads = SQLStore.Loads(projects: [trial.projectID ?? ""], groups: [trial.groupID ?? ""], trials: [trial.uid], hashes: [trial.hash])
        let stored: Trial? = try mutate(loads) { db, now in try db.newTrial(trial, autoIncrement: autoIncrement, now: now) }
        if let stored { lock.withLock { _ = knownTrials.insert(stored.uid) } }
        return stored
    }

    public func getTrial(hash: String) throws -> [Trial] {
        try locked { try connection.withMetrics(connection.loadTrials(where: "hash = $1", .one(hash), order: "revision").map(\.trial)) }
    }

    public func fetchTrials(_ query: Query) throws -> [Trial] {
        try locked { try trials(query) }
    }

    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        let onMetrics = query.conditions.contains { $0.path[0] == "metrics" }
        for _ in 0..<20 {
            guard let first = try firstTrial(query) else {
                throw TrackError(.itemNotFound, "no trial matches the query \(query)")
            }
            let updated: Trial? = try mutate(SQLStore.Loads(trials: [first.uid], metrics: onMetrics)) { db, now in
                guard let current = db.trial(first.uid), try query.matches(current) else { return nil }
                return try db.fetchAndUpdateTrial(query, update, now: now)
            }
            if let updated { return try locked { try connection.withMetrics([updated])[0] } }
        }
        throw TrackError(.concurrentWrite, "the trial the query \(query) selects kept changing under concurrent writers; try again")
    }

    public func addProjectTrial(project: String, trial: String) throws {
        try mutate(SQLStore.Loads(projects: [project], trials: [trial])) { db, now in try db.addProjectTrial(project: project, trial: trial, now: now) }
    }

    public func addGroupTrial(group: String, trial: String) throws {
        try mutate(SQLStore.Loads(groups: [group], trials: [trial])) { db, now in try db.addGroupTrial(group: group, trial: trial, now: now) }
    }

    // MARK: - Logging

    /// A change to one trial, checked and applied by the store's rules.
    private func trialChange(_ record: LogRecord) throws {
        try mutate(SQLStore.Loads(trials: [record.trialUID ?? ""])) { db, now in try db.changeTrial(record, now: now) }
    }

    public func logTrialStart(_ trial: String) throws { try trialChange(.trialStarted(trial: trial)) }

    public func logTrialFinish(_ trial: String) throws { try trialChange(.trialFinished(trial: trial)) }

    public func logTrialChronoStart(_ trial: String, name: String) throws { try trialChange(.chronoStarted(trial: trial, name: name)) }

    public func logTrialChronoFinish(_ trial: String, name: String) throws { try trialChange(.chronoFinished(trial: trial, name: name)) }

    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws { try trialChange(.argumentsLogged(trial: trial, arguments)) }

    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws { try trialChange(.metadataLogged(trial: trial, metadata)) }

    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws { try trialChange(.tagsAdded(trial: trial, tags)) }

    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try mutate(SQLStore.Loads(trials: [trial])) { db, now in try db.setTrialStatus(trial, status, error: error, now: now) }
    }

    /// Gathers one logging call's points; writes the batch first when it is full (a failure then
    /// throws and this call's points are not taken).
    private func gather(_ trial: String, _ add: (inout PointBatch, Double) -> Void) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw TrackError(.io, "the SQL backend for \(connection.place) is closed") }
        do {
            try checkTrial(trial)
            // While the database is away, failed batches are kept (up to 8) and retried when
            // the next batch is full; past that every call retries and throws until it returns.
            if gathering.count >= batchPoints || unwritten.count >= 8 { try flushLocked() }
        } catch {
            throw failure(error)
        }
        let seq = nextSeq
        nextSeq += 1
        add(&gathering, clock())
        gatheringSeqs = (gatheringSeqs?.lowerBound ?? seq)...seq
    }

    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        try gather(trial) { batch, now in batch.add(trial: trial, step: step, metrics, at: now) }
    }

    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try gather(trial) { batch, now in
            batch.add(trial: trial, name: name, step: step, double: value, json: nil)
            batch.countCall(trial: trial, at: now)
        }
    }

    // MARK: - Import

    /// Brings a `track` FileProtocol database in, in one transaction, keeping uids, revisions,
    /// statuses, metrics (with and without steps), chronos and revision tags; refuses, writing
    /// nothing, when any of its projects, groups or trials already exists here. The import is
    /// one event (`database_imported`, with the counts).
    public func importDatabase(_ database: TrackFileDatabase, progress: (Int, Int) -> Void = { _, _ in }) throws {
        try locked {
            let seq = nextSeq
            nextSeq += 1
            try connection.transaction {
                func binds(_ uids: [String]) -> PostgresBindings {
                    var b = PostgresBindings(capacity: 1)
                    b.append(uids)
                    return b
                }
                var clashes: [String] = []
                clashes += try connection.loadProjects(where: "uid = ANY($1::TEXT[])", binds(database.projects.map(\.uid)), members: .only([])).map { "project \($0.uid)" }
                clashes += try connection.loadGroups(where: "uid = ANY($1::TEXT[])", binds(database.groups.map(\.uid)), members: .only([])).map { "group \($0.uid)" }
                clashes += try connection.loadTrialUIDs(database.trials.map(\.uid)).map { "trial \($0)" }
                guard clashes.isEmpty else {
                    throw TrackError(.invalidArgument, "the database already holds \(clashes.count) of the imported objects (\(clashes.prefix(3).joined(separator: ", "))\(clashes.count > 3 ? ", ..." : "")); import into a new database")
                }
                let total = database.projects.count + database.groups.count + database.trials.count
                var done = 0
                for project in database.projects { try connection.insertProject(project); done += 1; progress(done, total) }
                for group in database.groups { try connection.insertGroup(group); done += 1; progress(done, total) }
                var points = PointBatch()
                for trial in database.trials {
                    try connection.insertTrial(trial, chronoStarts: [:])
                    points.add(metricsOf: trial)
                    if points.count >= 50_000 {
                        try connection.insertPoints(points)
                        points = PointBatch()
                    }
                    done += 1
                    progress(done, total)
                }
                try connection.insertPoints(points)
                let counts = #"{"projects": \#(database.projects.count), "groups": \#(database.groups.count), "trials": \#(database.trials.count)}"#
                try store.gate([SQLEvent(stream: stream, seq: seq, kind: "database_imported", body: counts)])
            }
        }
    }

    // MARK: - Durability

    /// Writes every gathered point; returns once the database has committed them.
    public func commit() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        do { try flushLocked() } catch { throw failure(error) }
    }

    /// Writes every gathered point and disconnects. If they cannot be written the error is
    /// thrown and the backend stays open, so a later `commit()` or `close()` can still write them.
    public func close() throws {
        try commit()
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return }
        closed = true
        try? connection.close()
    }
}

extension PostgresBindings {
    /// Bindings holding one value.
    static func one(_ value: String) -> PostgresBindings {
        var b = PostgresBindings(capacity: 1)
        b.append(value)
        return b
    }
}

extension SQLConnection {
    /// Which of `uids` are trials in the database.
    func loadTrialUIDs(_ uids: [String]) throws -> [String] {
        var b = PostgresBindings(capacity: 1)
        b.append(uids)
        return try execute(PostgresQuery(unsafeSQL: "SELECT uid FROM track_trials WHERE uid = ANY($1::TEXT[])", binds: b)).map { try $0.decode(String.self) }
    }
}

/// Registers `cockroach://`, `postgres://` and `postgresql://` in the backend registry (call once
/// before `makeBackend(uri:)`; TrackBackends cannot depend on this module). With `?buffer=PATH`
/// the backend is a `BufferedSQLBackend`.
public func registerSQLBackend(in registry: BackendRegistry = .shared) {
    for scheme in ["cockroach", "postgres", "postgresql"] {
        registry.register(scheme: scheme) { uri in
            if uri.option("buffer") != nil { return try BufferedSQLBackend(uri: uri) }
            return try SQLBackend(uri: uri)
        }
    }
}
