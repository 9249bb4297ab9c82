#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import TrackLog
import TrackStore
import TrackModel

/// The default backend (`file://path/to/db`, or a bare path): every operation becomes an event
/// appended to this process's own stream of the event log; reads replay the log (this process's
/// events and every other writer's) into a `Projection`, catching up incrementally.
///
/// - Metric logging appends to the stream and takes no lock shared with other processes.
/// - Creations, `setTrialStatus`, `fetchAndUpdateTrial`, `fetchAndUpdateGroup` and
///   `newTrial(autoIncrement:)` take the short database-wide lock `ATOMIC.lock`, catch up, check,
///   append, fsync and release, so that concurrent processes see each other's result. A lock held
///   by a process that died is released by the kernel with the process.
/// - URI options: `strict=false` (allow orphans), `durability=buffered|groupCommit|sync`,
///   `segment_bytes=N` (segment size).
public final class EventLogBackend: DatabaseImporting, @unchecked Sendable {
    /// The database directory.
    public let path: String
    /// Whether references to missing projects and groups are refused.
    public let strict: Bool
    /// The writer of this process's stream.
    let writer: LogWriter
    private let materializer: Materializer
    private let atomicLock: LogFile
    private let lock = Condition()
    private var knownTrials: Set<String> = []
    /// The trial checked last: a training loop logs to the same trial call after call, and
    /// comparing a string with itself is one word, where a set lookup hashes all of it.
    private var lastKnownTrial = ""

    /// Opens (creating if needed) the event-log database at `path`; removes what an interrupted
    /// compaction left behind.
    public init(path: String, strict: Bool = true, durability: Durability = .buffered, segmentBytes: Int64? = nil,
                reporter: LogReporter? = nil) throws {
        self.path = path
        self.strict = strict
        var options = WriterOptions()
        options.durability = durability
        if let segmentBytes { options.segmentBytes = segmentBytes }
        options.reporter = reporter ?? EventLogBackend.loggingReporter(Logger(label: "swift-track"))
        do {
            writer = try LogWriter.open(database: path, records: .track, options: options)
            try Compactor.removeStrayFiles(database: path)
            materializer = try Materializer(database: path, reporter: options.reporter)
            atomicLock = try LogFile.open(DatabaseLayout(root: path).atomicLockPath, flags: O_RDWR | O_CREAT)
            try materializer.smartReload()
        } catch {
            let wrapped = TrackError.wrap(error)
            throw TrackError(wrapped.code, "cannot open the database at '\(path)': \(wrapped.message)", cause: wrapped.cause)
        }
    }

    /// A reporter that sends the event log's notices to `logger`: damage at error level; a
    /// stream taken over at debug level (every reopen of a database continues a stream its last
    /// writer closed: routine, not news); the rest (a torn tail cut, an index rebuilt, a
    /// generation fallback) at notice level, each with its file and offset as metadata.
    public static func loggingReporter(_ logger: Logger) -> LogReporter {
        { notice in
            var metadata: Logger.Metadata = ["kind": .string(notice.kind.rawValue), "path": .string(notice.path)]
            if let offset = notice.offset { metadata["offset"] = .string(String(offset)) }
            logger.log(level: level(of: notice.kind), "\(notice.message)", metadata: metadata)
        }
    }

    /// The level `loggingReporter` logs a notice of `kind` at.
    static func level(of kind: LogNotice.Kind) -> Logger.Level {
        switch kind {
        case .damage: return .error
        case .streamTakenOver: return .debug
        default: return .notice
        }
    }

