#if canImport(Glibc)
import Glibc
#endif
import TrackLog

/// Compaction over the store's projection: replay, fold into a snapshot, publish (the mechanics
/// are the engine's `Compactor`).
extension Compactor {
    /// Compacts the database at `path`, waiting for another compaction to finish first.
    /// `progress` is called with the bytes of log replayed so far and the total.
    ///
    /// With `limits` (per stream, a segment base and byte offset), only what lies before them is
    /// folded into the snapshot and only segments wholly before them can be deleted; streams not
    /// listed are left as they are. Without `limits`, a database a consumer pins
    /// (`ConsumerPosition`: a SQL backend's buffer) is compacted up to the consumer's position,
    /// so that nothing it has not passed on is folded, whoever runs the compaction.
    ///
    /// Damage met while replaying (a frame that does not read, a gap in a stream's sequences)
    /// refuses the compaction with `corruptFrame`, since folding would delete the evidence. With
    /// `acceptLoss`, the damage is recorded as a `lossAccepted` event (kept in every later
    /// snapshot, shown by `verify`, `stats` and `summary`) and the compaction goes on.
    ///
    /// The previous generation (its MANIFEST as `MANIFEST.prev`, and its snapshot) is kept, and
    /// segments are deleted only below its watermarks: if the newest snapshot or MANIFEST is
    /// damaged later, readers open the previous one and replay the log from there.
    public static func compact(database path: String, upTo limits: [String: (base: UInt64, offset: Int64)]? = nil,
                               acceptLoss: Bool = false,
                               reporter: @escaping LogReporter = standardErrorReporter,
                               crashAt: CrashPoint? = nil, progress: ((Int64, Int64) -> Void)? = nil) throws(LogError) -> Report {
        let layout = DatabaseLayout(root: path)
        try layout.validate()
        let lock = try LogFile.open(layout.compactLockPath, flags: O_RDWR | O_CREAT)
        defer { lock.close() }
        try lock.lockExclusive()
        let before = try diskBytes(layout)

        // A consumer (a SQL backend's shipper) pins the log: nothing past its position is folded,
        // whoever compacts.
        let limits = limits ?? (ConsumerPosition.isPinned(path) ? ConsumerPosition.read(path) : nil)
        var materializer = try Materializer(database: path, reporter: reporter)
        try materializer.reload(upTo: limits) { done in progress?(done, before) }
        let damage = materializer.damage
        if !damage.isEmpty {
            let listing = damage.prefix(5).map { "\($0.message) [\($0.path)\($0.offset.map { " at byte \($0)" } ?? "")]" }.joined(separator: "; ")
            guard acceptLoss else {
                throw LogError(.corruptFrame, "compaction refused: the database is damaged (\(damage.count) problems: \(listing)\(damage.count > 5 ? "; ..." : "")), and compacting would fold over the damage and delete it. Run `track-replay verify`, save what you need, then compact with --accept-loss to record the loss and go on",
                               path: damage.first?.path, offset: damage.first?.offset)
            }
            // The loss becomes part of the history, so that every later reader still sees it.
            var options = WriterOptions()
            options.reporter = reporter
            let writer = try LogWriter.open(database: path, records: .track, options: options)
            do {
                let text = "compaction accepted \(damage.count) problems: " + damage.map { "\($0.message) [\($0.path)\($0.offset.map { " at byte \($0)" } ?? "")]" }.joined(separator: "; ")
                try writer.append(LogRecord.lossAccepted(String(text.utf8.prefix(Limits.stringBytesMax - 64)) ?? text.prefix(60_000).description))
                try writer.close()
            } catch {
                try? writer.close()
                throw error
            }
            materializer = try Materializer(database: path, reporter: { _ in })
            try materializer.reload(upTo: limits.map { limits in
                // The loss note is in a stream of its own, which the limits do not list.
                var all = limits
                for stream in layout.streamNames() where all[stream] == nil && stream == writer.streamName {
                    all[stream] = (UInt64.max, Int64.max)
                }
                return all
            })
        }
        // A stream that is gone (its loss accepted above) is no longer named.
        let watermarks = materializer.watermarks.filter { FileSystem.isDirectory(layout.streamDirectory($0.stream)) }
        let generation = materializer.snapshotGeneration + 1
        try FileSystem.createDirectory(layout.snapshotsDirectory)
        let name = DatabaseLayout.snapshotName(generation)
        let snapshotPath = layout.snapshotPath(name)
        let bytes = Snapshot.encode(materializer.projection, generation: generation)
        let temporary = snapshotPath + ".tmp"
        let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        if crashAt == .whileWritingSnapshot {
            try file.write(Array(bytes.prefix(bytes.count / 2)), at: 0)
            die()
        }
        try file.write(bytes, at: 0)
        try file.sync()
        file.close()
        try FileSystem.rename(temporary, to: snapshotPath)
        try FileSystem.syncDirectory(layout.snapshotsDirectory)
        // Read back what reached the file before it is published.
        let check = try LogFile.open(snapshotPath, flags: O_RDONLY)
        let written = try check.readAll()
        check.close()
        _ = try Snapshot.decode(written, path: snapshotPath)
        if crashAt == .afterSnapshotBeforeManifest { die() }

        // The generation this one was built from becomes the previous one; if that was already
        // the previous one (the newest was damaged), it stays so.
        if materializer.snapshotSource == .current {
            try copyAtomically(layout.manifestPath, to: layout.previousManifestPath, layout)
        }
        try writeManifest(Manifest(generation: generation, snapshotName: name, watermarks: watermarks), layout)
        if crashAt == .afterManifestBeforeDeletion { die() }

        let deleted = try removeStrayFiles(layout, holdingLock: true)
        return Report(bytesBefore: before, bytesAfter: try diskBytes(layout), segmentsDeleted: deleted,
                      snapshotBytes: Int64(bytes.count), generation: generation,
                      events: materializer.projection.eventCount, points: materializer.projection.pointCount)
    }


