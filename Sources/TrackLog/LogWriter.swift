#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// When appended data reaches the disk.
public enum Durability: String, Sendable, CaseIterable {
    /// Frames are written when a batch fills or the flush interval passes; `commit()` and
    /// `close()` fsync. A crash may lose what was not committed.
    case buffered
    /// Like buffered, and every frame is fsynced as it is written.
    case groupCommit
    /// Every append call seals a frame and returns after it is fsynced.
    case sync
}

/// Something the log noticed and recovered from, reported to the caller rather than hidden.
public struct LogNotice: Sendable, CustomStringConvertible {
    /// The kind of notice.
    public enum Kind: String, Sendable {
        /// A torn tail (an unfinished write) was cut off.
        case tornTailCut
        /// Damaged bytes before the tail; they are kept on disk and skipped by readers, reported each time.
        case damage
        /// A missing or damaged index was rebuilt from its segment.
        case indexRebuilt
        /// A stream whose writer had died was taken over.
        case streamTakenOver
        /// The newest compaction generation was damaged or missing; the previous one and the log
        /// after it were read instead (nothing is lost; compacting again writes a new generation).
        case generationFallback
        /// A stream's `SYNCED` marker did not read (it is never fsynced itself); the stream's tail
        /// was judged by the torn-tail rule instead, as if there were no marker.
        case syncMarkerUnreadable
    }
    /// The kind of notice.
    public var kind: Kind
    /// What happened, in a sentence.
    public var message: String
    /// The file concerned.
    public var path: String
    /// The byte offset concerned.
    public var offset: Int64?

    /// A notice of `kind` about `path` (at `offset`).
    package init(kind: Kind, message: String, path: String, offset: Int64? = nil) {
        self.kind = kind
        self.message = message
        self.path = path
        self.offset = offset
    }

    public var description: String { "\(kind.rawValue): \(message) [\(path)\(offset.map { " at byte \($0)" } ?? "")]" }
}

/// Receives notices; the default writes them to standard error.
public typealias LogReporter = @Sendable (LogNotice) -> Void

