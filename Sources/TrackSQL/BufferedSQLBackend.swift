#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import TrackBackends
import TrackLog
import TrackStore
import TrackModel

/// The SQL backend through a local buffer (`cockroach://host/db?buffer=PATH`): every write goes
/// first to a local event log at PATH (the `file://` backend, durable on `commit()`), and a
/// background shipper applies its events to the database. When the database is unreachable,
/// logging carries on locally; when it returns, every event arrives exactly once.
///
/// - Exactly once: the database keeps each shipped event under its local (stream, sequence)
///   (`track_events`), and each shipping transaction stores its events and applies them
///   together; shipping resumes after the last sequence the database holds, and a transaction
///   whose events are already there is rolled back. One process ships a buffer at a time
///   (`SHIP.lock` in the buffer); events left by a process that stopped are shipped by the next
///   one that opens the buffer.
/// - Writes are checked against the buffer, which knows the objects written through it; an
///   object it lacks is fetched from the database first (when reachable) and recorded locally.
/// - Reads ship everything logged so far, then read the database; while it is unreachable they
///   throw an `io` error saying how many events wait in the buffer.
/// - `fetchAndUpdateTrial` / `fetchAndUpdateGroup` choose the object from the database and apply
///   the change through the buffer: not atomic with other writers, unlike the direct backend.
///   `newTrial(autoIncrement: true)` first records the database's revisions of the hash locally
///   (when reachable), so the revision it picks is new there too unless another machine picks
///   the same one meanwhile.
/// - Events are applied leniently (as with strict=false; an operation on an object the database
///   lacks is skipped with a warning), so one bad event cannot stop shipping.
/// - Shipped events do not pile up: once `compact_bytes` (256 MiB) of segments lie wholly behind
///   the shipping position, the shipper compacts the buffer up to that position (a snapshot keeps
///   the state the buffer checks writes against; unshipped events stay in the log).
/// - URI options as `SQLBackend`, plus `ship_ms=N` (how often the shipper runs, default 100),
///   `compact_bytes=N` (0: never compact) and `segment_bytes=N` (the buffer's segment size).
public final class BufferedSQLBackend: TrackProtocol, @unchecked Sendable {
    /// The local event-log database that buffers writes.
    public let bufferPath: String
    /// Where events are shipped.
    public let location: SQLLocation
    /// The local buffer (the `file://` backend).
    public let local: EventLogBackend
    private let strict: Bool
    private let batchPoints: Int
    private let compactBytes: Int64
    private let logger = Logger(label: "track-sql-buffer")

    private let shipLock = NSLock()
    private var shipConnection: SQLConnection?
    private var reader: SQLBackend?
    private let tailer: LogTailer
    private let shipFile: LogFile
    private var pending: [LocatedFrame] = []
    private var cursors: [String: Int64] = [:]
    private var lastFailure: String?
    private var compactionFailedAt: Date?
    /// The shipping position's segments when compaction was last found not due (or done).
    private var basesChecked: [String: UInt64]?
    private var stopped = false

    /// Opens (creating if needed) the buffer at `bufferPath` and starts shipping to `location`.
    /// The database need not be reachable.
    /// With `compactBytes` > 0 the shipper compacts the buffer up to what is shipped once that
    /// many bytes of segments lie wholly behind it (0: never); `segmentBytes` is the buffer's
    /// segment size.
    public init(location: SQLLocation, bufferPath: String, strict: Bool = true, batchPoints: Int = 10_000, shipMilliseconds: Int = 100,
                compactBytes: Int64 = 256 << 20, segmentBytes: Int64 = Limits.segmentBytesDefault) throws {
        self.location = location
        self.compactBytes = compactBytes
        self.bufferPath = bufferPath
        self.strict = strict
        self.batchPoints = max(1, batchPoints)
        local = try EventLogBackend(path: bufferPath, strict: strict, segmentBytes: segmentBytes)
        do {
            tailer = try LogTailer(database: bufferPath, records: .track, start: ConsumerPosition.read(bufferPath).map { stream, position in
                StreamWatermark(stream: stream, sequence: 0, base: position.base, offset: position.offset)
            })
            shipFile = try LogFile.open(bufferPath + "/" + ConsumerPosition.lockName, flags: O_RDWR | O_CREAT)
        } catch {
            throw TrackError(.io, "cannot open the buffer at '\(bufferPath)': \(error)")
        }
        let interval = Double(max(1, shipMilliseconds)) / 1000
        let thread = Thread { [weak self] in
            var failures = 0  // while the database is away, try less often (up to every 5 s)
            while true {
                Thread.sleep(forTimeInterval: failures == 0 ? interval : min(5, interval * Double(1 << min(failures, 10))))
                guard let self else { return }
                if self.shipLock.withLock({ self.stopped }) { return }
                do {
                    try self.ship(flushing: false)
                    failures = 0
                } catch {
                    failures += 1
                }
            }
        }
        thread.name = "swift-track sql shipper"
        thread.start()
    }