    /// A loaded generation: its MANIFEST, the projection of its snapshot, and where it came from.
    public struct Generation {
        /// The MANIFEST read.
        public var manifest: Manifest
        /// Its snapshot's state.
        public var projection: Projection
        /// `current` or `previous`.
        public var source: GenerationSource
    }

    /// The newest generation that reads back: `MANIFEST` and its snapshot, or, when either is
    /// damaged or missing, `MANIFEST.prev` and its snapshot, with a damage notice naming what is
    /// wrong. nil before the first compaction; throws when neither reads.
    public static func loadGeneration(_ layout: DatabaseLayout, reporter: LogReporter) throws(LogError) -> Generation? {
        func load(_ manifestPath: String) throws(LogError) -> (Manifest, Projection) {
            let file = try LogFile.open(manifestPath, flags: O_RDONLY)
            let manifest = try Manifest.decode(try file.readAll(), path: manifestPath)
            file.close()
            let path = layout.snapshotPath(manifest.snapshotName)
            guard FileSystem.exists(path) else {
                throw LogError(.corruptFile, "\(manifestPath) names snapshot \(manifest.snapshotName), which is missing", path: path)
            }
            let snapshot = try LogFile.open(path, flags: O_RDONLY)
            let bytes = try snapshot.readAll()
            snapshot.close()
            return (manifest, try Snapshot.decode(bytes, path: path))
        }
        let hasCurrent = FileSystem.exists(layout.manifestPath), hasPrevious = FileSystem.exists(layout.previousManifestPath)
        guard hasCurrent || hasPrevious else { return nil }
        var firstError: LogError?
        if hasCurrent {
            do {
                let (manifest, projection) = try load(layout.manifestPath)
                return Generation(manifest: manifest, projection: projection, source: .current)
            } catch {
                firstError = error
            }
        }
        guard hasPrevious else { throw firstError! }
        do {
            let (manifest, projection) = try load(layout.previousManifestPath)
            let why = firstError.map { "\($0)" } ?? "MANIFEST is missing"
            reporter(LogNotice(kind: .generationFallback, message: "the newest compaction generation cannot be used (\(why)); reading the previous one (generation \(manifest.generation)) and the log after it instead. Compact again to write a new generation",
                               path: firstError?.path ?? layout.manifestPath, offset: firstError?.offset))
            return Generation(manifest: manifest, projection: projection, source: .previous)
        } catch {
            if let firstError {
                throw LogError(firstError.code, "\(firstError.message); the previous generation cannot be used either: \(error.message)", path: firstError.path, offset: firstError.offset)
            }
            throw error
        }
    }
}
