/// Replays a database's events into a `Projection` and keeps it current: `smartReload()` reads
/// only the frames appended since the previous call (its cost follows the new data, not the
/// total) and says which objects changed; `reload()` discards everything and replays from the
/// start. Not thread-safe: one owner calls it (the backend does so under its lock).
public final class Materializer: @unchecked Sendable {
    /// The database read.
    public let database: String
    /// The state built so far.
    public private(set) var projection = Projection()
    private var tailer: LogTailer
    /// Per stream, the sequence number of the next event not yet applied.
    public private(set) var applied: [String: UInt64] = [:]
    private let reporter: LogReporter

    /// A materializer of the database at `path`, empty until the first reload.
    public init(database path: String, reporter: @escaping LogReporter = standardErrorReporter) throws(LogError) {
        database = path
        self.reporter = reporter
        tailer = try LogTailer(database: path, reporter: reporter)
    }

    /// Applies the frames appended since the last call; returns the objects that changed, with
    /// their revision tags before and after.
    @discardableResult
    public func smartReload() throws(LogError) -> [ObjectChange] {
        try tailer.poll { located in
            let from = applied[located.stream] ?? 0
            let header = located.frame.header
            guard header.endSequence > from else { return }
            projection.apply(located.frame, stream: located.stream, from: from)
            applied[located.stream] = header.endSequence
        }
        return projection.takeChanges()
    }

    /// Discards the state and replays the whole database.
    public func reload() throws(LogError) {
        projection = Projection()
        applied = [:]
        tailer = try LogTailer(database: database, reporter: reporter)
        try smartReload()
        _ = projection.takeChanges()
    }
}