    /// A backend for a `cockroach://...?buffer=PATH` URI.
    public convenience init(uri: TrackURI) throws {
        guard let path = uri.option("buffer"), !path.isEmpty else {
            throw TrackError(.invalidArgument, "option buffer= in '\(uri)' needs the path of a local folder for the buffer")
        }
        try self.init(location: SQLLocation(uri: uri), bufferPath: path, strict: BackendOptions.strict(uri),
                      batchPoints: SQLBackend.intOption(uri, "batch_points", default: 10_000, range: 1...1_000_000),
                      shipMilliseconds: SQLBackend.intOption(uri, "ship_ms", default: 100, range: 1...3_600_000),
                      compactBytes: Int64(SQLBackend.intOption(uri, "compact_bytes", default: 256 << 20, range: 0...(1 << 50))),
                      segmentBytes: Int64(SQLBackend.intOption(uri, "segment_bytes", default: Int(Limits.segmentBytesDefault),
                                                               range: Int(Limits.segmentBytesMin)...Int(Limits.segmentBytesMax))))
    }

    // MARK: - Shipping

    /// Events read from the buffer and not yet shipped (the buffer is read a few frames at a
    /// time, so this is not the whole backlog).
    public var unshippedEvents: Int { shipLock.withLock { unshippedLocked() } }

    private func unshippedLocked() -> Int {
        pending.reduce(0) { total, frame in
            total + frame.frame.events.count { Int64($0.sequence) > (cursors[frame.stream] ?? -1) }
        }
    }

    private func connection() throws -> SQLConnection {
        if let shipConnection { return shipConnection }
        let c = try SQLConnection(location)
        try SQLSchema.migrate(c)
        shipConnection = c
        return c
    }

