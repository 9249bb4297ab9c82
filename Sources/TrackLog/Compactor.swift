#if canImport(Glibc)
import Glibc
#endif

/// Compaction's mechanics: snapshot files written atomically, `MANIFEST` and `MANIFEST.prev`
/// published by atomic replacement, sealed segments wholly below two generations' watermarks
/// deleted, stray files removed. What a snapshot holds, and `compact` itself, belong to the store
/// module (TrackStore), which folds the events into its projection.
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

        /// A report of these figures.
        public init(bytesBefore: Int64, bytesAfter: Int64, segmentsDeleted: Int, snapshotBytes: Int64, generation: UInt64, events: Int, points: Int) {
            self.bytesBefore = bytesBefore
            self.bytesAfter = bytesAfter
            self.segmentsDeleted = segmentsDeleted
            self.snapshotBytes = snapshotBytes
            self.generation = generation
            self.events = events
            self.points = points
        }
    }

    /// Copies `from` to `to` through a temporary file, fsynced, renamed and the directory fsynced.
    package static func copyAtomically(_ from: String, to: String, _ layout: DatabaseLayout) throws(LogError) {
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


    package static func die() -> Never {
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

    package static func writeManifest(_ manifest: Manifest, _ layout: DatabaseLayout) throws(LogError) {
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

    package static func removeStrayFiles(_ layout: DatabaseLayout, holdingLock: Bool) throws(LogError) -> Int {
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
