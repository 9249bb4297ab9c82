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
    public static func compact(database path: String, upTo limits: [String: (base: UInt64, offset: Int64)]? = nil,
                               reporter: @escaping LogReporter = standardErrorReporter,
                               crashAt: CrashPoint? = nil, progress: ((Int64, Int64) -> Void)? = nil) throws(LogError) -> Report {
        let layout = DatabaseLayout(root: path)
        try layout.validate()
        let lock = try LogFile.open(layout.compactLockPath, flags: O_RDWR | O_CREAT)
        defer { lock.close() }
        try lock.lockExclusive()
        let before = try diskBytes(layout)

        let materializer = try Materializer(database: path, reporter: reporter)
        try materializer.reload(upTo: limits) { done in progress?(done, before) }
        let watermarks = materializer.watermarks
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
        if crashAt == .afterSnapshotBeforeManifest { die() }

        try writeManifest(Manifest(generation: generation, snapshotName: name, watermarks: watermarks), layout)
        if crashAt == .afterManifestBeforeDeletion { die() }

        let deleted = try removeStrayFiles(layout, holdingLock: true)
        return Report(bytesBefore: before, bytesAfter: try diskBytes(layout), segmentsDeleted: deleted,
                      snapshotBytes: Int64(bytes.count), generation: generation,
                      events: materializer.projection.eventCount, points: materializer.projection.pointCount)
    }

    private static func die() -> Never {
        kill(getpid(), SIGKILL)
        while true { pause() }
    }

    /// The current MANIFEST, or nil when the database was never compacted.
    public static func readManifest(_ layout: DatabaseLayout) throws(LogError) -> Manifest? {
        guard FileSystem.exists(layout.manifestPath) else { return nil }
        let file = try LogFile.open(layout.manifestPath, flags: O_RDONLY)
        defer { file.close() }
        return try Manifest.decode(try file.readAll(), path: layout.manifestPath)
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
        let manifest = try readManifest(layout)
        for name in FileSystem.list(layout.root) where name.hasPrefix("MANIFEST.") && name.hasSuffix(".tmp") {
            try FileSystem.remove(layout.root + "/" + name)
        }
        for name in FileSystem.list(layout.snapshotsDirectory) where name != manifest?.snapshotName {
            try FileSystem.remove(layout.snapshotPath(name))
        }
        guard let manifest else { return 0 }
        var deleted = 0
        for watermark in manifest.watermarks {
            let bases = layout.segmentBases(watermark.stream)
            for (i, base) in bases.enumerated() where i + 1 < bases.count && bases[i + 1] <= watermark.sequence {
                // Every event of this segment is below the next segment's base, so in the snapshot.
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
        return total
    }
}