    /// Opens the database a `file:` URI names (`file://runs/db?strict=false&durability=sync`).
    public convenience init(uri: TrackURI) throws {
        let path = uri.filePath
        guard !path.isEmpty else {
            throw TrackError(.invalidArgument, "the URI '\(uri)' names no database path; write it as file://path/to/db")
        }
        var durability = Durability.buffered
        if let text = uri.option("durability") {
            guard let d = Durability(rawValue: text) else {
                throw TrackError(.invalidArgument, "option durability=\(text) in '\(uri)' is not one of \(Durability.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            durability = d
        }
        var segmentBytes: Int64?
        if let text = uri.option("segment_bytes") {
            guard let n = Int64(text), n >= Limits.segmentBytesMin, n <= Limits.segmentBytesMax else {
                throw TrackError(.invalidArgument, "option segment_bytes=\(text) in '\(uri)' must be a number of bytes from \(Limits.segmentBytesMin) to \(Limits.segmentBytesMax)")
            }
            segmentBytes = n
        }
        try self.init(path: path, strict: try BackendOptions.strict(uri), durability: durability, segmentBytes: segmentBytes)
    }

    // MARK: - Plumbing

    private func logError(_ error: any Error) -> TrackError { TrackError.wrap(error) }

    /// Every damage notice met while reading this database (damaged frames skipped, gaps in a
    /// stream's sequences, durable bytes that do not read back), oldest first, each with its file
    /// and offset. Also sent to the reporter (by default a swift-log logger, label `swift-track`).
    public var damage: [LogNotice] {
        lock.lock()
        defer { lock.unlock() }
        return materializer.damage
    }

    /// Runs `body` with the projection current: this process's appends written out, every
    /// stream's new frames applied (`full: false`: other processes' metric points left for later,
    /// for answers that do not show metrics).
    private func reading<T>(full: Bool = true, _ body: (Projection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            try catchUp(full: full)
            return try body(materializer.projection)
        } catch {
            throw logError(error)
        }
    }

    /// Brings the projection up to date. `full: false` leaves frames of metric points for later:
    /// enough to know which projects, groups and trials exist and their other fields.
    private func catchUp(full: Bool = true) throws {
        try writer.flush()
        try materializer.smartReload(deferringPoints: !full)
        for change in materializer.projection.takeChanges() where change.kind == .trial { knownTrials.insert(change.uid) }
        // What this process has seen happened before what it writes next.
        writer.observe(materializer.projection.maxHLC)
    }

    /// Runs `body` holding the database-wide lock, with the projection current; commits what it
    /// appended before releasing the lock. `full: false` when `body` does not look at metrics or
    /// revision tags (creations): other processes' metric points are then read later.
    private func atomically<T>(full: Bool = true, _ body: (Projection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            try atomicLock.lockExclusive()
            defer { atomicLock.unlock() }
            try catchUp(full: full)
            let result = try body(materializer.projection)
            try writer.commit()
            try catchUp(full: full)
            return result
        } catch {
            throw logError(error)
        }
    }

    private func requireTrial(_ uid: String) throws {
        lock.lock()
        defer { lock.unlock() }
        if uid == lastKnownTrial { return }
        if knownTrials.contains(uid) { lastKnownTrial = uid; return }
        do { try catchUp(full: false) } catch { throw logError(error) }
        if materializer.projection.hasTrial(uid) {
            knownTrials.insert(uid)
            return
        }
        throw TrackError(.itemNotFound, "trial '\(uid)' does not exist")
    }

    private func append(_ record: LogRecord) throws {
        do { try writer.append(record) } catch { throw logError(error) }
    }

    /// Appends a change to one trial after `Rules.trialChange` has checked it (the trial found
    /// through `requireTrial`'s cache).
    private func appendTrialChange(_ record: LogRecord) throws {
        try requireTrial(record.trialUID ?? "")
        try append(try rule { () throws(ModelError) in try Rules.trialChange(record, trialExists: true) })
    }

    /// Runs a rule, giving its error the backend's form.
    private func rule<T>(_ body: () throws(ModelError) -> T) throws -> T {
        do { return try body() } catch { throw TrackError(error) }
    }

    // MARK: - Projects

    public func newProject(_ project: Project) throws -> Project {
        try atomically(full: false) { p in
            if let record = try rule({ () throws(ModelError) in try Rules.newProject(project, in: p) }) { try append(record) }
        }
        guard let stored = try reading(full: false, { $0.project(project.uid) }) else {
            throw TrackError(.io, "project \(project.uid) was written but cannot be read back")
        }
        return stored
    }

    public func getProject(_ uid: String) throws -> Project? { try reading { $0.project(uid) } }

    public func fetchProjects(_ query: Query) throws -> [Project] {
        try reading { p in
            try query.validate(for: Project.self)
            return try p.allProjects.filter { try query.matches($0) }
        }
    }

    // MARK: - Groups

    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup {
        let uid = try atomically(full: false) { p -> String in
            if let record = try rule({ () throws(ModelError) in try Rules.newTrialGroup(group, strict: strict, in: p) }) { try append(record) }
            return group.uid
        }
        guard let stored = try reading(full: false, { $0.group(uid) }) else { throw TrackError(.io, "group \(uid) was written but cannot be read back") }
        return stored
    }

    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try reading { $0.group(uid) } }

    public func fetchGroups(_ query: Query) throws -> [TrialGroup] {
        try reading { p in
            try query.validate(for: TrialGroup.self)
            return try p.allGroups.filter { try query.matches($0) }
        }
    }

    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        let record = try reading(full: false) { p in try rule { () throws(ModelError) in try Rules.setGroupMetadata(group, metadata, in: p) } }
        try append(record)
    }

    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        let uid = try atomically { p -> String in
            let (uid, record) = try rule { () throws(ModelError) in try Rules.fetchAndUpdateGroup(query, update, in: p) }
            try append(record)
            return uid
        }
        guard let group = try getTrialGroup(uid) else { throw TrackError(.itemNotFound, "group \(uid) vanished") }
        return group
    }

    // MARK: - Trials

    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        let uid = try atomically(full: false) { p -> String? in
            guard let record = try rule({ () throws(ModelError) in try Rules.newTrial(trial, autoIncrement: autoIncrement, strict: strict, in: p) }) else { return nil }
            try append(record)
            return record.trialUID
        }
        guard let uid else { return nil }
        // Just created: other processes' points for it, if any, are not needed to answer.
        return try reading(full: false) { $0.trial(uid) }
    }

    public func getTrial(hash: String) throws -> [Trial] { try reading { $0.trials(hash: hash) } }

    public func metricPoints(trial: String, name: String) throws -> (steps: [Int64], values: [Double]) {
        try reading { p in
            guard p.hasTrial(trial) else { throw TrackError(.itemNotFound, "trial '\(trial)' does not exist") }
            return p.columns(trial: trial, metric: name)?.pythonPoints ?? ([], [])
        }
    }

    public func fetchTrials(_ query: Query) throws -> [Trial] {
        try reading { p in
            try query.validate(for: Trial.self)
            return try p.allTrials.filter { try query.matches($0) }
        }
    }

    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        let uid = try atomically { p -> String in
            let (uid, record) = try rule { () throws(ModelError) in try Rules.fetchAndUpdateTrial(query, update, in: p) }
            try append(record)
            return uid
        }
        guard let trial = try reading({ $0.trial(uid) }) else { throw TrackError(.itemNotFound, "trial \(uid) vanished") }
        return trial
    }

    public func addProjectTrial(project: String, trial: String) throws {
        try requireTrial(trial)
        let record = try reading(full: false) { p in
            try rule { () throws(ModelError) in try Rules.addProjectTrial(project: project, trial: trial, trialExists: true, strict: strict, in: p) }
        }
        try append(record)
    }

    public func addGroupTrial(group: String, trial: String) throws {
        try requireTrial(trial)
        let record = try reading(full: false) { p in
            try rule { () throws(ModelError) in try Rules.addGroupTrial(group: group, trial: trial, trialExists: true, strict: strict, in: p) }
        }
        try append(record)
    }

    // MARK: - Logging

    public func logTrialStart(_ trial: String) throws {
        try appendTrialChange(.trialStarted(trial: trial))
    }

    public func logTrialFinish(_ trial: String) throws {
        try appendTrialChange(.trialFinished(trial: trial))
        try commit()
    }

    public func logTrialChronoStart(_ trial: String, name: String) throws {
        try appendTrialChange(.chronoStarted(trial: trial, name: name))
    }

    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        try appendTrialChange(.chronoFinished(trial: trial, name: name))
    }

    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        try appendTrialChange(.argumentsLogged(trial: trial, arguments))
    }

    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try appendTrialChange(.metadataLogged(trial: trial, metadata))
    }

    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        try requireTrial(trial)
        guard !metrics.isEmpty else { return }
        do { try writer.appendMetrics(trial: trial, step: step, metrics) } catch { throw logError(error) }
    }

    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try requireTrial(trial)
        do { try writer.appendPoint(subject: trial, name: name, step: step, value: value) } catch { throw logError(error) }
    }

    /// The allocation-free path: a registered series of the writer, appended to directly once
    /// the first point has found the trial (the same checks and errors as `logTrialMetric`).
    public func metricSink(trial: String, name: String) -> any MetricSink {
        EventLogMetricSink(backend: self, slot: writer.slot(subject: trial, name: name), trial: trial)
    }

    /// `metricSink`'s way in: the trial check of `logTrialMetric`.
    fileprivate func checkTrial(_ uid: String) throws { try requireTrial(uid) }

    /// Writes this process's appends into the segment file (the page cache), without an fsync.
    public func flush() throws {
        do { try writer.flush() } catch { throw logError(error) }
    }

    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        try appendTrialChange(.tagsAdded(trial: trial, tags))
    }

    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try setTrialStatus(trial, status, error: error, expectedRevision: nil)
    }

    /// Sets the status under the database-wide lock. With `expectedRevision`, throws
    /// `concurrentWrite` when the trial's revision tag is no longer that (another writer changed
    /// it since the caller read it), and changes nothing.
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?, expectedRevision: Int?) throws {
        try atomically(full: expectedRevision != nil) { p in
            let record = try rule { () throws(ModelError) in try Rules.setTrialStatus(trial, status, error: error, in: p) }
            if let expectedRevision, let current = p.tag(.trial, trial), current != expectedRevision {
                throw TrackError(.concurrentWrite, "trial '\(trial)' is at revision \(current), not \(expectedRevision): another writer changed it; read it again and retry")
            }
            try append(record)
        }
    }

    // MARK: - Import and export

    /// Brings a `track` FileProtocol database in, keeping uids, revisions, statuses, metrics (with
    /// and without steps), chronos, errors and revision tags. Refuses, writing nothing, when any
    /// of its projects, groups or trials already exists here. `progress` is called with the
    /// objects written so far and the total.
    ///
    /// The import is one unit: it is written into a stream of its own that readers do not see
    /// until it is complete and fsynced, then published with one rename. An import cut short
    /// (killed, a full disk) leaves nothing visible, and running it again starts afresh.
    public func importDatabase(_ database: TrackFileDatabase, progress: (Int, Int) -> Void = { _, _ in }) throws {
        try atomically { p in
            // Every object is checked (clashes, limits) before the first is written: an import
            // is refused whole, never stored in part.
            let records = try rule { () throws(ModelError) in
                try Rules.importRecords(projects: database.projects, groups: database.groups, trials: database.trials, in: p)
            }
            var options = writer.options
            options.streamName = nil
            options.durability = .buffered
            do {
                let unit = try LogWriter.openUnpublished(database: path, records: .track, options: options)
                do {
                    unit.observe(p.maxHLC)
                    for (done, record) in records.enumerated() { try unit.append(record); progress(done + 1, records.count) }
                    try unit.publish()
                } catch {
                    try? unit.close()
                    _ = try? Compactor.removeStrayFiles(database: path)
                    throw error
                }
            } catch {
                throw logError(error)
            }
        }
    }

    /// The whole state as a `track` FileProtocol database (read from the projection at once).
    public func exportDatabase() throws -> TrackFileDatabase {
        try reading { p in TrackFileDatabase(projects: p.allProjects, groups: p.allGroups, trials: p.allTrials) }
    }

    // MARK: - Compaction

    /// Compacts the database (snapshot, MANIFEST, deletion of covered segments) after making this
    /// process's appends durable. Other processes may keep writing.
    @discardableResult
    public func compact() throws -> Compactor.Report {
        try commit()
        do { return try Compactor.compact(database: path) } catch { throw logError(error) }
    }

    // MARK: - Durability

    public func commit() throws {
        do { try writer.commit() } catch { throw logError(error) }
    }

    /// Writes what was appended into the segment file (the page cache), and fsyncs it too when the
    /// durability is `groupCommit` or `sync`: after it, killing this process loses nothing.
    public func persist() throws {
        do {
            if writer.options.durability == .buffered { try writer.flush() } else { try writer.commit() }
        } catch { throw logError(error) }
    }

    public func close() throws {
        do { try writer.close() } catch { throw logError(error) }
        atomicLock.close()
    }

    /// What changed after `cursor` (nil: everything), every writer's changes read first: the
    /// objects with their revision tags, the series with their point counts, and the cursor to
    /// pass next time (`Projection.changes(since:)`). Any number of readers can follow the
    /// database this way, each with its own cursor.
    public func changes(since cursor: ChangeCursor?) throws -> ProjectionChanges {
        try reading { $0.changes(since: cursor) }
    }

    /// The objects changed by other writers (or this one) since the previous call, with their
    /// revision tags before and after.
    public func smartReload() throws -> [ObjectChange] {
        lock.lock()
        defer { lock.unlock() }
        do {
            try writer.flush()
            let changes = try materializer.smartReload()
            for change in changes where change.kind == .trial { knownTrials.insert(change.uid) }
            writer.observe(materializer.projection.maxHLC)
            return changes
        } catch {
            throw logError(error)
        }
    }
}

