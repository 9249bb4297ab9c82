#if canImport(Glibc)
import Glibc
#endif

/// A decoded frame with where it came from.
public struct LocatedFrame: Sendable {
    /// The stream that wrote it.
    public var stream: String
    /// The base sequence of its segment.
    public var segmentBase: UInt64
    /// The byte offset of its header in the segment.
    public var offset: Int64
    /// Its events and dictionary.
    public var frame: DecodedFrame
}

/// One event of a list of frames, by position: `frames[frame].frame.events[event]`.
public struct EventPosition: Sendable, Equatable {
    /// Index of the frame in the list.
    public var frame: Int
    /// Index of the event in the frame.
    public var event: Int
}

/// What a reader does with damage found before the tail of a segment.
public enum DamagePolicy: Sendable {
    /// Throw `LogError.corruptFrame` naming the segment and offset.
    case fail
    /// Report it through the reporter and read on past it.
    case reportAndSkip
}

/// A segment as a reader sees it.
public struct SegmentRef: Sendable, Hashable {
    /// The stream.
    public var stream: String
    /// The segment's base sequence.
    public var base: UInt64
    /// The segment file.
    public var path: String
    /// True for the last segment of its stream (still being appended to; it has no index).
    public var isActive: Bool
}

/// Reads a database: every stream, merged by timestamp, or only the frames wanted (by sequence,
/// time range or subject) using the segment indices. Works while writers append.
public final class LogReader: @unchecked Sendable {
    /// The database's layout.
    public let layout: DatabaseLayout
    /// What to do with damage.
    public let damagePolicy: DamagePolicy
    /// How the store's records are read.
    public let records: any RecordCodec
    private let reporter: LogReporter

    /// A reader of the database at `path` whose records `records` reads; throws `notADatabase`
    /// if it is not one.
    public init(database path: String, records: some RecordCodec, damagePolicy: DamagePolicy = .fail,
                reporter: @escaping LogReporter = standardErrorReporter) throws(LogError) {
        layout = DatabaseLayout(root: path)
        self.records = records
        try layout.validate()
        self.damagePolicy = damagePolicy
        self.reporter = reporter
    }

    /// The stream names, sorted.
    public func streams() -> [String] { layout.streamNames() }

    /// A stream's segments, oldest first.
    public func segments(_ stream: String) -> [SegmentRef] {
        let bases = layout.segmentBases(stream)
        return bases.map { SegmentRef(stream: stream, base: $0, path: layout.segmentPath(stream, base: $0), isActive: $0 == bases.last) }
    }