    /// Ships every event the buffer holds (with `flushing`, after writing out this process's
    /// appends). Returns true when nothing is left; throws when the database cannot be reached.
    @discardableResult
    public func ship(flushing: Bool = true) throws -> Bool {
        if flushing {
            do { try local.flush() } catch { throw TrackError(.io, "cannot write the buffer at '\(bufferPath)': \(error)") }
        }
        shipLock.lock()
        defer { shipLock.unlock() }
        guard !stopped || flushing else { return false }
        // One shipper per buffer: another process holding it ships for everyone.
        guard (try? shipFile.tryLockExclusive()) == true else { return false }
        defer { shipFile.unlock() }
        do {
            // Connect first: while the database is away the events stay in the buffer's files.
            let c = try connection()
            // Frames are read a few at a time, so a long backlog is never decoded whole.
            var shippedEvents = 0
            var moved = false
            var nextReport = 1_000_000
            while true {
                var polled = 0
                if unshippedLocked() < 2 * batchPoints {
                    let frames = try tailer.poll(maxFrames: 16)
                    polled = frames.count
                    pending += frames
                    for stream in Set(frames.map(\.stream)) where cursors[stream] == nil {
                        cursors[stream] = try c.lastSequence(stream: stream)
                    }
                }
                let (progressed, shipped) = try shipOneBatch(c)
                shippedEvents += shipped
                if shippedEvents >= nextReport {
                    logger.info("shipping the buffer \(bufferPath): \(shippedEvents) events so far")
                    nextReport += 1_000_000
                }
                pending.removeAll { frame in frame.frame.events.allSatisfy { Int64($0.sequence) <= (cursors[frame.stream] ?? -1) } }
                if !progressed && polled == 0 { break }
                moved = true
            }
            if pending.isEmpty {
                if moved { savePositions() }
                // Compaction replays the buffer: done by the background shipper, not in a caller's
                // commit, and also when idle (a caller's flush may have done the shipping).
                if !flushing { compactIfDue() }
            }
            if lastFailure != nil {
                logger.info("the SQL database \(location.host):\(location.port) is reachable again; \(shippedEvents) events shipped from the buffer \(bufferPath)")
            }
            lastFailure = nil
            return pending.isEmpty
        } catch {
            let message = (error as? TrackError)?.message ?? (error as? SQLFailure)?.message ?? "\(error)"
            if lastFailure != message { logger.warning("shipping the buffer \(bufferPath) to \(location.host):\(location.port) paused: \(message)") }
            lastFailure = message
            if (error as? SQLFailure)?.sqlState == nil { try? shipConnection?.close(); shipConnection = nil }
            throw TrackError(.io, "the SQL database \(location.database) at \(location.host):\(location.port) is unreachable (\(message)); the events logged meanwhile wait in the buffer '\(bufferPath)' and are shipped when it returns")
        }
    }

    /// Saves where the shipper has read every frame and shipped every event (`ConsumerPosition`), so
    /// that the next process opening the buffer starts there instead of rereading it all. Must
    /// hold `shipLock` with nothing pending.
    private func savePositions() {
        do {
            try ConsumerPosition.write(tailer.position, to: bufferPath)
        } catch {
            logger.warning("cannot save the shipping position in \(bufferPath)/\(ConsumerPosition.fileName): \(error); the next process rereads the buffer")
        }
    }

    /// Compacts the buffer up to what has been shipped once at least `compactBytes` of its
    /// segments lie wholly behind the shipping position, so a buffer in long use keeps a snapshot
    /// and its unshipped tail instead of growing forever. Must hold `shipLock` with nothing pending.
    private func compactIfDue() {
        guard compactBytes > 0 else { return }
        let positions = tailer.position
        // What lies wholly behind the position changes only when the position enters another
        // segment: an idle shipper does not list and measure the segments on every round.
        let bases = positions.mapValues(\.base)
        if bases == basesChecked { return }
        let layout = DatabaseLayout(root: bufferPath)
        var behind: Int64 = 0
        for (stream, position) in positions {
            for base in layout.segmentBases(stream) where base < position.base {
                behind += (try? FileManager.default.attributesOfItem(atPath: layout.segmentPath(stream, base: base))[.size] as? Int64) ?? 0
            }
        }
        guard behind >= compactBytes else {
            basesChecked = bases
            return
        }
        // After a failure, wait a minute before trying again (each try replays the buffer).
        if let failed = compactionFailedAt, Date().timeIntervalSince(failed) < 60 { return }
        do {
            let report = try Compactor.compact(database: bufferPath, upTo: positions, reporter: { [logger] in logger.warning("\($0)") })
            compactionFailedAt = nil
            basesChecked = bases
            logger.info("compacted the buffer \(bufferPath) up to what is shipped: \(report.bytesBefore) bytes before, \(report.bytesAfter) after, \(report.segmentsDeleted) segments deleted")
        } catch {
            compactionFailedAt = Date()
            logger.warning("cannot compact the buffer \(bufferPath): \(error); it keeps its segments and tries again in a minute")
        }
    }

    /// One item of a shipping transaction.
    private enum Item {
        case record(LogRecord, seq: Int64, at: Double)
        case point(trial: String, name: String, step: Int64?, value: Double, seq: Int64, at: Double)
        case values(trial: String, step: MetricStep?, ValueObject, seq: Int64, at: Double)
    }

