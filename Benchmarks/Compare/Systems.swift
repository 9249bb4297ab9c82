import CSQLite
import Foundation
import Track
import TrackLog
import TrackStore

/// One metric point to store.
struct Point {
    var trial: Int
    var metric: Int
    var step: Int
    var value: Double
}

/// A storage being compared: opened on a path, fed points (in calls of one or more points of
/// one trial and step), made durable, read back, and measured on disk.
protocol MetricStore: AnyObject {
    /// A name for the table.
    static var systemName: String { get }
    init(path: String) throws
    /// Stores the points of one call: same trial and step.
    func log(_ points: ArraySlice<Point>) throws
    /// Makes everything stored durable (or flushed, where the system has no durable mode).
    func commit() throws
    /// Finishes and releases the store.
    func close() throws
    /// Reads every series back; returns how many points were read.
    static func readBack(path: String) throws -> Int
}

/// Total bytes of the files under `path` (a file or a directory).
func diskBytes(_ path: String) -> Int64 {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { return 0 }
    if !isDirectory.boolValue { return ((try? fm.attributesOfItem(atPath: path)[.size]) as? Int64) ?? 0 }
    var total: Int64 = 0
    for case let name as String in fm.enumerator(atPath: path) ?? FileManager.DirectoryEnumerator() {
        total += ((try? fm.attributesOfItem(atPath: path + "/" + name)[.size]) as? Int64) ?? 0
    }
    return total
}

let metricNames = ["loss", "accuracy", "lr", "grad_norm"]

func trialName(_ i: Int) -> String { "trial-\(i)" }

// MARK: - swift-track

/// swift-track's `file://` backend through the client API, as a training script uses it.
final class SwiftTrackStore: MetricStore {
    static let systemName = "swift-track"
    let client: TrackClient
    var loggers: [Int: TrialLogger] = [:]
    var handles: [MetricHandle?] = Array(repeating: nil, count: 64 * 4)

    init(path: String) throws {
        client = try TrackClient(backend: "file://\(path)")
        try client.setProject(name: "compare")
    }

    private func logger(_ trial: Int) throws -> TrialLogger {
        if let l = loggers[trial] { return l }
        let l = try client.newTrial(name: trialName(trial), parameters: ["seed": .int(Int64(trial))])
        loggers[trial] = l
        return l
    }

    func log(_ points: ArraySlice<Point>) throws {
        let first = points[points.startIndex]
        if points.count == 1 {
            // One scalar: the metric-handle fast path.
            let key = first.trial * 4 + first.metric
            if let handle = handles[key] {
                try handle.log(first.value, step: Int64(first.step))
            } else {
                let handle = try logger(first.trial).metric(metricNames[first.metric])
                handles[key] = handle
                try handle.log(first.value, step: Int64(first.step))
            }
        } else {
            var metrics = ValueObject(minimumCapacity: points.count)
            for p in points { metrics[metricNames[p.metric]] = .double(p.value) }
            try logger(first.trial).logMetrics(step: .int(Int64(first.step)), metrics)
        }
    }

    func commit() throws { try client.commit() }
    func close() throws { try client.backend.close() }

    static func readBack(path: String) throws -> Int {
        let m = try Materializer(database: path, reporter: { _ in })
        try m.reload()
        var count = 0
        for t in m.projection.allTrials {
            for name in t.metrics.keys { count += m.projection.columns(trial: t.uid, metric: name)?.count ?? 0 }
        }
        return count
    }
}

// MARK: - SQLite

/// Errors of the SQLite baseline.
struct SQLiteError: Error, CustomStringConvertible {
    var description: String
}

/// SQLite through libsqlite3, WAL mode, synchronous=NORMAL, one row per point, committing every
/// `pointsPerTransaction` points.
class SQLiteStore: MetricStore {
    class var systemName: String { "SQLite, 1 transaction per point" }
    class var pointsPerTransaction: Int { 1 }
    var db: OpaquePointer?
    var insert: OpaquePointer?
    var pending = 0

    required init(path: String) throws {
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw SQLiteError(description: "cannot open \(path)") }
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=NORMAL")
        sqlite3_busy_timeout(db, 30_000)
        try exec("CREATE TABLE IF NOT EXISTS points (trial TEXT NOT NULL, metric TEXT NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL)")
        guard sqlite3_prepare_v2(db, "INSERT INTO points (trial, metric, step, value) VALUES (?, ?, ?, ?)", -1, &insert, nil) == SQLITE_OK else {
            throw SQLiteError(description: String(cString: sqlite3_errmsg(db)))
        }
    }

    func exec(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &message) != SQLITE_OK {
            defer { sqlite3_free(message) }
            throw SQLiteError(description: "\(sql): \(message.map { String(cString: $0) } ?? "?")")
        }
    }

    func log(_ points: ArraySlice<Point>) throws {
        for p in points {
            if pending == 0 { try exec("BEGIN") }
            let trial = trialName(p.trial), metric = metricNames[p.metric]
            sqlite3_bind_text(insert, 1, trial, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            sqlite3_bind_text(insert, 2, metric, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            sqlite3_bind_int64(insert, 3, Int64(p.step))
            sqlite3_bind_double(insert, 4, p.value)
            guard sqlite3_step(insert) == SQLITE_DONE else { throw SQLiteError(description: String(cString: sqlite3_errmsg(db))) }
            sqlite3_reset(insert)
            pending += 1
            if pending >= Self.pointsPerTransaction { try exec("COMMIT"); pending = 0 }
        }
    }

    func commit() throws {
        if pending > 0 { try exec("COMMIT"); pending = 0 }
    }

    func close() throws {
        try commit()
        sqlite3_finalize(insert)
        sqlite3_close(db)
    }

    class func readBack(path: String) throws -> Int {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw SQLiteError(description: "cannot open \(path)") }
        defer { sqlite3_close(db) }
        var query: OpaquePointer?
        sqlite3_prepare_v2(db, "SELECT trial, metric, step, value FROM points ORDER BY trial, metric, step", -1, &query, nil)
        defer { sqlite3_finalize(query) }
        var series: [String: (steps: [Int64], values: [Double])] = [:]
        var count = 0
        while sqlite3_step(query) == SQLITE_ROW {
            let key = String(cString: sqlite3_column_text(query, 0)) + "/" + String(cString: sqlite3_column_text(query, 1))
            series[key, default: ([], [])].steps.append(sqlite3_column_int64(query, 2))
            series[key, default: ([], [])].values.append(sqlite3_column_double(query, 3))
            count += 1
        }
        return count
    }
}

