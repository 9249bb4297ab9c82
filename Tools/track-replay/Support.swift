import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackStore

/// A one-line error for the user: ArgumentParser prints it after "Error: " and exits non-zero.
struct ToolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes to standard error.
func warn(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// A progress bar on standard error, drawn only when standard error is a terminal: the share
/// done, the rate and the time left.
final class ProgressBar {
    private let label: String
    private let total: Int64
    private let unit: String
    private let enabled: Bool
    private var lastDrawn = -1
    private var lastDrawnAt = 0.0
    private let start = Date()

    /// `unit` names what `total` counts: "B" (bytes, shown as kB, MB, ...) or a word ("objects").
    init(_ label: String, total: Int64, unit: String = "B") {
        self.label = label
        self.total = max(1, total)
        self.unit = unit
        enabled = isatty(STDERR_FILENO) != 0
    }

    func update(_ done: Int64) {
        guard enabled else { return }
        let percent = Int(min(100, done * 100 / total))
        let elapsed = Date().timeIntervalSince(start)
        // Redrawn when the share changes, and a few times a second for the rate.
        guard percent != lastDrawn || elapsed - lastDrawnAt >= 0.25 else { return }
        lastDrawn = percent
        lastDrawnAt = elapsed
        let width = 30
        let filled = width * percent / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(label) [\(bar)] \(percent)%\(ProgressBar.rateAndTimeLeft(done: done, total: total, elapsed: elapsed, unit: unit))".utf8))
    }

    /// ", 12.3 MB/s, 4 s left" once there is a rate to tell; "" before.
    static func rateAndTimeLeft(done: Int64, total: Int64, elapsed: Double, unit: String) -> String {
        guard elapsed >= 0.2, done > 0 else { return "" }
        let rate = Double(done) / elapsed
        let left = Double(max(0, total - done)) / rate
        let count: String
        switch rate {
        case 1e6...: count = String(format: "%.1f M", rate / 1e6)
        case 1e3...: count = String(format: "%.1f k", rate / 1e3)
        default: count = String(format: "%.0f", rate)
        }
        let rateText = unit == "B" ? byteCount(Int64(rate)) + "/s" : "\(count) \(unit)/s"
        let leftText = left < 1 ? "under 1 s left" : left < 90 ? "\(Int(left.rounded())) s left" : "\(Int((left / 60).rounded())) min left"
        return ", \(rateText), \(leftText)"
    }

    func finish() {
        guard enabled, lastDrawn >= 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}

/// Removes `path` if the process is interrupted (SIGINT, SIGTERM, SIGHUP) before `disarm`: a
/// half-written temporary file is never left behind. One at a time.
enum TemporaryFileGuard {
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?

    static func arm(_ file: String) {
        path = strdup(file)
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // Only async-signal-safe calls: unlink, then the default action (the usual exit status).
            _ = Foundation.signal(signal) { number in
                if let path = TemporaryFileGuard.path { unlink(path) }
                Foundation.signal(number, SIG_DFL)
                raise(number)
            }
        }
    }

    static func disarm() {
        for signal in [SIGINT, SIGTERM, SIGHUP] { _ = Foundation.signal(signal, SIG_DFL) }
        let old = path
        path = nil
        free(old)
    }
}

/// Collects damage notices while a database is read.
final class DamageCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var notices: [LogNotice] = []
    var reporter: LogReporter {
        { [self] notice in
            if notice.kind == .damage { lock.lock(); notices.append(notice); lock.unlock() } else { warn(notice.kind == .generationFallback ? "warning: \(notice)" : "note: \(notice)") }
        }
    }
    var first: LogNotice? { lock.lock(); defer { lock.unlock() }; return notices.first }
    var all: [LogNotice] { lock.lock(); defer { lock.unlock() }; return notices }
    var count: Int { lock.lock(); defer { lock.unlock() }; return notices.count }
}

/// The exit status of a reading command that met damage: what is intact was shown, the damage
/// was listed on standard error.
let damageExitStatus: Int32 = 3

/// What `--help` of every reading command says about damage.
let damageHelp = """
On a damaged database, everything intact is shown, each damaged place is listed on standard error \
with its file, offset and what it covers, and the exit status is \(damageExitStatus) (0: no damage, 1: an \
error). With --strict the command refuses a damaged database instead (exit status 1).
"""

/// `--strict`, shared by the commands that read a whole database.
struct ReadingOptions: ParsableArguments {
    @Flag(help: "Refuse a damaged database instead of showing what is intact.")
    var strict = false
}

/// A replayed database and the damage met on the way.
struct Replayed {
    /// The state of everything that read back.
    let materializer: Materializer
    /// Each damaged place, with its file and offset.
    let damage: [LogNotice]
    var projection: Projection { materializer.projection }

    /// One line for `summary`'s output: nothing damaged is presented as whole.
    var damageLine: String? { damageSummaryLine(damage) }

    /// Call after the output: lists the damage on standard error and exits with
    /// `damageExitStatus` when there was any.
    func finish() throws { try finishReading(damage: damage) }
}