    /// Ships the oldest unshipped events of one stream in one transaction. Returns whether it
    /// moved on (false: nothing was left) and how many events it stored (none when the database
    /// had them already).
    private func shipOneBatch(_ c: SQLConnection) throws -> (progressed: Bool, events: Int) {
        guard let stream = pending.first(where: { f in f.frame.events.contains { Int64($0.sequence) > (cursors[f.stream] ?? -1) } })?.stream else {
            return (false, 0)
        }
        let cursor = cursors[stream] ?? -1
        var items: [Item] = []
        var weight = 0
        gathering: for located in pending where located.stream == stream {
            let frame = located.frame
            for event in frame.events where Int64(event.sequence) > cursor {
                let seq = Int64(event.sequence)
                // Stop between operations (points of one call share a sequence number).
                if weight >= batchPoints, let last = items.last, Self.sequence(of: last) != seq { break gathering }
                switch event.kind {
                case .point(let series, let step, let value):
                    let (trial, name) = frame.seriesNames(series)
                    items.append(.point(trial: trial, name: name, step: step, value: value, seq: seq, at: event.hlc.seconds))
                    weight += 1
                case .record:
                    // Every record of a buffer is one of track's (`TrackRecordCodec`).
                    switch event.record {
                    case .metricsLogged(let trial, let step, let metrics)?:
                        items.append(.values(trial: trial, step: step, metrics, seq: seq, at: event.hlc.seconds))
                        weight += metrics.count
                    case let record?:
                        items.append(.record(record, seq: seq, at: event.hlc.seconds))
                        weight += 20
                    case nil:
                        continue
                    }
                }
            }
        }
        guard !items.isEmpty else { return (false, 0) }
        let events = Self.events(items, stream: stream)
        let store = SQLStore(connection: c)
        do {
            try c.transaction {
                try store.gate(events)
                var points = PointBatch()
                var lastCounted: (trial: String, seq: Int64)?
                for item in items {
                    switch item {
                    case .point(let trial, let name, let step, let value, let seq, let at):
                        points.add(trial: trial, name: name, step: step, double: value, json: nil)
                        if lastCounted?.trial != trial || lastCounted?.seq != seq { points.countCall(trial: trial, at: at) }
                        lastCounted = (trial, seq)
                    case .values(let trial, let step, let metrics, _, let at):
                        points.add(trial: trial, step: step, metrics, at: at)
                        lastCounted = nil
                    case .record(let record, _, let at):
                        // Points before a record are written before it (an import replaces them).
                        try c.insertPoints(points)
                        points = PointBatch()
                        lastCounted = nil
                        try store.apply(record, at: at, points: &points) { message in
                            logger.warning("shipping \(stream): skipped \(message)")
                        }
                    }
                }
                try c.insertPoints(points)
            }
            cursors[stream] = events.map(\.lastSeq).max() ?? cursor
            return (true, items.count)
        } catch is AlreadyApplied {
            // Shipped before (a lost reply, or another process): resume after what is there.
            let stored = try c.lastSequence(stream: stream)
            guard stored > cursor else {
                throw TrackError(.io, "the database refuses events of stream \(stream) after sequence \(cursor) as already stored, yet holds none past it")
            }
            cursors[stream] = stored
            return (true, 0)
        }
    }

    private static func sequence(of item: Item) -> Int64 {
        switch item {
        case .record(_, let seq, _), .point(_, _, _, _, let seq, _), .values(_, _, _, let seq, _): return seq
        }
    }