    /// The frames of a segment as index entries: from its index when sealed (rebuilt if
    /// missing or damaged), from a scan when active.
    public func entries(_ segment: SegmentRef) throws(LogError) -> [IndexEntry] {
        if !segment.isActive {
            return try StreamRecovery.loadOrRebuildIndex(layout: layout, stream: segment.stream, base: segment.base, records: records, reporter: reporter).entries
        }
        let file = try LogFile.open(segment.path, flags: O_RDONLY)
        defer { file.close() }
        let bytes = try file.readAll()
        let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment.path) }
        try handle(scan.damage)
        return scan.frames.map { IndexEntry(location: $0, subjects: nil) }
    }

    private func handle(_ damage: [Damage]) throws(LogError) {
        for d in damage {
            switch damagePolicy {
            case .fail:
                throw LogError(.corruptFrame, "damaged frame before the tail: \(d.reason) (\(d.length) bytes unreadable up to the next valid frame)",
                               path: d.path, offset: d.offset)
            case .reportAndSkip:
                reporter(LogNotice(kind: .damage, message: "\(d.length) damaged bytes skipped: \(d.reason)", path: d.path, offset: d.offset))
            }
        }
    }

    /// Decodes the frames of `entries` of one segment, reading only their bytes.
    public func read(_ segment: SegmentRef, entries: some Collection<IndexEntry>) throws(LogError) -> [LocatedFrame] {
        guard !entries.isEmpty else { return [] }
        let file = try LogFile.open(segment.path, flags: O_RDONLY)
        defer { file.close() }
        var frames: [LocatedFrame] = []
        frames.reserveCapacity(entries.count)
        // Read contiguous runs of frames in one call.
        let sorted = entries.sorted { $0.location.offset < $1.location.offset }
        var runStart = 0
        while runStart < sorted.count {
            var runEnd = runStart + 1
            while runEnd < sorted.count && sorted[runEnd].location.offset == sorted[runEnd - 1].location.endOffset && runEnd - runStart < 4096 {
                runEnd += 1
            }
            let first = sorted[runStart].location.offset
            let length = Int(sorted[runEnd - 1].location.endOffset - first)
            let bytes = try file.read(at: first, count: length)
            try decode(sorted[runStart..<runEnd], of: segment, from: bytes, startingAt: first, checksumVerified: false) { frames.append($0) }
            runStart = runEnd
        }
        return frames
    }

    private func handleUnreadable(_ error: LogError) throws(LogError) {
        switch damagePolicy {
        case .fail: throw error
        case .reportAndSkip: reporter(LogNotice(kind: .damage, message: "frame skipped: \(error.message)", path: error.path ?? "", offset: error.offset))
        }
    }

    /// Calls `body` with every frame of one stream, in order, decoding one frame at a time
    /// (memory stays bounded by one segment, whatever the size of the stream).
    /// The active segment is judged by the stream's sync marker (docs/FORMAT.md, "Sync marker"):
    /// fsynced bytes that do not read back are damage, not a torn tail.
    public func forEachFrame(stream: String, _ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) {
        // Read before the segments: what it calls durable was written before it.
        let marker = SyncMarker.read(layout: layout, stream: stream, reporter: reporter)
        let all = segments(stream)
        if let marker, let last = all.last, marker.segmentBase > last.base {
            try handleUnreadable(LogError(.corruptFrame, "segment \(DatabaseLayout.segmentName(marker.segmentBase)) of stream '\(stream)', which held durable events up to sequence \(marker.nextSequence) (sync marker), is missing",
                                          path: layout.segmentPath(stream, base: marker.segmentBase)))
        }
        for segment in all {
            let file = try LogFile.open(segment.path, flags: O_RDONLY)
            let bytes = try file.readAll()
            file.close()
            let entries: [IndexEntry]
            let scanned = segment.isActive
            if segment.isActive {
                let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment.path) }
                try handle(scan.damage)
                entries = scan.frames.map { IndexEntry(location: $0, subjects: nil) }
                if let marker, marker.segmentBase == segment.base, marker.durableBytes > scan.validEnd {
                    try handleUnreadable(LogError(.corruptFrame, "bytes \(scan.validEnd)..<\(marker.durableBytes) of stream '\(stream)' were fsynced (sync marker) but do not read back: damage to durable data, not a torn tail",
                                                  path: segment.path, offset: scan.validEnd))
                }
            } else {
                entries = try self.entries(segment)
            }
            try decode(entries, of: segment, from: bytes, startingAt: 0, checksumVerified: scanned, body)
        }
    }

    /// The one decoding loop of indexed frames: decodes each entry's frame from `bytes` (which
    /// hold the segment from file offset `first` on) and hands it to `body`, in order. A frame
    /// that runs past the bytes or does not decode is damage, handled by the damage policy.
    private func decode(_ entries: some Collection<IndexEntry>, of segment: SegmentRef, from bytes: [UInt8], startingAt first: Int64,
                        checksumVerified: Bool, _ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) {
        for entry in entries {
            let start = Int(entry.location.offset - first), end = Int(entry.location.endOffset - first)
            guard start >= 0, end <= bytes.count else {
                try handleUnreadable(LogError(.corruptFrame, "frame runs past the end of the segment", path: segment.path, offset: entry.location.offset))
                continue
            }
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(LogError) in
                    try Frame.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end]), at: entry.location.offset, path: segment.path,
                                     checksumVerified: checksumVerified, records: records)
                }
            }
            switch result {
            case .success(let frame):
                try body(LocatedFrame(stream: segment.stream, segmentBase: segment.base, offset: entry.location.offset, frame: frame))
            case .failure(let error):
                try handleUnreadable(error)
            }
        }
    }

    /// Calls `body` with every frame of every stream, stream by stream. A stream that the
    /// MANIFEST (or, when it does not read, `MANIFEST.prev`) names and that is gone is damage.
    public func forEachFrame(_ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) {
        try checkNamedStreams()
        for stream in streams() { try forEachFrame(stream: stream, body) }
    }

    /// Reports (or, under `.fail`, throws) each stream that the MANIFEST (or, when it does not
    /// read, `MANIFEST.prev`) names and that is gone: its events after the watermark are lost.
    public func checkNamedStreams() throws(LogError) {
        let manifest = (try? Compactor.readManifest(layout)) ?? (try? Compactor.readManifest(layout, previous: true))
        guard let manifest else { return }
        for w in manifest.watermarks where !FileSystem.isDirectory(layout.streamDirectory(w.stream)) {
            try handleUnreadable(LogError(.corruptFile, "stream '\(w.stream)', which the MANIFEST (generation \(manifest.generation)) names, is missing: every event it held from sequence \(w.sequence) on is lost",
                                          path: layout.streamDirectory(w.stream)))
        }
    }

    /// Every frame of one stream, in order.
    public func frames(stream: String) throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        try forEachFrame(stream: stream) { out.append($0) }
        return out
    }

    /// Every frame of every stream (stream by stream; merge with `mergedByHLC`).
    public func allFrames() throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        try forEachFrame { out.append($0) }
        return out
    }

    /// The frames of `stream` holding sequence numbers in `range`.
    public func frames(stream: String, sequences range: Range<UInt64>) throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        let segs = segments(stream)
        for (i, segment) in segs.enumerated() {
            // A segment holds sequences from its base up to the next segment's base.
            if i + 1 < segs.count && segs[i + 1].base <= range.lowerBound { continue }
            if segment.base >= range.upperBound { break }
            let index = SegmentIndex(baseSequence: segment.base, segmentBytes: 0, subjectTable: [], entries: try entries(segment))
            out += try read(segment, entries: index.entries(sequences: range))
        }
        return out
    }

    /// The frames of every stream whose events may fall in the time range.
    public func frames(hlc range: ClosedRange<HLC>) throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        for stream in streams() {
            for segment in segments(stream) {
                let selected = try entries(segment).filter { $0.location.header.maxHLC >= range.lowerBound && $0.location.header.minHLC <= range.upperBound }
                out += try read(segment, entries: selected)
            }
        }
        return out
    }

    /// The frames of every stream that touch subject `uid`.
    public func frames(subject uid: String) throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        for stream in streams() {
            for segment in segments(stream) {
                let selected: [IndexEntry]
                if segment.isActive {
                    selected = try entries(segment)
                } else {
                    let index = try StreamRecovery.loadOrRebuildIndex(layout: layout, stream: stream, base: segment.base, records: records, reporter: reporter)
                    selected = index.entries(subject: uid)
                }
                out += try read(segment, entries: selected).filter { $0.frame.subjects.contains(uid) }
            }
        }
        return out
    }

    /// Positions of every event of `frames`, ordered by timestamp across streams (ties broken by
    /// stream name, then sequence). Within a stream the order is the stream's own.
    public static func mergedByHLC(_ frames: [LocatedFrame]) -> [EventPosition] {
        var byStream: [String: [Int]] = [:]
        for (i, f) in frames.enumerated() { byStream[f.stream, default: []].append(i) }
        let streams = byStream.keys.sorted()
        // One cursor per stream: (position in its frame list, event index).
        var cursors = streams.map { (list: byStream[$0]!, frame: 0, event: 0) }
        var out: [EventPosition] = []
        out.reserveCapacity(frames.reduce(0) { $0 + $1.frame.events.count })
        func skipEmpty(_ c: inout (list: [Int], frame: Int, event: Int)) {
            while c.frame < c.list.count && c.event >= frames[c.list[c.frame]].frame.events.count {
                c.frame += 1
                c.event = 0
            }
        }
        for i in cursors.indices { skipEmpty(&cursors[i]) }
        while true {
            var best = -1
            var bestHLC = HLC(rawValue: .max)
            for (i, c) in cursors.enumerated() where c.frame < c.list.count {
                let hlc = frames[c.list[c.frame]].frame.events[c.event].hlc
                if best < 0 || hlc < bestHLC { best = i; bestHLC = hlc }
            }
            if best < 0 { break }
            out.append(EventPosition(frame: cursors[best].list[cursors[best].frame], event: cursors[best].event))
            cursors[best].event += 1
            skipEmpty(&cursors[best])
        }
        return out
    }
}