/// One line for a command's output saying damage was met (nil when none was).
func damageSummaryLine(_ damage: [LogNotice]) -> String? {
    damage.isEmpty ? nil : "DAMAGED: \(damage.count) damaged \(damage.count == 1 ? "place" : "places") met while reading; what is shown leaves out what they cover (listed on standard error; track-replay verify has details)"
}

/// Lists `damage` on standard error and exits with `damageExitStatus` when there is any.
func finishReading(damage: [LogNotice]) throws {
    guard !damage.isEmpty else { return }
    warn("warning: the database is damaged; everything intact was shown, leaving out what these \(damage.count) places cover:")
    for notice in damage { warn("  damaged: \(describe(notice))") }
    throw ExitCode(damageExitStatus)
}

/// A notice as "message [path at offset N]".
func describe(_ notice: LogNotice) -> String {
    "\(notice.message) [\(notice.path)\(notice.offset.map { " at offset \($0)" } ?? "")]"
}

/// Opens an existing database and replays it (snapshot then log), with a progress bar. Damage
/// is read around and returned (`Replayed.finish()` reports it); with `strict` it is an error
/// naming the file and offset (`verify` lists all of it).
func replay(_ path: String, strict: Bool = false) throws -> Replayed {
    let layout = DatabaseLayout(root: path)
    let damage = DamageCollector()
    do {
        try layout.validate()
        let materializer = try Materializer(database: path, reporter: damage.reporter)
        let bar = ProgressBar("replaying", total: try Compactor.diskBytes(layout))
        try materializer.reload { bar.update($0) }
        bar.finish()
        if strict, let first = damage.first {
            throw ToolError("the database is damaged: \(describe(first))\(damage.count > 1 ? " and \(damage.count - 1) more places" : ""); run track-replay verify for details, or leave out --strict to see what is intact")
        }
        return Replayed(materializer: materializer, damage: damage.all)
    } catch let error as LogError {
        throw ToolError(error.description)
    }
}

/// The trial with this uid, or the one trial whose uid starts with it.
func resolveTrial(_ key: String, in projection: Projection) throws -> Trial {
    if let exact = projection.trial(key) { return exact }
    let all = projection.allTrials
    var matches = all.filter { $0.uid.hasPrefix(key) }
    // `PREFIX_REVISION`, as `summary` prints a trial: a uid prefix and one revision.
    if matches.isEmpty, let (prefix, revision) = Trial.splitUID(key), !prefix.isEmpty {
        matches = all.filter { $0.hash.hasPrefix(prefix) && $0.revision == revision }
    }
    if matches.count == 1 { return matches[0] }
    if matches.isEmpty {
        let byName = all.filter { $0.name == key }
        if byName.count == 1 { return byName[0] }
        if byName.count > 1 {
            throw ToolError("several trials are named '\(key)': \(byName.prefix(5).map(\.shortID).joined(separator: ", ")); give one of these")
        }
        throw ToolError("no trial matches '\(key)' (by uid, uid prefix, PREFIX_REVISION as summary prints it, or name)")
    }
    let listed = matches.prefix(5).map(\.shortID).joined(separator: ", ") + (matches.count > 5 ? ", ..." : "")
    if Set(matches.map(\.hash)).count == 1 {
        throw ToolError("'\(key)' matches \(matches.count) revisions of one trial (\(listed)); give the revision too, as in \(matches[0].shortID)")
    }
    throw ToolError("the prefix '\(key)' is ambiguous: \(matches.count) trials start with it (\(listed)); give more characters")
}

/// How `summary` names a trial, and what every command takes: a 12-character uid prefix and the
/// revision (`2e1b2597e896_0`).

/// A time as an ISO 8601 UTC string with microseconds (`2026-12-07T20:11:03.123456Z`).
func isoTime(_ seconds: Double) -> String {
    var out = OutputBuffer()
    out.appendISOTime(microseconds: seconds >= 0 ? UInt64((seconds * 1_000_000).rounded()) : 0)
    return String(decoding: out.bytes, as: UTF8.self)
}

/// Bytes of output built without `String` or `Formatter` per line, written in large pieces:
/// what `tail` uses to print a million lines a second.
struct OutputBuffer {
    var bytes: [UInt8] = []
    /// `YYYY-MM-DDTHH:MM:SS.` of the last second formatted: consecutive events share it.
    private var cachedSecond: UInt64 = .max
    private var cachedPrefix: [UInt8] = []

    init() { bytes.reserveCapacity(1 << 20) }

    mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func append(_ byte: UInt8) { bytes.append(byte) }