    /// The events of a transaction: each record one event, each run of points one event
    /// covering its sequence numbers.
    private static func events(_ items: [Item], stream: String) -> [SQLEvent] {
        var out: [SQLEvent] = []
        var run: (first: Int64, last: Int64, count: Int)?
        func closeRun() {
            if let r = run { out.append(SQLEvent(stream: stream, seq: r.first, lastSeq: r.last, kind: "metric_points", body: #"{"points": \#(r.count)}"#)) }
            run = nil
        }
        for item in items {
            switch item {
            case .point(_, _, _, _, let seq, _):
                run = run.map { ($0.first, seq, $0.count + 1) } ?? (seq, seq, 1)
            case .values(_, _, let metrics, let seq, _):
                run = run.map { ($0.first, seq, $0.count + metrics.count) } ?? (seq, seq, metrics.count)
            case .record(let record, let seq, _):
                closeRun()
                out.append(SQLEvent(stream: stream, seq: seq, kind: record.kindName, body: eventBody(record)))
            }
        }
        closeRun()
        return out
    }

    // MARK: - Reading (from the database, after shipping)

    private func remote<T>(_ body: (SQLBackend) throws -> T) throws -> T {
        try ship()
        let backend: SQLBackend = try shipLock.withLock {
            if let reader { return reader }
            let made = try SQLBackend(location: location, strict: strict, flushMilliseconds: 0)
            reader = made
            return made
        }
        do {
            return try body(backend)
        } catch let error as TrackError where error.code == .io {
            shipLock.withLock { reader = nil }
            throw error
        }
    }

    public func getProject(_ uid: String) throws -> Project? { try remote { try $0.getProject(uid) } }
    public func fetchProjects(_ query: Query) throws -> [Project] { try remote { try $0.fetchProjects(query) } }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try remote { try $0.getTrialGroup(uid) } }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] { try remote { try $0.fetchGroups(query) } }
    public func getTrial(hash: String) throws -> [Trial] { try remote { try $0.getTrial(hash: hash) } }
    public func fetchTrials(_ query: Query) throws -> [Trial] { try remote { try $0.fetchTrials(query) } }

    // MARK: - Writing (to the buffer)

    /// Runs `body` on the buffer; if it lacks an object the database has, records that object
    /// locally first and runs `body` again.
    private func seeded<T>(trial: String? = nil, group: String? = nil, project: String? = nil, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as TrackError where error.code == .itemNotFound || error.code == .missingReference {
            guard (try? seed(trial: trial, group: group, project: project)) == true else { throw error }
            return try body()
        }
    }

    private func seed(trial: String?, group: String?, project: String?) throws -> Bool {
        var found = false
        try remote { db in
            var projects = Set<String>(), groups = Set<String>()
            var trialObject: Trial?
            if let trial, let t = try db.getTrial(uid: trial) {
                trialObject = t
                if let p = t.projectID { projects.insert(p) }
                if let g = t.groupID { groups.insert(g) }
            }
            if let group { groups.insert(group) }
            if let project { projects.insert(project) }
            for uid in groups { if let g = try db.getTrialGroup(uid) { projects.insert(g.projectID) } }
            for uid in projects.sorted() where try local.getProject(uid) == nil {
                if let p = try db.getProject(uid) { _ = try local.newProject(Project(name: p.name, description: p.description, metadata: p.metadata)); found = true }
            }
            for uid in groups.sorted() where try local.getTrialGroup(uid) == nil {
                if let g = try db.getTrialGroup(uid) { _ = try local.newTrialGroup(g); found = true }
            }
            if var t = trialObject, try local.getTrial(uid: t.uid) == nil {
                t.metrics = [:]
                _ = try local.newTrial(t, autoIncrement: false)
                found = true
            }
        }
        return found
    }

    public func newProject(_ project: Project) throws -> Project { try local.newProject(project) }
    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { try seeded(project: group.projectID) { try local.newTrialGroup(group) } }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        try seeded(group: group) { try local.setGroupMetadata(group, metadata) }
    }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        // Which group the query selects is the database's answer; the change goes through the buffer.
        guard let first = try fetchGroups(query).first else { throw TrackError(.itemNotFound, "no trial group matches the query \(query)") }
        return try seeded(group: first.uid) { try local.fetchAndUpdateGroup(Query([Query.Condition("uid", .equal, .string(first.uid))]), update) }
    }
    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        if autoIncrement, let revisions = try? remote({ try $0.getTrial(hash: trial.hash) }) {
            for existing in revisions where (try? local.getTrial(uid: existing.uid)) == nil {
                _ = try? seed(trial: existing.uid, group: nil, project: nil)
            }
        }
        return try seeded(group: trial.groupID, project: trial.projectID) { try local.newTrial(trial, autoIncrement: autoIncrement) }
    }
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        guard let first = try remote({ try $0.firstTrial(query) }) else { throw TrackError(.itemNotFound, "no trial matches the query \(query)") }
        let values: ValueObject?
        do { values = try update.metadataValues(for: first) } catch { throw TrackError(error) }
        _ = try seeded(trial: first.uid) { () throws -> Trial in
            switch update {
            case .incrementMetadata: try local.logTrialMetadata(first.uid, values ?? [:]); return first
            default: return try local.fetchAndUpdateTrial(Query([Query.Condition("uid", .equal, .string(first.uid))]), update)
            }
        }
        return try remote { db in
            guard let t = try db.getTrial(uid: first.uid) else { throw TrackError(.itemNotFound, "trial '\(first.uid)' does not exist") }
            return t
        }
    }
    public func addProjectTrial(project: String, trial: String) throws {
        try seeded(trial: trial, project: project) { try local.addProjectTrial(project: project, trial: trial) }
    }
    public func addGroupTrial(group: String, trial: String) throws {
        try seeded(trial: trial, group: group) { try local.addGroupTrial(group: group, trial: trial) }
    }
    public func logTrialStart(_ trial: String) throws { try seeded(trial: trial) { try local.logTrialStart(trial) } }
    public func logTrialFinish(_ trial: String) throws { try seeded(trial: trial) { try local.logTrialFinish(trial) } }
    public func logTrialChronoStart(_ trial: String, name: String) throws {
        try seeded(trial: trial) { try local.logTrialChronoStart(trial, name: name) }
    }
    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        try seeded(trial: trial) { try local.logTrialChronoFinish(trial, name: name) }
    }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        try seeded(trial: trial) { try local.logTrialArguments(trial, arguments) }
    }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        try seeded(trial: trial) { try local.logTrialMetadata(trial, metadata) }
    }
    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        try seeded(trial: trial) { try local.logTrialMetrics(trial, step: step, metrics) }
    }
    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try seeded(trial: trial) { try local.logTrialMetric(trial, name: name, step: step, value: value) }
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        try seeded(trial: trial) { try local.addTrialTags(trial, tags) }
    }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        try seeded(trial: trial) { try local.setTrialStatus(trial, status, error: error) }
    }

    // MARK: - Durability

    /// Writes into the buffer's log (the SQL database receives it in the background).
    public func persist() throws { try local.persist() }

    /// Makes everything logged durable in the buffer and ships what it can when the database was
    /// reachable at the last attempt; succeeds while it is unreachable (the events wait in the
    /// buffer for the background shipper).
    public func commit() throws {
        try local.commit()
        // While the database is away the background shipper keeps trying (and backs off); a
        // commit in a training loop does not wait for another connection attempt.
        if shipLock.withLock({ lastFailure == nil }) { _ = try? ship() }
    }

    /// Commits, ships for up to `shipSeconds` (what is left is shipped by the next process that
    /// opens the buffer), and closes.
    public func close(shipSeconds: Double) throws {
        try local.commit()
        let deadline = Date().addingTimeInterval(shipSeconds)
        while (try? ship()) != true && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let caughtUp: Bool = shipLock.withLock {
            stopped = true
            return lastFailure == nil && unshippedLocked() == 0
        }
        if !caughtUp {
            logger.warning("closing before every event was shipped (\(shipLock.withLock { lastFailure } ?? "shipping took longer than \(shipSeconds) s")); they wait in the buffer \(bufferPath) and are shipped by the next process that opens it")
        }
        try local.close()
        shipLock.withLock {
            try? shipConnection?.close()
            shipConnection = nil
            try? reader?.close()
            reader = nil
        }
    }

    /// Same as `close(shipSeconds: 10)`.
    public func close() throws { try close(shipSeconds: 10) }
}
