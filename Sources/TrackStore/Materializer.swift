#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import TrackLog

/// The damage notices a reader met, shared with its reporter closure.
final class DamageList: Sendable {
    private let list = Mutex<[LogNotice]>([])
    func add(_ notice: LogNotice) { list.withLock { $0.append(notice) } }
    var notices: [LogNotice] { list.withLock { $0 } }
}

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
        let found = DamageList()
        self.found = found
        self.reporter = { notice in
            if notice.kind == .damage { found.add(notice) }
            reporter(notice)
        }
        tailer = try LogTailer(database: path, records: .track, reporter: self.reporter)
    }

    private let found: DamageList

    /// Every damage notice met while reading (damaged frames skipped, sequence gaps, durable
    /// bytes that do not read back), oldest first, each with its file and offset: the API's way
    /// to learn of damage, besides the reporter.
    public var damage: [LogNotice] { found.notices }

    /// Reports events missing from a stream: sequence numbers must run on from 0 (or the
    /// snapshot's watermark) without a gap, across segments.
    private func checkContinuity(_ stream: String, from: UInt64, header: FrameHeader, path: String, offset: Int64) {
        guard header.firstSequence > from else { return }
        reporter(LogNotice(kind: .damage, message: "stream '\(stream)' jumps from sequence \(from) to \(header.firstSequence): events \(from)..<\(header.firstSequence) are missing (a deleted, truncated or damaged segment before this frame)",
                           path: path, offset: offset))
    }

    private var loaded = false
    /// The generation of the snapshot the state started from (0: none).
    public private(set) var snapshotGeneration: UInt64 = 0
    /// Which MANIFEST the state started from (`previous` when the newest was damaged).
    public private(set) var snapshotSource: Compactor.GenerationSource = .none

    /// Applies the frames appended since the last call; returns the objects that changed, with
    /// their revision tags before and after. The first call loads the snapshot, if any.
    /// Frames of metric points passed over by a `smartReload(deferringPoints: true)`, applied
    /// by the next full one. Points commute with everything else, so applying them late gives
    /// the same state.
    private var deferred: [(frame: LogTailer.SkippedFrame, from: UInt64)] = []

    /// How many frames of points wait to be applied.
    public var deferredFrameCount: Int { deferred.count }

    /// `progress` is called with the bytes of log read so far. With `deferringPoints`, frames
    /// holding only metric points are not decoded now (for callers that need to know which
    /// objects exist, not their metrics); the next call without it applies them.
    @discardableResult
    public func smartReload(deferringPoints: Bool = false, progress: ((Int64) -> Void)? = nil) throws(LogError) -> [ObjectChange] {
        try smartReload(reloadingIfLost: true, deferringPoints: deferringPoints, progress: progress)
    }

    private func applyDeferred() throws(LogError) {
        guard !deferred.isEmpty else { return }
        let layout = DatabaseLayout(root: database)
        var files: [String: LogFile] = [:]
        defer { for f in files.values { f.close() } }
        for (skipped, from) in deferred {
            let path = layout.segmentPath(skipped.stream, base: skipped.base)
            let file: LogFile
            if let open = files[path] {
                file = open
            } else {
                guard FileSystem.exists(path) else {
                    // Compacted away meanwhile: the snapshot holds it.
                    deferred = []
                    try reload()
                    return
                }
                file = try LogFile.open(path, flags: O_RDONLY)
                files[path] = file
            }
            let bytes = try file.read(at: skipped.offset, count: skipped.header.frameBytes)
            let result = bytes.withUnsafeBytes { raw in Result { () throws(LogError) in try Frame.decode(raw, at: skipped.offset, path: path, records: .track) } }
            projection.apply(try result.get(), stream: skipped.stream, from: from)
        }
        deferred = []
    }

    private func smartReload(reloadingIfLost: Bool, deferringPoints: Bool = false, limits: [String: (base: UInt64, offset: Int64)]? = nil,
                             progress: ((Int64) -> Void)? = nil) throws(LogError) -> [ObjectChange] {
        if !loaded { try loadSnapshot() }
        if !deferringPoints { try applyDeferred() }
        var bytesRead: Int64 = 0
        let skipping: ((FrameHeader) -> Bool)? = deferringPoints ? { $0.flags & FrameHeader.flagPointsOnly != 0 } : nil
        let layout = DatabaseLayout(root: database)
        try tailer.poll(skipping: skipping, onSkip: { [self] skipped in
            let from = applied[skipped.stream] ?? 0
            guard skipped.header.endSequence > from else { return }
            checkContinuity(skipped.stream, from: from, header: skipped.header, path: layout.segmentPath(skipped.stream, base: skipped.base), offset: skipped.offset)
            deferred.append((skipped, from))
            applied[skipped.stream] = skipped.header.endSequence
        }, upTo: limits) { located in
            let from = applied[located.stream] ?? 0
            let header = located.frame.header
            bytesRead += Int64(header.frameBytes)
            progress?(bytesRead)
            guard header.endSequence > from else { return }
            checkContinuity(located.stream, from: from, header: header, path: layout.segmentPath(located.stream, base: located.segmentBase), offset: located.offset)
            projection.apply(located.frame, stream: located.stream, from: from)
            applied[located.stream] = header.endSequence
        }
        if tailer.positionLost, reloadingIfLost,
           (try? Compactor.readManifest(DatabaseLayout(root: database)))??.generation ?? 0 == snapshotGeneration {
            // Segments removed by the compaction this state started from: its snapshot covers them.
            tailer.clearPositionLost()
        }
        if tailer.positionLost && reloadingIfLost {
            // Compaction removed frames this state had not read; they are in the new snapshot.
            let before = Dictionary(uniqueKeysWithValues: projection.allTrials.map { ($0.uid, $0.updateCount) })
            try reload()
            return projection.allTrials.compactMap { t in
                before[t.uid] == t.updateCount ? nil : ObjectChange(kind: .trial, uid: t.uid, previousTag: before[t.uid], currentTag: t.updateCount)
            }
        }
        return projection.takeChanges()
    }

    /// Discards the state and rebuilds it: the current snapshot, then the log after it.
    /// `progress` is called with the bytes of log read so far.
    public func reload(progress: ((Int64) -> Void)? = nil) throws(LogError) {
        try reload(upTo: nil, progress: progress)
    }

    /// `reload()`, reading no stream past `limits` (segment base and byte offset; streams not
    /// listed stay where the snapshot left them; nil: everything): the state as of those
    /// positions, which `watermarks` then name.
    public func reload(upTo limits: [String: (base: UInt64, offset: Int64)]?, progress: ((Int64) -> Void)? = nil) throws(LogError) {
        try loadSnapshot()
        _ = try smartReload(reloadingIfLost: false, limits: limits, progress: progress)
        _ = projection.takeChanges()
    }

    /// Where replay stands in each stream: events below `sequence` are applied.
    public var watermarks: [StreamWatermark] {
        tailer.position.map { stream, position in
            StreamWatermark(stream: stream, sequence: applied[stream] ?? 0, base: position.base, offset: position.offset)
        }.sorted { $0.stream < $1.stream }
    }

    private func loadSnapshot() throws(LogError) {
        let layout = DatabaseLayout(root: database)
        deferred = []
        projection = Projection()
        applied = [:]
        snapshotGeneration = 0
        snapshotSource = .none
        var start: [StreamWatermark] = []
        if let generation = try Compactor.loadGeneration(layout, reporter: reporter) {
            let manifest = generation.manifest
            projection = generation.projection
            for w in manifest.watermarks { applied[w.stream] = w.sequence }
            start = manifest.watermarks
            snapshotGeneration = manifest.generation
            snapshotSource = generation.source
            // A stream the MANIFEST names must still be there: its events after the watermark
            // (and the segments the snapshot does not cover) live nowhere else.
            for w in manifest.watermarks where !FileSystem.isDirectory(layout.streamDirectory(w.stream)) {
                reporter(LogNotice(kind: .damage, message: "stream '\(w.stream)', which the MANIFEST (generation \(manifest.generation)) names, is missing: every event it held from sequence \(w.sequence) on is lost",
                                   path: layout.streamDirectory(w.stream), offset: nil))
            }
        }
        tailer = try LogTailer(database: database, records: .track, start: start, reporter: reporter)
        loaded = true
        _ = projection.takeChanges()
    }
}