    /// A signed integer in decimal.
    mutating func append(_ value: Int64) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        append(unsigned: value.magnitude, width: 1)
    }

    /// An unsigned integer in decimal, zero-padded to at least `width` digits.
    mutating func append(unsigned value: UInt64, width: Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { digits in
            var count = 0
            var v = value
            repeat {
                digits[count] = UInt8(truncatingIfNeeded: v % 10) &+ 48
                v /= 10
                count += 1
            } while v > 0
            while count < min(width, digits.count) { digits[count] = 48; count += 1 }
            for i in stride(from: count - 1, through: 0, by: -1) { bytes.append(digits[i]) }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` for a time in microseconds since 1970 (UTC).
    mutating func appendISOTime(microseconds: UInt64) {
        let second = microseconds / 1_000_000
        if second != cachedSecond {
            let start = bytes.count
            appendISOSecond(Int64(second))
            cachedPrefix = Array(bytes[start...])
            bytes.removeSubrange(start...)
            cachedSecond = second
        }
        bytes.append(contentsOf: cachedPrefix)
        append(unsigned: microseconds % 1_000_000, width: 6)
        append(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DDTHH:MM:SS.` of `seconds` since 1970.
    private mutating func appendISOSecond(_ seconds: Int64) {
        let days = seconds / 86_400, secondOfDay = seconds % 86_400
        // Civil date from days since 1970 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        append(unsigned: UInt64(year), width: 4)
        append(UInt8(ascii: "-"))
        append(unsigned: UInt64(month), width: 2)
        append(UInt8(ascii: "-"))
        append(unsigned: UInt64(day), width: 2)
        append(UInt8(ascii: "T"))
        append(unsigned: UInt64(secondOfDay / 3600), width: 2)
        append(UInt8(ascii: ":"))
        append(unsigned: UInt64(secondOfDay / 60 % 60), width: 2)
        append(UInt8(ascii: ":"))
        append(unsigned: UInt64(secondOfDay % 60), width: 2)
        append(UInt8(ascii: "."))
    }

    /// Writes the bytes to standard output and empties the buffer.
    mutating func flush() {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(1, raw.baseAddress! + done, raw.count - done)
                if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { break }
            }
        }
        bytes.removeAll(keepingCapacity: true)
    }
}

/// Pads or cuts text to a column width.
func column(_ text: String, _ width: Int) -> String {
    text.count > width ? String(text.prefix(width - 1)) + "…" : text.padding(toLength: width, withPad: " ", startingAt: 0)
}

/// A number of bytes for people.
func byteCount(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// Prints projects, groups and trials as tables.
func printSummary(_ projection: Projection, trials selected: [Trial]? = nil) {
    let projects = projection.allProjects, groups = projection.allGroups, trials = selected ?? projection.allTrials
    print("projects: \(projects.count)")
    if !projects.isEmpty {
        print("  \(column("name", 24)) \(column("groups", 7)) \(column("trials", 7)) description")
        for p in projects { print("  \(column(p.name, 24)) \(column(String(p.groups.count), 7)) \(column(String(p.trials.count), 7)) \(p.description ?? "")") }
    }
    print("groups: \(groups.count)")
    if !groups.isEmpty {
        print("  \(column("uid", 14)) \(column("name", 20)) \(column("project", 20)) trials")
        for g in groups { print("  \(column(String(g.uid.prefix(12)), 14)) \(column(g.name, 20)) \(column(g.projectID, 20)) \(g.trials.count)") }
    }
    print(selected == nil ? "trials: \(trials.count)" : "trials: \(trials.count) of \(projection.allTrials.count) (selected)")
    if !trials.isEmpty {
        // What tells the runs of a sweep apart: the parameters whose values differ between them,
        // and the last value of each metric.
        let differing = Trial.differingParameters(trials)
        print("  \(column("uid", 20)) \(column("name", 16)) \(column("status", 13)) \(column("metrics", 8)) \(column("points", 9)) \(column("last step", 10)) \(column("last update", 28)) parameters that differ; last values")
        for t in trials {
            let points = t.metrics.values.reduce(0) { $0 + $1.count }
            let lastStep = t.metrics.values.compactMap { $0.lastStep?.intValue }.max().map(String.init)
                ?? t.metrics.values.compactMap(\.lastStep).last?.description ?? "-"
            let updated = t.lastChange.map(isoTime) ?? "-"
            let parameters = differing.compactMap { key in t.parameters[key].map { "\(key)=\(shortText($0))" } }
            let lasts = t.metrics.compactMap { name, series in series.last.map { "\(name)=\(shortText($0.value))" } }
            let details = (parameters + (parameters.isEmpty || lasts.isEmpty ? [] : [";"]) + lasts).joined(separator: " ")
            print("  \(column(t.shortID, 20)) \(column(t.name ?? "-", 16)) \(column(t.status.name, 13)) \(column(String(t.metrics.count), 8)) \(column(String(points), 9)) \(column(lastStep, 10)) \(column(updated, 28)) \(details)")
        }
    }
    printLosses(projection.acceptedLosses)
}

/// A value as a person reads it in a table: numbers as JSON writes them (4 significant digits
/// for doubles), strings without quotes.
func shortText(_ value: Value) -> String {
    switch value {
    case .string(let s): return s
    case .double(let d) where d.isFinite && d != 0 && (abs(d) >= 1e-3 && abs(d) < 1e6): return String(format: "%.4g", d)
    default: return JSON.encode(value)
    }
}

/// The losses a compaction was told to accept, one line each (nothing when there are none).
func printLosses(_ losses: [(hlc: HLC, text: String)]) {
    guard !losses.isEmpty else { return }
    print("accepted losses: \(losses.count)")
    for loss in losses { print("  \(isoTime(loss.hlc.seconds)) \(loss.text)") }
}
