#if canImport(Glibc)
import Glibc
#endif

/// Opening a stream for writing: checks every sealed segment's index, scans the active
/// (last) segment, cuts a torn tail, reports damage, and finds where appending resumes.
///
/// Cases (each has a test):
/// - no segment yet: a new segment at sequence 0;
/// - a sealed segment whose index is missing, damaged or stale: the index is rebuilt, with a notice;
/// - a torn tail in the active segment: cut off at the end of the last valid frame, with a notice;
/// - damage before the tail of the active segment: reported; the segment is sealed as it is and
///   appending continues in a new segment, so valid frames after the damage are never overwritten;
/// - an active segment whose header never reached the disk (no frames): rewritten.
enum StreamRecovery {
    struct Result {
        var nextSequence: UInt64
        var lastHLC: HLC
        var activeSegment: LogFile
        var activeBase: UInt64
        var activeSize: Int64
        var activeFrames: [FrameLocation]
        var activeFrameSubjects: [[String]]
    }

    static func recover(layout: DatabaseLayout, stream: String, records: any RecordCodec, reporter: LogReporter) throws(LogError) -> Result {
        let bases = layout.segmentBases(stream)
        var nextSequence: UInt64 = 0
        var lastHLC = HLC.zero
        for base in bases.dropLast() {
            let index = try loadOrRebuildIndex(layout: layout, stream: stream, base: base, records: records, reporter: reporter)
            if let last = index.entries.last?.location.header {
                nextSequence = max(nextSequence, last.endSequence)
                lastHLC = max(lastHLC, last.maxHLC)
            }
            nextSequence = max(nextSequence, base)
        }
        // Read before the segment: what the marker says durable was written before it.
        let marker = SyncMarker.read(layout: layout, stream: stream, reporter: reporter)
        guard let activeBase = bases.last else {
            if let marker, marker.nextSequence > 0 {
                // Every segment is gone, yet the marker says events were durable.
                reporter(LogNotice(kind: .damage, message: "the stream has no segment, but its sync marker says events up to sequence \(marker.nextSequence) were durable: events 0..<\(marker.nextSequence) are lost; writing continues after them",
                                   path: layout.streamDirectory(stream), offset: nil))
                let (file, size) = try createSegment(layout: layout, stream: stream, base: marker.nextSequence)
                return Result(nextSequence: marker.nextSequence, lastHLC: lastHLC, activeSegment: file, activeBase: marker.nextSequence, activeSize: size,
                              activeFrames: [], activeFrameSubjects: [])
            }
            let (file, size) = try createSegment(layout: layout, stream: stream, base: 0)
            return Result(nextSequence: 0, lastHLC: lastHLC, activeSegment: file, activeBase: 0, activeSize: size, activeFrames: [], activeFrameSubjects: [])
        }
        let path = layout.segmentPath(stream, base: activeBase)
        let file = try LogFile.open(path, flags: O_RDWR)
        let bytes = try file.readAll()
        let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: path) }
        var subjects: [[String]] = []
        for location in scan.frames {
            let frame = bytes.withUnsafeBytes { raw in
                try? Frame.decode(UnsafeRawBufferPointer(rebasing: raw[Int(location.offset)..<Int(location.endOffset)]), at: location.offset, path: path, records: records)
            }
            subjects.append(frame?.subjects ?? [])
            nextSequence = max(nextSequence, location.header.endSequence)
            lastHLC = max(lastHLC, location.header.maxHLC)
        }
        nextSequence = max(nextSequence, activeBase)
        for damage in scan.damage {
            reporter(LogNotice(kind: .damage, message: "\(damage.length) damaged bytes before the tail (\(damage.reason)); they are kept and skipped, the segment is sealed and writing continues in a new one",
                               path: path, offset: damage.offset))
        }
        // The durable-prefix rule: bytes the marker says were fsynced are never a torn tail.
        var durableLost = false
        if let marker, marker.segmentBase > activeBase {
            durableLost = true
            reporter(LogNotice(kind: .damage, message: "segment \(DatabaseLayout.segmentName(marker.segmentBase)), which the sync marker says held durable events up to sequence \(marker.nextSequence), is missing: events \(max(nextSequence, activeBase))..<\(marker.nextSequence) are lost; writing continues in a new segment",
                               path: layout.segmentPath(stream, base: marker.segmentBase), offset: nil))
        } else if let marker, marker.segmentBase == activeBase, marker.durableBytes > scan.validEnd {
            durableLost = true
            let lost = marker.nextSequence > nextSequence ? "events \(nextSequence)..<\(marker.nextSequence) are lost" : "events may be lost"
            reporter(LogNotice(kind: .damage, message: "bytes \(scan.validEnd)..<\(marker.durableBytes) were fsynced (sync marker) but do not read back (\(scan.tailReason ?? (scan.fileSize < marker.durableBytes ? "the segment is only \(scan.fileSize) bytes long" : "unreadable"))): damage to durable data, not a torn tail; \(lost). The bytes are kept, the segment is sealed and writing continues in a new one",
                               path: path, offset: scan.validEnd))
        }
        if let marker, durableLost { nextSequence = max(nextSequence, marker.nextSequence) }
        var headerDamaged = false
        if case .failure(let error) = scan.header, !durableLost {
            if scan.frames.isEmpty && scan.damage.isEmpty {
                // The segment was created but its header (and anything else) never fully reached the disk.
                if scan.fileSize > 0 {
                    reporter(LogNotice(kind: .tornTailCut, message: "segment header incomplete (\(error.message)); the segment is rewritten empty", path: path, offset: 0))
                }
                try file.truncate(to: 0)
                try file.write(SegmentHeader(baseSequence: activeBase).encode(), at: 0)
                try file.sync()
                return Result(nextSequence: nextSequence, lastHLC: lastHLC, activeSegment: file, activeBase: activeBase,
                              activeSize: Int64(SegmentHeader.sizeBytes), activeFrames: [], activeFrameSubjects: [])
            }
            headerDamaged = true
            reporter(LogNotice(kind: .damage, message: "segment header damaged (\(error.message)); its frames are still read, writing continues in a new segment", path: path, offset: 0))
        }
        if scan.tornTailBytes > 0 && !durableLost {
            reporter(LogNotice(kind: .tornTailCut, message: "cut a torn tail of \(scan.tornTailBytes) bytes (\(scan.tailReason ?? "incomplete frame")); the frames before it are intact",
                               path: path, offset: scan.validEnd))
            try file.truncate(to: scan.validEnd)
            try file.sync()
        }
        if !scan.damage.isEmpty || headerDamaged || durableLost {
            try writeIndex(index(frames: scan.frames, subjects: subjects, base: activeBase, size: durableLost ? scan.fileSize : scan.validEnd), path: layout.indexPath(stream, base: activeBase))
            file.close()
            let (fresh, size) = try createSegment(layout: layout, stream: stream, base: nextSequence)
            return Result(nextSequence: nextSequence, lastHLC: lastHLC, activeSegment: fresh, activeBase: nextSequence, activeSize: size,
                          activeFrames: [], activeFrameSubjects: [])
        }
        // A stale index of the active segment (from an earlier seal attempt) would mislead readers.
        try FileSystem.remove(layout.indexPath(stream, base: activeBase))
        // What the previous writer left in the page cache becomes durable before it is marked so.
        try file.sync()
        return Result(nextSequence: nextSequence, lastHLC: lastHLC, activeSegment: file, activeBase: activeBase, activeSize: scan.validEnd,
                      activeFrames: scan.frames, activeFrameSubjects: subjects)
    }

    /// The index of frames whose subjects are known.
    static func index(frames: [FrameLocation], subjects: [[String]], base: UInt64, size: Int64) -> SegmentIndex {
        SegmentIndex.make(frames: frames, subjects: subjects.map { Optional($0) }, baseSequence: base, segmentBytes: size)
    }

    /// Writes an index file atomically (temporary file, fsync, rename, directory fsync).
    static func writeIndex(_ index: SegmentIndex, path: String) throws(LogError) {
        let temporary = path + ".\(getpid()).tmp"
        let file = try LogFile.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.write(index.encode(), at: 0)
        try file.sync()
        file.close()
        try FileSystem.rename(temporary, to: path)
        try FileSystem.syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
    }

    /// Creates a segment file with its header; returns it open for writing and its size.
    static func createSegment(layout: DatabaseLayout, stream: String, base: UInt64) throws(LogError) -> (LogFile, Int64) {
        let path = layout.segmentPath(stream, base: base)
        let file = try LogFile.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
        try file.write(SegmentHeader(baseSequence: base).encode(), at: 0)
        try file.sync()
        try FileSystem.syncDirectory(layout.streamDirectory(stream))
        return (file, Int64(SegmentHeader.sizeBytes))
    }

    /// A sealed segment's index: read and checked against the segment, or rebuilt (and rewritten
    /// when possible) with a notice.
    static func loadOrRebuildIndex(layout: DatabaseLayout, stream: String, base: UInt64, records: any RecordCodec, reporter: LogReporter, write: Bool = true) throws(LogError) -> SegmentIndex {
        let segmentPath = layout.segmentPath(stream, base: base)
        let indexPath = layout.indexPath(stream, base: base)
        let segment = try LogFile.open(segmentPath, flags: O_RDONLY)
        defer { segment.close() }
        let size = try segment.size()
        var problem = "it is missing"
        if FileSystem.exists(indexPath) {
            let file = try LogFile.open(indexPath, flags: O_RDONLY)
            let bytes = try file.readAll()
            file.close()
            switch bytes.withUnsafeBytes({ SegmentIndex.decode($0, path: indexPath) }) {
            case .success(let index) where index.baseSequence == base && index.segmentBytes == size:
                return index
            case .success(let index):
                problem = "it covers \(index.segmentBytes) bytes of base \(index.baseSequence), the segment has \(size) bytes of base \(base)"
            case .failure(let error):
                problem = error.message
            }
        }
        let bytes = try segment.readAll()
        let (index, scan) = bytes.withUnsafeBytes { raw -> (SegmentIndex, SegmentScan) in
            let scan = SegmentScanner.scan(raw, path: segmentPath)
            return (SegmentIndex.build(segment: raw, scan: scan, baseSequence: base, path: segmentPath, records: records), scan)
        }
        for damage in scan.damage {
            reporter(LogNotice(kind: .damage, message: "\(damage.length) damaged bytes (\(damage.reason)); skipped", path: segmentPath, offset: damage.offset))
        }
        if scan.tornTailBytes > 0 {
            reporter(LogNotice(kind: .damage, message: "\(scan.tornTailBytes) unreadable bytes at the end of a sealed segment (\(scan.tailReason ?? "")); skipped",
                               path: segmentPath, offset: scan.validEnd))
        }
        var rebuilt = index
        rebuilt.segmentBytes = size
        reporter(LogNotice(kind: .indexRebuilt, message: "rebuilt the index of a sealed segment because \(problem)", path: indexPath))
        if write { try? writeIndex(rebuilt, path: indexPath) }
        return rebuilt
    }
}