/// SQLite committing every 1,000 points.
final class SQLiteBatchedStore: SQLiteStore {
    override class var systemName: String { "SQLite, 1 transaction per 1,000 points" }
    override class var pointsPerTransaction: Int { 1000 }
}

// MARK: - track's FileProtocol strategy

/// What Python `track`'s `FileProtocol` does on every call: take a file lock, read and parse the
/// whole JSON database, change the trial, write the whole file to a temporary file and rename it.
final class FileProtocolStore: MetricStore {
    static let systemName = "track FileProtocol strategy"
    let path: String
    let lock: LogFile

    init(path: String) throws {
        self.path = path
        lock = try LogFile.open(path + ".lock", flags: O_RDWR | O_CREAT)
        if !FileManager.default.fileExists(atPath: path) {
            try Data("[]".utf8).write(to: URL(fileURLWithPath: path))
        }
    }

    func log(_ points: ArraySlice<Point>) throws {
        try lock.lockExclusive()
        defer { lock.unlock() }
        var projects = try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).arrayValue ?? []
        if projects.isEmpty { projects = [["dtype": "project", "name": "compare", "trials": []]] }
        guard case .object(var project) = projects[0] else { return }
        var trials = project["trials"]?.arrayValue ?? []
        let first = points[points.startIndex]
        let name = trialName(first.trial)
        var index = trials.firstIndex { $0["name"]?.stringValue == name }
        if index == nil {
            trials.append(["dtype": "trial", "name": .string(name), "metrics": [:], "metadata": ["_update_count": 0]])
            index = trials.count - 1
        }
        guard case .object(var trial) = trials[index!], case .object(var metrics)? = trial["metrics"] else { return }
        for p in points {
            var series = metrics[metricNames[p.metric]]?.objectValue ?? [:]
            series[String(p.step)] = .double(p.value)
            metrics[metricNames[p.metric]] = .object(series)
        }
        trial["metrics"] = .object(metrics)
        trial["metadata"] = ["_update_count": .int((trial["metadata"]?["_update_count"]?.intValue ?? 0) + 1), "_last_change": .double(Date().timeIntervalSince1970)]
        trials[index!] = .object(trial)
        project["trials"] = .array(trials)
        projects[0] = .object(project)
        let temporary = path + ".tmp"
        try Data(JSON.encode(.array(projects), pythonSeparators: true).utf8).write(to: URL(fileURLWithPath: temporary))
        try FileSystem.rename(temporary, to: path)
    }

    func commit() throws {}
    func close() throws { lock.close() }

    static func readBack(path: String) throws -> Int {
        let projects = try JSON.decode(Array(try Data(contentsOf: URL(fileURLWithPath: path)))).arrayValue ?? []
        var count = 0
        for p in projects {
            for t in p["trials"]?.arrayValue ?? [] {
                for (_, series) in t["metrics"]?.objectValue ?? [:] { count += series.objectValue?.count ?? 0 }
            }
        }
        return count
    }
}

// MARK: - JSON lines

/// The simplest thing a user might write: one JSON line per point, appended to a file through a
/// buffer (several processes append whole buffers with O_APPEND).
final class JSONLinesStore: MetricStore {
    static let systemName = "JSON-lines file"
    let file: LogFile
    let fd: Int32
    var buffer: [UInt8] = []

    init(path: String) throws {
        file = try LogFile.open(path, flags: O_WRONLY | O_CREAT | O_APPEND)
        fd = file.descriptor
        buffer.reserveCapacity(1 << 16)
    }

    func log(_ points: ArraySlice<Point>) throws {
        for p in points {
            let line = "{\"trial\": \"\(trialName(p.trial))\", \"metric\": \"\(metricNames[p.metric])\", \"step\": \(p.step), \"value\": \(JSON.formatDouble(p.value))}\n"
            buffer.append(contentsOf: line.utf8)
        }
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { throw SQLiteError(description: "write failed: errno \(errno)") }
            done += n
        }
        buffer.removeAll(keepingCapacity: true)
    }

    func commit() throws {
        try flush()
        try file.sync()
    }

    func close() throws {
        try flush()
        file.close()
    }

    static func readBack(path: String) throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var series: [String: (steps: [Int64], values: [Double])] = [:]
        var count = 0
        var start = data.startIndex
        for i in data.indices where data[i] == UInt8(ascii: "\n") {
            let line = try JSON.decode(Array(data[start..<i]))
            let key = (line["trial"]?.stringValue ?? "") + "/" + (line["metric"]?.stringValue ?? "")
            series[key, default: ([], [])].steps.append(line["step"]?.intValue ?? 0)
            series[key, default: ([], [])].values.append(line["value"]?.doubleValue ?? 0)
            count += 1
            start = i + 1
        }
        return count
    }
}
