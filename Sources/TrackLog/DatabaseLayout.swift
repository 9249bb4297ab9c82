#if canImport(Glibc)
import Glibc
#endif

/// Where every file of a database lives; all file names are made here (docs/FORMAT.md, "Layout").
///
/// ```
/// <db>/FORMAT                                  marks the directory as an event log, with its version
/// <db>/ATOMIC.lock                             short database-wide lock of atomic operations
/// <db>/MANIFEST                                the current snapshot and each stream's watermark
/// <db>/MANIFEST.prev                           the generation before, a fallback if the newest is damaged
/// <db>/COMPACT.lock                            held while compacting
/// <db>/snapshots/<20-digit generation>.snap    snapshots of the projections
/// <db>/streams/<stream>/LOCK                   held (flock) by the stream's one writer
/// <db>/streams/<stream>/SYNCED                 how far the active segment is known durable
/// <db>/streams/<stream>/<20-digit base>.log    segments, named by their first sequence number
/// <db>/streams/<stream>/<20-digit base>.idx    index of a sealed segment
/// ```
public struct DatabaseLayout: Sendable {
    /// The database directory.
    public let root: String

    /// The layout of the database at `root`.
    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// The format marker file.
    public var formatPath: String { root + "/FORMAT" }
    /// The database-wide lock of atomic operations.
    public var atomicLockPath: String { root + "/ATOMIC.lock" }
    /// The published compaction state.
    public var manifestPath: String { root + "/MANIFEST" }
    /// The generation before it, kept until the next one is verified (docs/FORMAT.md, "Compaction").
    public var previousManifestPath: String { root + "/MANIFEST.prev" }
    /// The lock compaction holds (and stray-file removal tries).
    public var compactLockPath: String { root + "/COMPACT.lock" }
    /// The directory of snapshots.
    public var snapshotsDirectory: String { root + "/snapshots" }
    /// A snapshot file.
    public func snapshotPath(_ name: String) -> String { snapshotsDirectory + "/" + name }
    /// `00000000000000000003.snap` for generation 3.
    public static func snapshotName(_ generation: UInt64) -> String { padded(generation) + ".snap" }

    /// The directory of all streams.
    public var streamsDirectory: String { root + "/streams" }
    /// A stream's directory.
    public func streamDirectory(_ stream: String) -> String { streamsDirectory + "/" + stream }
    /// A stream's writer lock file.
    public func lockPath(_ stream: String) -> String { streamDirectory(stream) + "/LOCK" }
    /// How far a stream's active segment is known durable (`SyncMarker`).
    public func syncMarkerPath(_ stream: String) -> String { streamDirectory(stream) + "/SYNCED" }
    /// A segment's file.
    public func segmentPath(_ stream: String, base: UInt64) -> String { streamDirectory(stream) + "/" + DatabaseLayout.segmentName(base) }
    /// A segment's index file.
    public func indexPath(_ stream: String, base: UInt64) -> String { streamDirectory(stream) + "/" + DatabaseLayout.indexName(base) }

    /// The text of the format marker.
    public static let formatMarker = "swift-track event log\nformat 1\n"

    /// `00000000000000000042.log` for base 42.
    public static func segmentName(_ base: UInt64) -> String { padded(base) + ".log" }
    /// `00000000000000000042.idx` for base 42.
    public static func indexName(_ base: UInt64) -> String { padded(base) + ".idx" }

    private static func padded(_ n: UInt64) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    /// The base sequence of a segment file name, or nil if `name` is not one.
    public static func segmentBase(_ name: String) -> UInt64? {
        guard name.hasSuffix(".log"), name.count == 24 else { return nil }
        return UInt64(name.dropLast(4))
    }

    /// The names of the published streams, sorted: readers and writers see these. A stream
    /// still being written as one unit (`pendingStreamPrefix`) is not among them.
    public func streamNames() -> [String] {
        FileSystem.list(streamsDirectory).filter { !$0.hasPrefix(".") && FileSystem.isDirectory(streamDirectory($0)) }
    }

    /// The prefix of a stream written as one unit (an import) and not yet published: no reader
    /// sees it until `LogWriter.publish()` renames it to its name without the prefix.
    public static let pendingStreamPrefix = ".pending-"

    /// The names of unpublished streams (published ones never start with a dot), sorted.
    public func pendingStreamNames() -> [String] {
        FileSystem.list(streamsDirectory).filter { $0.hasPrefix(DatabaseLayout.pendingStreamPrefix) && FileSystem.isDirectory(streamDirectory($0)) }
    }

    /// The base sequences of a stream's segments, ascending.
    public func segmentBases(_ stream: String) -> [UInt64] {
        FileSystem.list(streamDirectory(stream)).compactMap(DatabaseLayout.segmentBase).sorted()
    }

    /// True when `root` holds an event log (its format marker).
    public var exists: Bool { FileSystem.exists(formatPath) }

    /// Creates the directories and the format marker if missing. Refuses a directory that holds
    /// other files and no format marker: it is not a database, and nothing is written into it.
    public func create() throws(LogError) {
        // Another process may be creating the database right now: only foreign files refuse it.
        let ours: (String) -> Bool = { name in
            ["streams", "snapshots", "ATOMIC.lock", "COMPACT.lock"].contains(name) || name.hasPrefix("FORMAT") || name.hasPrefix("MANIFEST")
        }
        if FileSystem.isDirectory(root) && !exists && FileSystem.list(root).contains(where: { !ours($0) }) {
            throw LogError(.notADatabase, "'\(root)' is a directory with other files in it and no FORMAT file: not a swift-track database; give a new or empty directory", path: root)
        }
        if FileSystem.exists(root) && !FileSystem.isDirectory(root) {
            throw LogError(.notADatabase, "'\(root)' is a file, not a database directory", path: root)
        }
        try FileSystem.createDirectory(streamsDirectory)
        if !FileSystem.exists(formatPath) {
            // Several processes may create the database at once: each writes its own temporary
            // file and renames it into place; the marker's content is the same whoever wins.
            let temporary = formatPath + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
            let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.write(Array(DatabaseLayout.formatMarker.utf8), at: 0)
            try file.sync()
            file.close()
            try FileSystem.rename(temporary, to: formatPath)
            try FileSystem.syncDirectory(root)
        }
    }

    /// Checks that `root` is an event-log database of a format this build reads.
    public func validate() throws(LogError) {
        guard FileSystem.isDirectory(root) else {
            if FileSystem.exists(root) {
                throw LogError(.notADatabase, "'\(root)' is a file, not a database: a swift-track database is a directory", path: root)
            }
            throw LogError(.notADatabase, "no database at '\(root)': the directory does not exist", path: root)
        }
        guard exists else {
            throw LogError(.notADatabase, "'\(root)' is not a swift-track event log: it has no FORMAT file", path: root)
        }
        let file = try LogFile.open(formatPath, flags: O_RDONLY)
        defer { file.close() }
        let text = String(decoding: try file.readAll(), as: UTF8.self)
        guard text == DatabaseLayout.formatMarker else {
            throw LogError(.notADatabase, "'\(root)' has a FORMAT file of an unknown format: \(text.prefix(60).debugDescription)", path: formatPath)
        }
    }
}