/// A metric sink of the event log: one series slot of the backend's writer.
final class EventLogMetricSink: MetricSink, @unchecked Sendable {
    private let backend: EventLogBackend
    private let writer: LogWriter
    private let slot: SeriesSlot
    private let trial: String
    /// Set once the trial was found; a race only repeats the check.
    private var checked = false

    init(backend: EventLogBackend, slot: SeriesSlot, trial: String) {
        self.backend = backend
        self.writer = backend.writer
        self.slot = slot
        self.trial = trial
    }

    @inline(__always)
    func log(_ value: Double, step: Int64?) throws {
        if !checked {
            try backend.checkTrial(trial)
            checked = true
        }
        do { try writer.append(slot, step: step, value: value) } catch { throw TrackError(error) }
    }

    /// The points before the first refused step in one writer call (the lock taken once per
    /// frame), then that point alone, which throws as `log` would.
    func log(values: UnsafeBufferPointer<Double>, steps: UnsafeBufferPointer<Int64>?, logged: inout Int) throws {
        guard let base = values.baseAddress, !values.isEmpty else { return }
        if !checked {
            try backend.checkTrial(trial)
            checked = true
        }
        var usable = values.count
        if let steps, let reserved = steps.firstIndex(of: Int64.min) { usable = reserved }
        if usable > 0 {
            do { try writer.append(slot, steps: steps?.baseAddress, values: base, count: usable) } catch { throw TrackError(error) }
            logged += usable
        }
        if usable < values.count { try log(values[usable], step: steps?[usable]) }
    }
}