/// The default reporter: one line per notice on standard error.
public let standardErrorReporter: LogReporter = { notice in
    let line = Array("swift-track: \(notice)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// How a writer is set up.
public struct WriterOptions: Sendable {
    /// When data reaches the disk.
    public var durability: Durability = .buffered
    /// Size at which a segment is sealed and a new one started.
    public var segmentBytes: Int64 = Limits.segmentBytesDefault
    /// Buffered data older than this is written even if the batch is not full.
    public var flushIntervalMilliseconds: Int = Limits.flushIntervalMillisecondsDefault
    /// Raw bytes at which a batch becomes a frame.
    public var frameRawBytesTarget: Int = Limits.frameRawBytesTarget
    /// How many sealed batches may wait for the flusher before appends wait (back-pressure).
    /// Enough to ride out a segment roll's fsync (about 0.1 s for 64 MB here) while an array
    /// append keeps filling frames: 64 frames of 256 KiB.
    public var pendingFramesMax: Int = 64
    /// The stream to write; nil takes over a stream whose writer died, or makes a new one.
    public var streamName: String?
    /// Read every frame back (checksum, decompression, every record) before it is written: a
    /// frame that would not read fails the commit instead of being acknowledged. On by default;
    /// it costs the flusher thread a decode per frame, not the appending thread.
    public var verifyFrames: Bool = true
    /// Where notices go.
    public var reporter: LogReporter = standardErrorReporter

    /// Default options.
    public init() {}
}

/// A metric of a subject, registered with a writer for the allocation-free append path
/// (`LogWriter.slot(subject:name:)`). Only an index: passing it around costs nothing.
public struct SeriesSlot: Sendable, Hashable {
    /// The slot's index in its writer.
    public let index: Int
}

/// The one writer of a stream: appends events into an in-memory batch on the caller's thread; a
/// background flusher compresses batches into frames and writes them. It never waits on another
/// process: its stream is its own, held by an exclusive `flock`. Call `close()` when done: it
/// commits, stops the flusher thread and releases the stream.
public final class LogWriter: @unchecked Sendable {
    /// The database's layout.
    public let layout: DatabaseLayout
    /// The stream written.
    public let streamName: String
    /// The options in force.
    public let options: WriterOptions
    /// How the store's records read back.
    public let records: any RecordCodec

    /// `options.frameRawBytesTarget`, read on every append.
    private let frameTarget: Int
    private let syncEveryCall: Bool
    private let lockFile: LogFile
    /// `<stream>/SYNCED`, rewritten after every fsync of the active segment (`SyncMarker`).
    private let syncMarker: LogFile
    private let state: SpinLocked<AppendState>
    private let coordination = Condition()
    private let failed = Atomic<Bool>(false)

    // Guarded by `coordination`.
    /// Sealed frames waiting for the flusher, in sequence order. Threads seal under the append
    /// lock but hand frames over after releasing it, so a frame may arrive after the one sealed
    /// next: it is put in its place, and the flusher takes only frames that continue the stream.
    private var queue: [PendingFrame] = []
    /// The first sequence of the frame the flusher takes next (the end of the last one taken).
    private var nextFrameSequence: UInt64
    /// `queue.count`, readable without `coordination` (a hint for callers: see the array path).
    private let framesWaiting = Atomic<Int>(0)
    /// Written frames' buffers, for the next frames. A spin lock of its own (never the
    /// condition), because sealing takes one while the append lock is held: no blocking wait
    /// may happen under the append lock.
    private let spareBuffers = SpinLocked<[EncodeBuffer]>([])
    private var writtenSequence: UInt64
    private var durableSequence: UInt64
    private var commitTarget: UInt64 = 0
    private var failure: LogError?
    private var stopping = false
    private var flusherStopped = false
    private var flushRequested = false

    // Owned by the flusher thread (and by `open` before it starts).
    private var segment: LogFile
    private var segmentBase: UInt64
    private var segmentSize: Int64
    private var segmentFrames: [FrameLocation] = []
    private var segmentFrameSubjects: [[String]] = []
    private var segmentDirty = false
    /// Written frames' buffers kept for the next frames; more are allocated in a burst and freed.
    static let spareBuffersMax = 16
    /// Where the segment's bytes not yet handed to the kernel's writeback start.
    private var writebackStart: Int64 = 0
    /// True once the active segment's background fsync is started (`LogFile.syncInBackground`).
    private var segmentPreSynced = false
    /// Written bytes after which the flusher starts their writeback (`LogFile.startWriteback`),
    /// so that the data is on its way before a commit or a segment roll asks for it. (Their
    /// fsync still costs about what the device takes to flush its cache: 0.1 s for a 64 MB
    /// segment on this machine. A roll's is cut by flushing the segment in the background at
    /// three quarters, and the queue rides out the rest, see `pendingFramesMax`.)
    static let writebackBytes: Int64 = 1 << 20
    /// The sequence after the last event written to the active segment.
    private var segmentEndSequence: UInt64

    struct PendingFrame {
        var buffer: EncodeBuffer
        var firstSequence: UInt64
        var eventCount: UInt32
        var minHLC: HLC
        var maxHLC: HLC
        var subjects: [String]
        var pointsOnly: Bool
        /// The frame compressed already, by the thread that sealed it (see `compressed()`).
        var frame: EncodedFrame? = nil

        /// The frame made (compressed) by the calling thread rather than the flusher: the
        /// array path fills frames as fast as one flusher compresses them, so it shares the work.
        func compressed() -> PendingFrame {
            var pending = self
            pending.frame = Frame.make(payload: buffer.bytes, firstSequence: firstSequence, eventCount: eventCount,
                                       minHLC: minHLC, maxHLC: maxHLC, subjects: subjects, pointsOnly: pointsOnly)
            return pending
        }
    }

    struct AppendState {
        var encoder: FrameEncoder
        var clock: HybridClock
        /// Per registered slot: its names, and its series id in the current frame (valid while
        /// the generation matches the encoder's). Kept in separate arrays so the hot path copies
        /// no string.
        var slotNames: [SeriesKeyName] = []
        var slotGeneration: [UInt64] = []
        var slotSeries: [Int32] = []
        var slotIndex: [SeriesKeyName: Int] = [:]
        var closed = false
        /// Scalar appends left before the wall clock is read again (see `pointTimestamp`).
        var appendsUntilClockRead = 0

        /// The timestamp of a scalar point. Reading the clock costs about as much as the rest of
        /// an append, so it is read every `LogWriter.appendsPerClockRead` appends, or sooner when
        /// the flusher marks it stale (every flush interval): a point's time is at most that
        /// late, and timestamps still never repeat or go back.
        @inline(__always) mutating func pointTimestamp(stale: Bool) -> HLC {
            if appendsUntilClockRead <= 0 || stale {
                appendsUntilClockRead = LogWriter.appendsPerClockRead
                return clock.tick()
            }
            appendsUntilClockRead -= 1
            return clock.next()
        }
    }

    /// How many scalar appends may share one reading of the wall clock.
    static let appendsPerClockRead = 256
    /// Set by the flusher on every wake: the next point reads the wall clock.
    private let clockStale = Atomic<Bool>(true)

    @inline(__always) private func pointTimestamp(_ s: inout AppendState) -> HLC {
        let stale = clockStale.load(ordering: .relaxed)
        if stale { clockStale.store(false, ordering: .relaxed) }
        return s.pointTimestamp(stale: stale)
    }

    struct SeriesKeyName: Hashable {
        var subject: String
        var name: String
    }

    // MARK: - Opening

    /// Opens a writer on the database at `path` (created if missing): takes over a stream whose
    /// writer died, or creates one, recovers it (cutting a torn tail, rebuilding missing indices)
    /// and starts the flusher. `records` reads the store's records back (recovery, `verifyFrames`).
    public static func open(database path: String, records: some RecordCodec, options: WriterOptions = WriterOptions()) throws(LogError) -> LogWriter {
        Limits.check()
        guard options.segmentBytes >= Limits.segmentBytesMin && options.segmentBytes <= Limits.segmentBytesMax else {
            throw LogError(.invalidArgument, "segment size \(options.segmentBytes) is outside \(Limits.segmentBytesMin)...\(Limits.segmentBytesMax) bytes")
        }
        guard options.frameRawBytesTarget > 0 && options.frameRawBytesTarget <= Limits.frameRawBytesTargetMax else {
            throw LogError(.invalidArgument, "frame target \(options.frameRawBytesTarget) must be between 1 and \(Limits.frameRawBytesTargetMax) bytes")
        }
        return try open(database: path, records: records, options: options, pending: false)
    }

    /// Opens a writer on a new stream that no reader sees until `publish()`: what it holds
    /// appears all at once or, if the process dies first, not at all (the unpublished stream is
    /// removed by `Compactor.removeStrayFiles`). For writing a whole import as one unit.
    public static func openUnpublished(database path: String, records: some RecordCodec, options: WriterOptions = WriterOptions()) throws(LogError) -> LogWriter {
        try open(database: path, records: records, options: options, pending: true)
    }

    /// Commits and closes an unpublished writer's stream, then publishes it with one rename (the
    /// streams directory fsynced): readers see all of it from then on. Returns its published name.
    @discardableResult
    public func publish() throws(LogError) -> String {
        let prefix = DatabaseLayout.pendingStreamPrefix
        guard streamName.hasPrefix(prefix) else {
            throw LogError(.invalidArgument, "stream '\(streamName)' is already published", path: layout.streamDirectory(streamName))
        }
        try close()
        let published = String(streamName.dropFirst(prefix.count))
        try FileSystem.rename(layout.streamDirectory(streamName), to: layout.streamDirectory(published))
        try FileSystem.syncDirectory(layout.streamsDirectory)
        return published
    }

    private static func open(database path: String, records: any RecordCodec, options: WriterOptions, pending: Bool) throws(LogError) -> LogWriter {
        let layout = DatabaseLayout(root: path)
        try layout.create()
        let (stream, lock, takenOver) = try acquireStream(layout, wanted: options.streamName, pending: pending)
        if takenOver {
            options.reporter(LogNotice(kind: .streamTakenOver, message: "stream '\(stream)' had no live writer; continuing it", path: layout.streamDirectory(stream)))
        }
        do {
            let recovered = try StreamRecovery.recover(layout: layout, stream: stream, records: records, reporter: options.reporter)
            let marker = try LogFile.open(layout.syncMarkerPath(stream), flags: O_RDWR | O_CREAT)
            return LogWriter(layout: layout, stream: stream, lock: lock, marker: marker, records: records, options: options, recovered: recovered)
        } catch {
            lock.close()
            throw error
        }
    }

    private static func acquireStream(_ layout: DatabaseLayout, wanted: String?, pending: Bool) throws(LogError) -> (String, LogFile, Bool) {
        func tryLock(_ name: String) throws(LogError) -> LogFile? {
            try FileSystem.createDirectory(layout.streamDirectory(name))
            let file = try LogFile.open(layout.lockPath(name), flags: O_RDWR | O_CREAT)
            if try file.tryLockExclusive() { return file }
            file.close()
            return nil
        }
        if let wanted, !pending {
            guard !wanted.isEmpty, wanted.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }), !wanted.hasPrefix(".") else {
                throw LogError(.invalidArgument, "stream name '\(wanted)' may hold only letters, digits, '-', '_' and '.'")
            }
            let existed = FileSystem.isDirectory(layout.streamDirectory(wanted))
            guard let lock = try tryLock(wanted) else {
                throw LogError(.streamLocked, "stream '\(wanted)' is held by another live writer; use another stream name", path: layout.streamDirectory(wanted))
            }
            return (wanted, lock, existed)
        }
        if !pending {
            for name in layout.streamNames() {
                if let lock = try tryLock(name) { return (name, lock, true) }
            }
        }
        var hostBytes = [CChar](repeating: 0, count: 256)
        gethostname(&hostBytes, hostBytes.count - 1)
        var host = String(decoding: hostBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .filter { $0.isLetter || $0.isNumber || $0 == "-" }
        if host.isEmpty { host = "host" }
        for _ in 0..<100 {
            let published = "\(host.prefix(24))-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
            let name = pending ? DatabaseLayout.pendingStreamPrefix + published : published
            if FileSystem.isDirectory(layout.streamDirectory(name)) || FileSystem.isDirectory(layout.streamDirectory(published)) { continue }
            if let lock = try tryLock(name) { return (name, lock, false) }
        }
        throw LogError(.streamLocked, "could not create a new stream in \(layout.streamsDirectory)", path: layout.streamsDirectory)
    }

    private init(layout: DatabaseLayout, stream: String, lock: LogFile, marker: LogFile, records: any RecordCodec, options: WriterOptions,
                 recovered: StreamRecovery.Result) {
        self.records = records
        self.syncMarker = marker
        self.segmentEndSequence = recovered.nextSequence
        self.layout = layout
        self.streamName = stream
        self.options = options
        self.frameTarget = options.frameRawBytesTarget
        self.syncEveryCall = options.durability == .sync
        self.lockFile = lock
        let encoder = FrameEncoder(firstSequence: recovered.nextSequence, buffer: EncodeBuffer(capacity: options.frameRawBytesTarget + 4096))
        state = SpinLocked(AppendState(encoder: encoder, clock: HybridClock(after: recovered.lastHLC)))
        writtenSequence = recovered.nextSequence
        durableSequence = recovered.nextSequence
        nextFrameSequence = recovered.nextSequence
        segment = recovered.activeSegment
        segmentBase = recovered.activeBase
        segmentSize = recovered.activeSize
        writebackStart = recovered.activeSize
        segmentFrames = recovered.activeFrames
        segmentFrameSubjects = recovered.activeFrameSubjects
        // The flusher holds the writer until `close()` stops it: a writer dropped without closing
        // keeps flushing on its interval for as long as the process lives, instead of vanishing
        // under a running thread.
        // Recovery synced the active segment: what it holds now is durable.
        markDurable()
        if !startThread(named: "st-flusher", { self.flusherLoop() }) {
            // No thread, no writes: every append and commit then fails with this.
            failure = LogError(.writerUnavailable, "the system refused a thread for the writer's flusher")
            failed.store(true, ordering: .relaxed)
            flusherStopped = true
        }
    }

    deinit {
        lockFile.close()
        syncMarker.close()
    }

    /// Records, after an fsync of the active segment returned, how much of it is durable. The
    /// marker is not fsynced itself: a power cut may leave an older one, which only understates.
    private func markDurable() {
        let marker = SyncMarker(segmentBase: segmentBase, durableBytes: segmentSize, nextSequence: segmentEndSequence)
        // A failed rewrite of these 48 bytes leaves the previous marker, which understates.
        try? syncMarker.write(marker.encode(), at: 0)
    }

    // MARK: - Appending

    /// The sequence number the next event will get.
    public var nextSequence: UInt64 { state.withLock { $0.encoder.nextSequence } }

    /// The highest timestamp handed out so far.
    public var lastHLC: HLC { state.withLock { $0.clock.last } }

    /// The fork generation the writer was made in (`ForkGuard`), and its process.
    private let forkGeneration = ForkGuard.current()
    private let ownerProcess = getpid()

    /// True in a process forked from the one that opened the writer: nothing goes through it.
    public var isInForkedChild: Bool { ForkGuard.now != forkGeneration }

    private func forkedError() -> LogError {
        LogError(.writerUnavailable, "this writer belongs to process \(ownerProcess), and this process (\(getpid())) is a fork of it: a forked process never writes into its parent's stream; open the database again in this process",
                 path: layout.streamDirectory(streamName))
    }

    /// Moves the writer's clock past a timestamp seen in another stream.
    public func observe(_ hlc: HLC) { state.withLock { $0.clock.observe(hlc) } }

    @inline(__always) private func checkUsable() throws(LogError) {
        if ForkGuard.now != forkGeneration { throw forkedError() }
        if failed.load(ordering: .relaxed) {
            coordination.lock()
            let error = failure ?? LogError(.writerUnavailable, "the writer is closed")
            coordination.unlock()
            throw LogError(.writerUnavailable, "the writer stopped after an error and accepts no more events; reopen the database. First error: \(error)",
                           path: error.path, offset: error.offset, errno: error.errno)
        }
    }

    /// The step −2^63 is where the projection's columns keep "no step": it is refused, so that a
    /// point logged with it never reads back as a point without a step.
    @inline(__always) public static func checkStep(_ step: Int64?) throws(LogError) {
        if step == Int64.min {
            throw LogError(.invalidArgument, "step -9223372036854775808 (-2^63) is reserved for points without a step; use a step from -2^63+1 to 2^63-1, or no step")
        }
    }

    /// Registers (subject, metric name) for `append(_:step:value:)`, the allocation-free path.
    public func slot(subject: String, name: String) -> SeriesSlot {
        state.withLock { s in
            let key = SeriesKeyName(subject: subject, name: name)
            if let index = s.slotIndex[key] { return SeriesSlot(index: index) }
            let index = s.slotNames.count
            s.slotNames.append(key)
            s.slotGeneration.append(.max)
            s.slotSeries.append(0)
            s.slotIndex[key] = index
            return SeriesSlot(index: index)
        }
    }

    /// The one append path: runs `body` on the open frame under the append lock, seals the frame
    /// when it reached its target size or its dictionary is nearly full, and hands a sealed
    /// frame to the flusher outside the lock. `body` returns the event's sequence number.
    /// (Records, which may also seal the frame before them, have their own: passing that second
    /// frame through here cost the metric-handle path about 7% in `track-replay synth`.)
    @inline(__always)
    private func appendUnderLock<R>(_ body: (inout AppendState) throws(LogError) -> R) throws(LogError) -> R {
        try checkUsable()
        let (result, sealed) = try state.withLock { (s: inout AppendState) throws(LogError) -> (R, PendingFrame?) in
            try LogWriter.checkOpen(s)
            let result = try body(&s)
            return (result, sealIfFull(&s))
        }
        try afterAppend(sealed)
        return result
    }

    @inline(__always) private static func checkOpen(_ s: borrowing AppendState) throws(LogError) {
        if s.closed { throw LogError(.writerUnavailable, "the writer is closed") }
    }

    /// The open frame, sealed when it reached its target size or its dictionary is nearly full.
    @inline(__always) private func sealIfFull(_ s: inout AppendState) -> PendingFrame? {
        s.encoder.buffer.count >= frameTarget || s.encoder.isNearlyFull ? seal(&s) : nil
    }

    /// Appends scalar points of one subject logged together (one operation, `names[i]` with
    /// `values[i]`): the series are defined first, so that continued points follow their event
    /// directly. Names are checked by the caller. Takes the lock itself rather than through
    /// `appendUnderLock`, whose closure is not inlined (see `append(_:step:value:)`).
    @inline(__always)
    private func appendScalars(subject: String, step: Int64?, names: UnsafeBufferPointer<String>, values: UnsafeBufferPointer<Double>) throws(LogError) -> UInt64 {
        try checkUsable()
        let count = names.count
        let (sequence, sealed) = try state.withLock { (s: inout AppendState) throws(LogError) -> (UInt64, PendingFrame?) in
            try LogWriter.checkOpen(s)
            // The state owns the encoder for the whole call: no retain needed.
            unowned(unsafe) let encoder = s.encoder
            let sequence = encoder.nextSequence
            let hlc = pointTimestamp(&s)
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: count) { ids in
                for i in 0..<count { ids[i] = encoder.seriesID(subject: subject, name: names[i]) }
                for i in 0..<count {
                    encoder.appendPoint(series: ids[i], step: step, value: values[i], hlc: hlc, continues: i > 0)
                }
            }
            return (sequence, sealIfFull(&s))
        }
        try afterAppend(sealed)
        return sequence
    }

    /// Appends one scalar point of a registered series. Returns its sequence number.
    @discardableResult
    public func append(_ slot: SeriesSlot, step: Int64?, value: Double) throws(LogError) -> UInt64 {
        try LogWriter.checkStep(step)
        // `appendUnderLock` by hand: the per-point path, where its closure was not inlined
        // (about 26 instructions a point, 8%, measured with callgrind on `track-replay synth`).
        try checkUsable()
        let (sequence, sealed) = try state.withLock { (s: inout AppendState) throws(LogError) -> (UInt64, PendingFrame?) in
            try LogWriter.checkOpen(s)
            unowned(unsafe) let encoder = s.encoder
            let series = try LogWriter.series(of: slot, &s)
            let sequence = encoder.nextSequence
            let hlc = pointTimestamp(&s)
            encoder.appendPoint(series: series, step: step, value: value, hlc: hlc, continues: false)
            return (sequence, sealIfFull(&s))
        }
        try afterAppend(sealed)
        return sequence
    }

    /// Appends `count` points of a registered series, each its own operation (as that many calls
    /// of `append(_:step:value:)` would), taking the append lock once per frame instead of once
    /// per point. `steps` nil: points without steps. Every step is checked first: a reserved one
    /// refuses the whole call before anything is written. Returns the last point's sequence number.
    @discardableResult
    public func append(_ slot: SeriesSlot, steps: UnsafePointer<Int64>?, values: UnsafePointer<Double>, count: Int) throws(LogError) -> UInt64 {
        if let steps { for i in 0..<count { try LogWriter.checkStep(steps[i]) } }
        var done = 0
        var last: UInt64 = 0
        while done < count {
            // The lock taken by hand, as in `append(_:step:value:)`; one frame's worth per turn.
            try checkUsable()
            let sealed: PendingFrame?
            (done, last, sealed) = try state.withLock { (s: inout AppendState) throws(LogError) -> (Int, UInt64, PendingFrame?) in
                try LogWriter.checkOpen(s)
                unowned(unsafe) let encoder = s.encoder
                let series = try LogWriter.series(of: slot, &s)
                if clockStale.load(ordering: .relaxed) {
                    clockStale.store(false, ordering: .relaxed)
                    s.appendsUntilClockRead = 0
                }
                let appended = encoder.appendPoints(series: series, steps: steps.map { $0 + done }, values: values + done, count: count - done,
                                                    byteLimit: frameTarget, clock: &s.clock, appendsUntilClockRead: &s.appendsUntilClockRead,
                                                    appendsPerClockRead: LogWriter.appendsPerClockRead)
                return (done + appended, encoder.nextSequence - 1, sealIfFull(&s))
            }
            // Compressing is the largest cost of a frame: the calling thread takes it when frames
            // are already waiting for the flusher, and leaves it to the flusher otherwise, so
            // that the two share the work.
            try afterAppend(framesWaiting.load(ordering: .relaxed) > 0 ? sealed?.compressed() : sealed)
        }
        return last
    }

    /// The frame-local series of a registered slot, defined in the open frame on first use.
    @inline(__always)
    private static func series(of slot: SeriesSlot, _ s: inout AppendState) throws(LogError) -> Int32 {
        let index = slot.index
        if s.slotGeneration[index] != s.encoder.generation {
            let names = s.slotNames[index]
            try LogWriter.checkName(names.subject, "subject key")
            try LogWriter.checkName(names.name, "metric name")
            s.slotSeries[index] = s.encoder.seriesID(subject: names.subject, name: names.name)
            s.slotGeneration[index] = s.encoder.generation
        }
        return s.slotSeries[index]
    }

    /// Appends one scalar point of (subject, name) without registering a slot first. Returns the
    /// event's sequence number.
    @discardableResult
    public func appendPoint(subject: String, name: String, step: Int64?, value: Double) throws(LogError) -> UInt64 {
        try LogWriter.checkStep(step)
        try LogWriter.checkName(subject, "subject key")
        try LogWriter.checkName(name, "metric name")
        var name = name, value = value
        return try withUnsafePointer(to: &name) { (n: UnsafePointer<String>) throws(LogError) -> UInt64 in
            try withUnsafePointer(to: &value) { (v: UnsafePointer<Double>) throws(LogError) -> UInt64 in
                try appendScalars(subject: subject, step: step, names: UnsafeBufferPointer(start: n, count: 1), values: UnsafeBufferPointer(start: v, count: 1))
            }
        }
    }

    /// Appends several scalar metrics of one subject logged together (one operation).
    @discardableResult
    public func appendPoints(subject: String, step: Int64?, _ points: [(name: String, value: Double)]) throws(LogError) -> UInt64 {
        let names = points.map(\.name), values = points.map(\.value)
        return try names.withUnsafeBufferPointer { (n: UnsafeBufferPointer<String>) throws(LogError) -> UInt64 in
            try values.withUnsafeBufferPointer { (v: UnsafeBufferPointer<Double>) throws(LogError) -> UInt64 in
                try appendPoints(subject: subject, step: step, names: n, values: v)
            }
        }
    }

    /// Appends scalar metrics of one subject logged together (one operation), `names[i]` with
    /// `values[i]`, after `checkPoints`. Buffers rather than closures: a caller in another module
    /// (the store's `appendMetrics`) then makes no call per metric.
    @discardableResult
    public func appendPoints(subject: String, step: Int64?, names: UnsafeBufferPointer<String>, values: UnsafeBufferPointer<Double>) throws(LogError) -> UInt64 {
        guard names.count == values.count else {
            throw LogError(.invalidArgument, "\(names.count) metric names and \(values.count) values: one value per name")
        }
        try checkPoints(subject: subject, step: step, names: names)
        return try appendScalars(subject: subject, step: step, names: names, values: values)
    }

    /// What a call logging several metrics must pass before anything is written: a usable
    /// writer, a step that is not reserved, one to `Limits.metricsPerCallMax` names, each within
    /// the string limit. A store logging metrics as a record of its own checks them here too.
    public func checkPoints(subject: String, step: Int64?, names: UnsafeBufferPointer<String>) throws(LogError) {
        try checkUsable()
        try LogWriter.checkStep(step)
        guard names.count > 0 else { throw LogError(.invalidArgument, "no metric to log") }
        try LogWriter.checkMetricCount(names.count)
        try LogWriter.checkName(subject, "subject key")
        for name in names { try LogWriter.checkName(name, "metric name") }
    }

    /// Appends any other operation. Returns its sequence number and timestamp.
    @discardableResult
    public func append(record: some Record) throws(LogError) -> (sequence: UInt64, hlc: HLC) {
        let bound = try record.checkLimits()
        try checkUsable()
        let (result, sealed) = try state.withLock { (s: inout AppendState) throws(LogError) -> ((UInt64, HLC), (PendingFrame?, PendingFrame?)) in
            if s.closed { throw LogError(.writerUnavailable, "the writer is closed") }
            // A record may be large (up to `Limits.recordBytesMax`): the batch before it is sealed
            // first when the two together could pass a frame's limit.
            let before = s.encoder.buffer.count + bound > Limits.frameRawBytesMax ? seal(&s) : nil
            let sequence = s.encoder.nextSequence
            let hlc = s.clock.tick(precise: true)
            s.encoder.appendRecord(record, hlc: hlc)
            return ((sequence, hlc), (before, s.encoder.buffer.count >= frameTarget || s.encoder.isNearlyFull ? seal(&s) : nil))
        }
        if let first = sealed.0 { try enqueue(first) }
        try afterAppend(sealed.1)
        return result
    }

    /// Refuses a subject key or metric name longer than a reader takes.
    @inline(__always) static func checkName(_ name: String, _ what: String) throws(LogError) {
        if name.utf8.count > Limits.stringBytesMax {
            throw LogError(.invalidArgument, "\(what) '\(name.prefix(40))...' is \(name.utf8.count) bytes long, over the limit of \(Limits.stringBytesMax) bytes per string; nothing was written")
        }
    }

    /// Refuses a call logging more metrics than one frame's dictionary can take with room to spare.
    @inline(__always) static func checkMetricCount(_ count: Int) throws(LogError) {
        if count > Limits.metricsPerCallMax {
            throw LogError(.invalidArgument, "\(count) metrics in one call is over the limit of \(Limits.metricsPerCallMax); log them in several calls")
        }
    }

    @inline(__always) private func afterAppend(_ sealed: PendingFrame?) throws(LogError) {
        if let sealed { try enqueue(sealed) }
        if syncEveryCall { try commit() }
    }

    /// Seals the current batch (under the append lock) and starts a new one in a spare buffer.
    private func seal(_ s: inout AppendState) -> PendingFrame? {
        guard !s.encoder.isEmpty else { return nil }
        let e = s.encoder
        let pending = PendingFrame(buffer: e.buffer, firstSequence: e.firstSequence, eventCount: e.eventCount,
                                   minHLC: e.minHLC, maxHLC: e.lastHLC, subjects: e.subjects, pointsOnly: e.pointsOnly)
        let spare = spareBuffers.withLock { $0.popLast() }
        e.reset(firstSequence: e.nextSequence, buffer: spare ?? EncodeBuffer(capacity: options.frameRawBytesTarget + 4096))
        return pending
    }

    private func enqueue(_ pending: PendingFrame) throws(LogError) {
        coordination.lock()
        defer { coordination.unlock() }
        // Back-pressure: wait while the flusher is far behind, unless this is the frame it
        // waits for (frames queued after it cannot be written before it).
        while queue.count >= options.pendingFramesMax && pending.firstSequence != nextFrameSequence && failure == nil && !flusherStopped {
            coordination.wait()
        }
        if let failure { throw LogError(.writerUnavailable, "the writer stopped after an error: \(failure)") }
        insertInOrder(pending)
        coordination.broadcast()
    }

    /// Puts a sealed frame in its place in the queue (nearly always the end). Under `coordination`.
    private func insertInOrder(_ pending: PendingFrame) {
        var index = queue.count
        while index > 0 && queue[index - 1].firstSequence > pending.firstSequence { index -= 1 }
        queue.insert(pending, at: index)
        framesWaiting.store(queue.count, ordering: .relaxed)
    }

    /// True when the queue starts with the frame that continues the stream, or the writer has
    /// failed (then whatever is queued is dropped, not written). Under `coordination`.
    private var hasFrameToTake: Bool {
        guard let first = queue.first else { return false }
        return first.firstSequence == nextFrameSequence || failure != nil
    }

    // MARK: - Durability

    /// Returns once every event appended before the call is written and fsynced.
    public func commit() throws(LogError) {
        if isInForkedChild { throw forkedError() }
        let sealed = state.withLock { s in seal(&s) }
        if let sealed { try enqueue(sealed) }
        let target = state.withLock { $0.encoder.firstSequence }
        coordination.lock()
        defer { coordination.unlock() }
        if target > commitTarget { commitTarget = target }
        coordination.broadcast()
        while durableSequence < target && failure == nil && !flusherStopped {
            coordination.wait()
        }
        if let failure { throw LogError(.writerUnavailable, "commit failed: \(failure)", path: failure.path, offset: failure.offset, errno: failure.errno) }
        if durableSequence < target { throw LogError(.writerUnavailable, "the writer is closed") }
    }

    /// Writes the current batch without waiting for an fsync (used by tailing tests and tools).
    public func flush() throws(LogError) {
        if isInForkedChild { throw forkedError() }
        let sealed = state.withLock { s in seal(&s) }
        if let sealed { try enqueue(sealed) }
        let target = state.withLock { $0.encoder.firstSequence }
        coordination.lock()
        defer { coordination.unlock() }
        flushRequested = true
        coordination.broadcast()
        while writtenSequence < target && failure == nil && !flusherStopped { coordination.wait() }
        if let failure { throw LogError(.writerUnavailable, "flush failed: \(failure)") }
    }

    /// Commits, stops the flusher and releases the stream. Later calls throw.
    public func close() throws(LogError) {
        // In a forked child nothing is committed, stopped or unlocked: the stream and its lock are
        // the parent's (an explicit unlock here would release the parent's flock).
        if isInForkedChild { return }
        var commitError: LogError?
        do { try commit() } catch { commitError = error }
        let alreadyClosed = state.withLock { s -> Bool in
            let was = s.closed
            s.closed = true
            return was
        }
        if !alreadyClosed {
            coordination.lock()
            stopping = true
            coordination.broadcast()
            while !flusherStopped { coordination.wait() }
            coordination.unlock()
            segment.close()
            syncMarker.close()
            lockFile.close()
        }
        if let commitError, !alreadyClosed { throw commitError }
    }

    /// The sequence number below which everything is durable.
    public var durableSequenceNumber: UInt64 {
        coordination.lock()
        defer { coordination.unlock() }
        return durableSequence
    }

    // MARK: - Flusher

    private func flusherLoop() {
        let interval = Double(max(1, options.flushIntervalMilliseconds)) / 1000
        coordination.lock()
        while true {
            clockStale.store(true, ordering: .relaxed)
            // A frame sealed before the first one queued is on its way (its thread hands it
            // over right after sealing): wait for it.
            while !hasFrameToTake && !queue.isEmpty { coordination.wait() }
            if queue.isEmpty && !stopping {
                let needsSync = commitTarget > durableSequence && writtenSequence >= commitTarget
                if !needsSync {
                    let timedOut = !coordination.wait(seconds: interval)
                    if timedOut && queue.isEmpty && failure == nil {
                        // Interval flush: seal whatever the appenders have buffered.
                        coordination.unlock()
                        let sealed = state.withLock { s in seal(&s) }
                        coordination.lock()
                        if let sealed { insertInOrder(sealed) }
                    }
                }
            }
            // The frames that continue the stream, in order; any after a gap wait for it.
            var taken = 0
            while taken < queue.count && (queue[taken].firstSequence == nextFrameSequence || failure != nil) {
                nextFrameSequence = queue[taken].firstSequence + UInt64(queue[taken].eventCount)
                taken += 1
            }
            let batch = Array(queue.prefix(taken))
            queue.removeFirst(taken)
            framesWaiting.store(queue.count, ordering: .relaxed)
            let wantSync = commitTarget > durableSequence || stopping
            let isStopping = stopping
            let hasFailed = failure != nil
            coordination.broadcast()
            coordination.unlock()

            var written = [EncodeBuffer]()
            var lastEnd: UInt64?
            var error: LogError?
            if !hasFailed {
                for pending in batch {
                    do {
                        try write(pending)
                        lastEnd = pending.firstSequence + UInt64(pending.eventCount)
                    } catch let e {
                        error = e
                        break
                    }
                    written.append(pending.buffer)
                }
                if error == nil && (wantSync || (options.durability != .buffered && !batch.isEmpty)) && segmentDirty {
                    do { try segment.sync(); segmentDirty = false; markDurable() } catch let e { error = e }
                }
            }

            for buffer in written { buffer.reset() }
            spareBuffers.withLock { spares in
                for buffer in written where spares.count < LogWriter.spareBuffersMax { spares.append(buffer) }
            }
            coordination.lock()
            if let lastEnd { writtenSequence = lastEnd }
            if error == nil && !segmentDirty { durableSequence = writtenSequence }
            if let error, failure == nil {
                failure = error
                failed.store(true, ordering: .releasing)
                // Cut whatever part of the failed frame reached the file, so no reader sees it.
                try? segment.truncate(to: segmentSize)
            }
            coordination.broadcast()
            if isStopping && queue.isEmpty {
                flusherStopped = true
                coordination.broadcast()
                coordination.unlock()
                return
            }
        }
    }

    /// Compresses and writes one frame, rolling the segment first if it is full.
    private func write(_ pending: PendingFrame) throws(LogError) {
        let frame = pending.frame ?? Frame.make(payload: pending.buffer.bytes, firstSequence: pending.firstSequence, eventCount: pending.eventCount,
                                                minHLC: pending.minHLC, maxHLC: pending.maxHLC, subjects: pending.subjects,
                                                pointsOnly: pending.pointsOnly)
        if options.verifyFrames { try Frame.check(frame, path: layout.segmentPath(streamName, base: segmentBase), records: records) }
        if segmentSize > Int64(SegmentHeader.sizeBytes) && segmentSize + Int64(frame.bytes.count) > options.segmentBytes {
            try rollSegment(nextBase: pending.firstSequence)
        }
        try segment.write(frame.bytes, at: segmentSize)
        segmentFrames.append(FrameLocation(header: frame.header, offset: segmentSize))
        segmentFrameSubjects.append(frame.subjects)
        segmentSize += Int64(frame.bytes.count)
        segmentEndSequence = pending.firstSequence + UInt64(pending.eventCount)
        segmentDirty = true
        if segmentSize - writebackStart >= LogWriter.writebackBytes {
            segment.startWriteback(at: writebackStart, count: Int(segmentSize - writebackStart))
            writebackStart = segmentSize
            // Three quarters full: flush the segment in the background, so that the fsync of
            // its roll has a quarter left to wait for rather than all of it.
            if !segmentPreSynced && segmentSize >= options.segmentBytes / 4 * 3 {
                segmentPreSynced = segment.syncInBackground()
            }
        }
        if options.durability != .buffered {
            try segment.sync()
            segmentDirty = false
            markDurable()
        }
    }

    /// Seals the active segment (fsync, then its index) and starts a new one at `nextBase`.
    private func rollSegment(nextBase: UInt64) throws(LogError) {
        try segment.sync()
        segmentDirty = false
        let index = StreamRecovery.index(frames: segmentFrames, subjects: segmentFrameSubjects, base: segmentBase, size: segmentSize)
        try StreamRecovery.writeIndex(index, path: layout.indexPath(streamName, base: segmentBase))
        segment.close()
        let (file, size) = try StreamRecovery.createSegment(layout: layout, stream: streamName, base: nextBase)
        segment = file
        segmentBase = nextBase
        segmentSize = size
        writebackStart = size
        segmentPreSynced = false
        segmentFrames = []
        segmentFrameSubjects = []
        markDurable()
    }
}