/// Follows a database: each `poll()` returns only the frames appended since the previous one, in
/// every stream, new streams and new segments included. A frame still being written is left for
/// a later poll; damage before the tail is reported.
public final class LogTailer: @unchecked Sendable {
    /// The database's layout.
    public let layout: DatabaseLayout
    /// How the store's records are read.
    public let records: any RecordCodec
    private let reporter: LogReporter
    private var positions: [String: (base: UInt64, offset: Int64)] = [:]
    private var reportedDamage: Set<String> = []

    /// A tailer of the database at `path`, starting at `start` (per stream: segment base and byte
    /// offset; streams not listed start at their beginning).
    public init(database path: String, records: some RecordCodec, start: [StreamWatermark] = [],
                reporter: @escaping LogReporter = standardErrorReporter) throws(LogError) {
        layout = DatabaseLayout(root: path)
        self.records = records
        try layout.validate()
        self.reporter = reporter
        for w in start { positions[w.stream] = (w.base, w.offset) }
    }

    /// Forgets a lost position once the consumer has checked that a snapshot covers it.
    public func clearPositionLost() { positionLost = false }

    /// Set when a segment the tailer stood in was deleted (by compaction): frames may have been
    /// missed unless the snapshot the consumer started from covers them.
    public private(set) var positionLost = false

