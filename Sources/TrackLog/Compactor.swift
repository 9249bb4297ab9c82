#if canImport(Glibc)
import Glibc
#endif

/// Compaction: writes a snapshot of the projections with every stream's watermark, publishes it
/// by atomically replacing `MANIFEST`, then deletes sealed segments wholly below the watermarks.
/// Writers keep appending meanwhile (they never write to sealed segments). A crash at any point
/// leaves either the old or the new MANIFEST valid; stray files are removed afterwards.
///
/// Steps and what a crash after each leaves (each has a test):
/// 1. snapshot written to `snapshots/<gen>.snap.tmp`: a stray temporary file;
/// 2. renamed to `<gen>.snap`: a snapshot no MANIFEST refers to (removed as stray);
/// 3. MANIFEST replaced: the new state is published; old segments still there (deleted later);
/// 4. segments below the watermarks and old snapshots deleted.
public enum Compactor {
    /// Where a test may stop compaction, as if the process were killed.
    public enum CrashPoint: String, Sendable, CaseIterable {
        case whileWritingSnapshot, afterSnapshotBeforeManifest, afterManifestBeforeDeletion
    }

    /// What a compaction did.
    public struct Report: Sendable {
        /// Bytes of segments, indices and snapshots before.
        public var bytesBefore: Int64
        /// The same after.
        public var bytesAfter: Int64
        /// Segments deleted.
        public var segmentsDeleted: Int
        /// The new snapshot's size.
        public var snapshotBytes: Int64
        /// The new MANIFEST generation.
        public var generation: UInt64
        /// Events in the snapshot.
        public var events: Int
        /// Metric points in the snapshot.
        public var points: Int
    }

    /// Compacts the database at `path`, waiting for another compaction to finish first.
    /// `progress` is called with the bytes of log replayed so far and the total.
    ///
    /// With `limits` (per stream, a segment base and byte offset), only what lies before them is
    /// folded into the snapshot and only segments wholly before them can be deleted; streams not
    /// listed are left as they are. A buffer is compacted up to what it has shipped so.
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
            let writer = try LogWriter.open(database: path, options: options)
            do {
                let text = "compaction accepted \(damage.count) problems: " + damage.map { "\($0.message) [\($0.path)\($0.offset.map { " at byte \($0)" } ?? "")]" }.joined(separator: "; ")
                try writer.append(.lossAccepted(String(text.utf8.prefix(Limits.stringBytesMax - 64)) ?? text.prefix(60_000).description))
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

    /// Copies `from` to `to` through a temporary file, fsynced, renamed and the directory fsynced.
    static func copyAtomically(_ from: String, to: String, _ layout: DatabaseLayout) throws(LogError) {
        let source = try LogFile.open(from, flags: O_RDONLY)
        let bytes = try source.readAll()
        source.close()
        let temporary = to + ".tmp"
        let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(bytes, at: 0)
        try file.sync()
        file.close()
        try FileSystem.rename(temporary, to: to)
        try FileSystem.syncDirectory(layout.root)
    }

    /// Which MANIFEST a state was loaded from.
    public enum GenerationSource: Sendable, Equatable {
        /// No compaction yet: the log from its start.
        case none
        /// `MANIFEST` and its snapshot.
        case current
        /// `MANIFEST.prev` and its snapshot, because the newest generation was damaged or missing.
        case previous
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

    private static func die() -> Never {
        kill(getpid(), SIGKILL)
        while true { pause() }
    }

    /// The current MANIFEST (with `previous`, `MANIFEST.prev`), or nil when there is none.
    public static func readManifest(_ layout: DatabaseLayout, previous: Bool = false) throws(LogError) -> Manifest? {
        let path = previous ? layout.previousManifestPath : layout.manifestPath
        guard FileSystem.exists(path) else { return nil }
        let file = try LogFile.open(path, flags: O_RDONLY)
        defer { file.close() }
        return try Manifest.decode(try file.readAll(), path: path)
    }

    static func writeManifest(_ manifest: Manifest, _ layout: DatabaseLayout) throws(LogError) {
        let temporary = layout.manifestPath + ".tmp"
        let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(manifest.encode(), at: 0)
        try file.sync()
        file.close()
        try FileSystem.rename(temporary, to: layout.manifestPath)
        try FileSystem.syncDirectory(layout.root)
    }

    /// Removes what an interrupted or finished compaction leaves: temporary files, snapshots the
    /// MANIFEST does not name, and sealed segments wholly below the watermarks. Does nothing
    /// while another process compacts. Returns how many segments it deleted.
    @discardableResult
    public static func removeStrayFiles(database path: String) throws(LogError) -> Int {
        let layout = DatabaseLayout(root: path)
        guard layout.exists else { return 0 }
        let lock = try LogFile.open(layout.compactLockPath, flags: O_RDWR | O_CREAT)
        defer { lock.close() }
        guard try lock.tryLockExclusive() else { return 0 }
        return try removeStrayFiles(layout, holdingLock: true)
    }

    private static func removeStrayFiles(_ layout: DatabaseLayout, holdingLock: Bool) throws(LogError) -> Int {
        precondition(holdingLock)
        for name in FileSystem.list(layout.root) where name.hasPrefix("MANIFEST.") && name.hasSuffix(".tmp") {
            try FileSystem.remove(layout.root + "/" + name)
        }
        // An unpublished stream whose writer died (an import cut short) was never visible.
        for name in layout.pendingStreamNames() {
            guard let lock = try? LogFile.open(layout.lockPath(name), flags: O_RDWR) else { continue }
            defer { lock.close() }
            if try lock.tryLockExclusive() { try FileSystem.removeDirectory(layout.streamDirectory(name)) }
        }
        // Nothing is deleted on the word of a MANIFEST that does not read: it may be the only
        // record of what a snapshot or a segment holds.
        let current: Manifest?, previous: Manifest?
        do {
            current = try readManifest(layout)
            previous = try readManifest(layout, previous: true)
        } catch {
            return 0
        }
        let kept = Set([current?.snapshotName, previous?.snapshotName].compactMap { $0 })
        for name in FileSystem.list(layout.snapshotsDirectory) where !kept.contains(name) {
            try FileSystem.remove(layout.snapshotPath(name))
        }
        // Segments go once two generations cover them: the previous generation's watermarks.
        guard let previous else { return 0 }
        var deleted = 0
        for watermark in previous.watermarks {
            let covered = min(watermark.sequence, current?.watermarks.first { $0.stream == watermark.stream }?.sequence ?? watermark.sequence)
            let bases = layout.segmentBases(watermark.stream)
            for (i, base) in bases.enumerated() where i + 1 < bases.count && bases[i + 1] <= covered {
                // Every event of this segment is below the next segment's base, so in both snapshots.
                try FileSystem.remove(layout.indexPath(watermark.stream, base: base))
                try FileSystem.remove(layout.segmentPath(watermark.stream, base: base))
                deleted += 1
            }
        }
        return deleted
    }

    /// Bytes of the database's segments, indices, snapshots and MANIFEST.
    public static func diskBytes(_ layout: DatabaseLayout) throws(LogError) -> Int64 {
        var total: Int64 = 0
        func add(_ path: String) throws(LogError) {
            guard let file = try? LogFile.open(path, flags: O_RDONLY) else { return }
            defer { file.close() }
            total += try file.size()
        }
        for stream in layout.streamNames() {
            for name in FileSystem.list(layout.streamDirectory(stream)) where name.hasSuffix(".log") || name.hasSuffix(".idx") {
                try add(layout.streamDirectory(stream) + "/" + name)
            }
        }
        for name in FileSystem.list(layout.snapshotsDirectory) { try add(layout.snapshotPath(name)) }
        try add(layout.manifestPath)
        try add(layout.previousManifestPath)
        return total
    }
}