    /// Where the tailer stands in each stream (segment base and byte offset).
    public var position: [String: (base: UInt64, offset: Int64)] { positions }

    /// The frames appended since the last call, stream by stream (merge with `LogReader.mergedByHLC`).
    public func poll() throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        try poll { out.append($0) }
        return out
    }

    /// At most `maxFrames` of the frames appended since the last call: the next call goes on
    /// where this one stopped, so a consumer far behind holds a bounded number of decoded frames
    /// and reads about that many frames' bytes. Empty means caught up (damage skipped on the way
    /// is reported, not counted).
    public func poll(maxFrames: Int) throws(LogError) -> [LocatedFrame] {
        var out: [LocatedFrame] = []
        var budget: Int? = max(0, maxFrames)
        try poll(budget: &budget, skipping: nil, onSkip: nil) { out.append($0) }
        return out
    }

    /// The largest frame seen so far, in bytes: a poll with a frame budget reads about
    /// `budget × this` bytes of a segment, not all that follows.
    private var largestFrameBytes = 16 << 10

    /// A frame passed over undecoded (see `poll(skipping:onSkip:_:)`).
    public struct SkippedFrame: Sendable {
        /// The stream.
        public var stream: String
        /// The segment's base sequence.
        public var base: UInt64
        /// The frame's offset in the segment.
        public var offset: Int64
        /// The frame's header (its checksum was checked).
        public var header: FrameHeader
    }

    /// Calls `body` with each frame appended since the last call, stream by stream, decoding one
    /// frame at a time. Frames for which `skipping` is true are not decoded but handed to `onSkip`.
    ///
    /// With `limits`, no stream is read past its limit (segment base and byte offset, a frame
    /// boundary such as a `position`), and streams not listed are not read: the tailer then stands
    /// exactly there (a compaction of what a consumer has already taken uses this).
    public func poll(skipping: ((FrameHeader) -> Bool)? = nil, onSkip: ((SkippedFrame) -> Void)? = nil,
                     upTo limits: [String: (base: UInt64, offset: Int64)]? = nil,
                     _ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) {
        var unlimited: Int? = nil
        try poll(budget: &unlimited, skipping: skipping, onSkip: onSkip, limits: limits, body)
    }

    /// `poll(skipping:onSkip:upTo:_:)` passing over at most `budget` frames (nil: no limit).
    private func poll(budget: inout Int?, skipping: ((FrameHeader) -> Bool)?, onSkip: ((SkippedFrame) -> Void)?,
                      limits: [String: (base: UInt64, offset: Int64)]? = nil,
                      _ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) {
        for stream in layout.streamNames() {
            let limit = limits?[stream]
            if limits != nil && limit == nil { continue }
            // Read before the segments: what it calls durable was written before it.
            let marker = limits == nil ? SyncMarker.read(layout: layout, stream: stream, reporter: { self.reportOnce($0) }) : nil
            let bases = layout.segmentBases(stream)
            guard let firstBase = bases.first else {
                if let marker, marker.nextSequence > 0 {
                    reportOnce(LogNotice(kind: .damage, message: "stream '\(stream)' has no segment, but its sync marker says events up to sequence \(marker.nextSequence) were durable: events 0..<\(marker.nextSequence) are missing",
                                         path: layout.streamDirectory(stream), offset: nil))
                }
                continue
            }
            var (base, offset) = positions[stream] ?? (firstBase, Int64(SegmentHeader.sizeBytes))
            if !bases.contains(base) {
                // The segment is gone (compacted away): what was left of it is in a snapshot.
                if positions[stream] != nil { positionLost = true }
                guard let next = bases.first(where: { $0 > base }) else { continue }
                (base, offset) = (next, Int64(SegmentHeader.sizeBytes))
            }
            while true {
                if let limit, base > limit.base || (base == limit.base && offset >= limit.offset) { break }
                let newerExists = layout.segmentBases(stream).contains { $0 > base }
                let path = layout.segmentPath(stream, base: base)
                let (consumed, stuck) = try readNew(path: path, stream: stream, base: base, from: offset,
                                                    end: limit.flatMap { $0.base == base ? $0.offset : nil }, budget: &budget,
                                                    skipping: skipping, onSkip: onSkip, body)
                offset = consumed
                if let left = budget, left <= 0 { break }
                if let limit, base >= limit.base { break }
                if newerExists, let next = layout.segmentBases(stream).first(where: { $0 > base }) {
                    if stuck {
                        reportOnce(LogNotice(kind: .damage, message: "unreadable bytes at the end of a sealed segment; skipped", path: path, offset: offset))
                    }
                    base = next
                    offset = Int64(SegmentHeader.sizeBytes)
                    continue
                }
                break
            }
            positions[stream] = (base, offset)
            if let marker, budget.map({ $0 > 0 }) ?? true, let last = layout.segmentBases(stream).last, base == last {
                checkDurable(marker, stream: stream, base: base, offset: offset)
            }
        }
    }

    /// Reports durable bytes (per the stream's sync marker) that the tailer could not read: the
    /// durable-prefix rule of docs/FORMAT.md, "Sync marker". Called once a poll has read the last
    /// segment to its end.
    private func checkDurable(_ marker: SyncMarker, stream: String, base: UInt64, offset: Int64) {
        if marker.segmentBase > base {
            reportOnce(LogNotice(kind: .damage, message: "segment \(DatabaseLayout.segmentName(marker.segmentBase)) of stream '\(stream)', which held durable events up to sequence \(marker.nextSequence) (sync marker), is missing",
                                 path: layout.segmentPath(stream, base: marker.segmentBase), offset: nil))
        } else if marker.segmentBase == base && marker.durableBytes > offset {
            reportOnce(LogNotice(kind: .damage, message: "bytes \(offset)..<\(marker.durableBytes) of stream '\(stream)' were fsynced (sync marker) but do not read back: damage to durable data, not a torn tail",
                                 path: layout.segmentPath(stream, base: base), offset: offset))
        }
    }

    private func reportOnce(_ notice: LogNotice) {
        let key = "\(notice.path)@\(notice.offset ?? -1)"
        if reportedDamage.insert(key).inserted { reporter(notice) }
    }

    /// Passes complete, valid frames from `offset` to `body`, at most `budget` of them (counted
    /// down; nil: all); returns where reading stopped, and whether bytes after that point were
    /// left unread (an unfinished frame, or a torn tail).
    ///
    /// With a budget only a window of the segment is read, sized from the largest frame seen, so a
    /// consumer polling a few frames at a time reads each byte about once instead of re-reading
    /// the rest of the segment on every call. A window's end is not damage: reading stops there
    /// (or, if not even one frame fits, the window grows) and what looks wrong is judged only on
    /// a read reaching the end of the file.
    private func readNew(path: String, stream: String, base: UInt64, from offset: Int64, end: Int64? = nil, budget: inout Int?,
                         skipping: ((FrameHeader) -> Bool)?, onSkip: ((SkippedFrame) -> Void)?,
                         _ body: (LocatedFrame) throws(LogError) -> Void) throws(LogError) -> (Int64, Bool) {
        let file: LogFile
        do { file = try LogFile.open(path, flags: O_RDONLY) } catch { return (offset, false) }
        defer { file.close() }
        let size = min(try file.size(), end ?? .max)
        guard size > offset else { return (offset, false) }
        var start = offset
        var remaining = Int(size - offset)
        var window = budget.map { min(remaining, max(64 << 10, ($0 + 1) * largestFrameBytes * 2)) } ?? remaining
        while true {
            let offset = start
            let bytes = try file.read(at: offset, count: window)
            let clipped = window < remaining
            var position = 0
            var stuck = false
            var bodyError: LogError?
            bytes.withUnsafeBytes { raw in
                while position < raw.count {
                    if let left = budget, left <= 0 { return }
                    switch SegmentScanner.check(raw, at: position) {
                    case .success(let header):
                        largestFrameBytes = max(largestFrameBytes, header.frameBytes)
                        if let skipping, skipping(header) {
                            budget = budget.map { $0 - 1 }
                            onSkip?(SkippedFrame(stream: stream, base: base, offset: offset + Int64(position), header: header))
                            position += header.frameBytes
                            continue
                        }
                        let frameBytes = UnsafeRawBufferPointer(rebasing: raw[position..<position + header.frameBytes])
                        if let frame = try? Frame.decode(frameBytes, at: offset + Int64(position), path: path, checksumVerified: true, records: records) {
                            // Only frames handed on count: a poll that skipped damage is not empty.
                            budget = budget.map { $0 - 1 }
                            do {
                                try body(LocatedFrame(stream: stream, segmentBase: base, offset: offset + Int64(position), frame: frame))
                            } catch {
                                bodyError = (error as? LogError) ?? LogError(.invalidArgument, "\(error)")
                                return
                            }
                        } else {
                            reportOnce(LogNotice(kind: .damage, message: "a frame passing its checksum does not decode; skipped", path: path, offset: offset + Int64(position)))
                        }
                        position += header.frameBytes
                    case .failure(let problem):
                        // The window's end, or damage: only a read to the end of the file can tell.
                        if clipped { return }
                        if let next = SegmentScanner.nextValidFrame(raw, after: position) {
                            reportOnce(LogNotice(kind: .damage, message: "\(next - position) damaged bytes before the tail skipped: \(problem.reason)",
                                                 path: path, offset: offset + Int64(position)))
                            position = next
                        } else {
                            stuck = true
                            return
                        }
                    }
                }
            }
            if let bodyError { throw bodyError }
            if clipped && position == 0 {
                // Not one whole frame in the window: read more (at last, the whole rest).
                window = min(remaining, window * 4)
                continue
            }
            if clipped, budget.map({ $0 > 0 }) ?? true {
                // Stopped at the window's end with frames still wanted: read on from there.
                start += Int64(position)
                remaining -= position
                window = min(remaining, window)
                continue
            }
            return (offset + Int64(position), stuck)
        }
    }
}
