import Foundation
import Testing
import TrackLog
@testable import TrackStore
import TrackModel

/// The recovery cases of `SegmentScanner` and `StreamRecovery`, each by name.
@Suite("Crash recovery and damage detection")
struct RecoveryTests {
    /// How much of a test database its sync marker calls durable.
    enum Synced { case all, first(Int), none }

    /// A database with one stream and one segment of `frames` frames of `pointsPerFrame` points.
    ///
    /// `synced` says how many of them the stream's sync marker calls durable, as if the
    /// fsyncs of the others had not returned when the process died (nil: no marker at all, as
    /// right after the segment was created); by default all of them.
    static func makeDatabase(_ dir: TemporaryDirectory, frames: Int, pointsPerFrame: Int = 20, synced: Synced = .all) throws -> (stream: String, segment: String) {
        let notices = NoticeCollector()
        var options = writerOptions(notices)
        // Only commits seal frames here: an interval flush under load would split them.
        options.flushIntervalMilliseconds = 3_600_000
        let writer = try LogWriter.open(database: dir.db, options: options)
        let markerPath = DatabaseLayout(root: dir.db).syncMarkerPath(writer.streamName)
        var marker = readFile(markerPath)
        let s = writer.slot(subject: "a_0", name: "loss")
        for f in 0..<frames {
            for p in 0..<pointsPerFrame { try writer.append(s, step: Int64(f * pointsPerFrame + p), value: Double(p) * 0.37) }
            try writer.commit()  // one frame per commit
            if case .first(let n) = synced, f + 1 == n { marker = readFile(markerPath) }
        }
        try writer.close()
        switch synced {
        case .all: break
        case .none: try FileManager.default.removeItem(atPath: markerPath)
        case .first: writeFile(markerPath, marker)
        }
        let segment = DatabaseLayout(root: dir.db).segmentPath(writer.streamName, base: 0)
        return (writer.streamName, segment)
    }

    static func frameOffsets(_ segment: String) -> [FrameLocation] {
        readFile(segment).withUnsafeBytes { SegmentScanner.scan($0, path: segment).frames }
    }

    @Test("TruncatedTrailingFrameIsCutAtEveryOffset: truncating inside the last frame recovers exactly the frames before it")
    func truncatedTail() throws {
        let dir = TemporaryDirectory()
        // The last frame's fsync never returned: its bytes are an unfinished write.
        let (stream, segment) = try Self.makeDatabase(dir, frames: 3, synced: .first(2))
        let original = readFile(segment)
        let markerPath = DatabaseLayout(root: dir.db).syncMarkerPath(stream)
        let marker = readFile(markerPath)
        let frames = Self.frameOffsets(segment)
        try #require(frames.count == 3)
        let last = frames[2]
        for cut in Int(last.offset)..<Int(last.endOffset) {
            writeFile(segment, Array(original.prefix(cut)))
            writeFile(markerPath, marker)
            let notices = NoticeCollector()
            // A reader sees the two complete frames and no damage.
            let reader = try LogReader(database: dir.db, reporter: notices.reporter)
            let before = try reader.allFrames()
            #expect(before.count == 2, "cut at \(cut)")
            // The writer's recovery cuts the torn tail and reports it, then appends after it.
            let writer = try openStream(dir.db, stream, writerOptions(notices))
            if cut > Int(last.offset) {
                let torn = notices.of(.tornTailCut)
                #expect(torn.count == 1 && torn.first?.offset == last.offset, "cut at \(cut): \(notices.all)")
            }
            #expect(notices.of(.damage).isEmpty)
            #expect(writer.nextSequence == frames[1].header.endSequence)
            try writer.append(writer.slot(subject: "a_0", name: "loss"), step: 999, value: 1)
            try writer.close()
            // The torn tail was cut: the new frame starts where the torn one did, and the file ends with it.
            let rewritten = Self.frameOffsets(segment)
            #expect(rewritten.count == 3 && rewritten.last?.offset == last.offset, "cut at \(cut)")
            #expect(FileManager.default.fileSize(segment) == rewritten.last?.endOffset, "cut at \(cut)")
            let after = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
            #expect(after.count == 3, "cut at \(cut)")
            #expect(points(after).last?.2 == 999)
            #expect(sequences(after) == Array(0..<frames[1].header.endSequence + 1))
        }
    }

    @Test("AnyFlippedByteIsDetected: flipping any single byte of any frame is reported with segment and offset")
    func flippedBytes() throws {
        let dir = TemporaryDirectory()
        let (_, segment) = try Self.makeDatabase(dir, frames: 3, pointsPerFrame: 8)
        let original = readFile(segment)
        let frames = Self.frameOffsets(segment)
        try #require(frames.count == 3)
        for frameIndex in 0..<3 {
            let frame = frames[frameIndex]
            for position in Int(frame.offset)..<Int(frame.endOffset) {
                var bytes = original
                bytes[position] ^= 0x01
                let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: segment) }
                if frameIndex < 2 {
                    // Damage before the tail: reported at the frame's offset, later frames still read.
                    #expect(scan.damage.count == 1 && scan.damage.first?.offset == frame.offset, "flip at \(position)")
                    #expect(scan.frames.count == 2, "flip at \(position)")
                } else {
                    // The last frame failing its check is a torn tail, reported when cut.
                    #expect(scan.damage.isEmpty && scan.frames.count == 2 && scan.validEnd == frame.offset, "flip at \(position)")
                }
                if position % 16 == 0 && frameIndex < 2 {
                    // The reader refuses damage by default, naming the segment and offset...
                    writeFile(segment, bytes)
                    let error = captureLogError { _ = try LogReader(database: dir.db, reporter: { _ in }).allFrames() }
                    #expect(error?.code == .corruptFrame, "flip at \(position)")
                    #expect(error?.path == segment && error?.offset == frame.offset, "flip at \(position)")
                    // ...or reports it and reads on when asked to.
                    let notices = NoticeCollector()
                    let rest = try LogReader(database: dir.db, damagePolicy: .reportAndSkip, reporter: notices.reporter).allFrames()
                    #expect(rest.count == 2)
                    #expect(notices.of(.damage).first?.offset == frame.offset)
                }
            }
        }
        writeFile(segment, original)
    }

    @Test("DamageBeforeTailIsNeverOverwritten: a writer opening a damaged segment keeps it and continues in a new one")
    func damageBeforeTail() throws {
        let dir = TemporaryDirectory()
        let (stream, segment) = try Self.makeDatabase(dir, frames: 3)
        var bytes = readFile(segment)
        let frames = Self.frameOffsets(segment)
        bytes[Int(frames[1].offset) + 70] ^= 0xFF
        writeFile(segment, bytes)
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        #expect(notices.of(.damage).first?.offset == frames[1].offset)
        #expect(writer.nextSequence == frames[2].header.endSequence)
        try writer.append(writer.slot(subject: "a_0", name: "loss"), step: 1000, value: 1)
        try writer.close()
        #expect(readFile(segment) == bytes, "the damaged segment is left as it was")
        #expect(DatabaseLayout(root: dir.db).segmentBases(stream).count == 2)
        let rest = try LogReader(database: dir.db, damagePolicy: .reportAndSkip, reporter: notices.reporter).allFrames()
        #expect(rest.count == 3)
        #expect(points(rest).last?.2 == 1000)
    }

    @Test("SegmentHeaderNeverWrittenIsRewritten and DamagedSegmentHeaderIsReported")
    func segmentHeaders() throws {
        let dir = TemporaryDirectory()
        // Killed right after creating the segment: no sync marker yet.
        let (_, segment) = try Self.makeDatabase(dir, frames: 2, synced: .none)
        let original = readFile(segment)
        // A header torn at creation, no frames: rewritten.
        writeFile(segment, Array(original.prefix(10)))
        let notices = NoticeCollector()
        try LogWriter.open(database: dir.db, options: writerOptions(notices)).close()
        #expect(readFile(segment).count == SegmentHeader.sizeBytes)
        #expect(notices.of(.tornTailCut).count == 1)
        // A damaged header with frames after it: reported, frames still read.
        var damaged = original
        damaged[3] ^= 0xFF
        writeFile(segment, damaged)
        let scan = damaged.withUnsafeBytes { SegmentScanner.scan($0, path: segment) }
        #expect(scan.frames.count == 2)
        guard case .failure(let error) = scan.header else { Issue.record("the damaged header was accepted"); return }
        #expect(error.offset == 0 && error.path == segment)
    }

    @Test("InjectedENOSPCAndEIO: I/O errors are thrown and leave no frame a later read accepts")
    func injectedErrors() throws {
        for (operation, code) in [(IOOperation.write, ENOSPC), (.write, EIO), (.fsync, EIO)] {
            let dir = TemporaryDirectory("\(operation)\(code)")
            let notices = NoticeCollector()
            let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, frameBytes: 512))
            let s = writer.slot(subject: "a_0", name: "loss")
            for step in 0..<200 { try writer.append(s, step: Int64(step), value: Double(step)) }
            try writer.commit()
            let durable = writer.durableSequenceNumber
            IOFaults.inject(.init(pathPrefix: dir.db, operation: operation, errno: code, skip: operation == .write ? 1 : 0, partialBytes: 37))
            defer { IOFaults.clear(pathPrefix: dir.db) }
            let thrown = captureLogError {
                for step in 200..<2000 { try writer.append(s, step: Int64(step), value: Double(step)) }
                try writer.commit()
            }
            #expect(thrown != nil, "\(operation) \(code): no error surfaced")
            #expect(thrown?.errno == code || thrown?.message.contains("errno \(code)") == true, "\(String(describing: thrown))")
            // The writer stays failed: later calls throw instead of losing data silently.
            #expect(throws: LogError.self) { try writer.append(s, step: 5000, value: 1); try writer.commit() }
            try? writer.close()
            IOFaults.clear(pathPrefix: dir.db)
            let reopened = NoticeCollector()
            let frames = try LogReader(database: dir.db, reporter: reopened.reporter).allFrames()
            let pts = points(frames)
            #expect(UInt64(pts.count) >= durable, "committed points survive")
            #expect(zip(pts, 0...).allSatisfy { $0.0.2 == Int64($0.1) }, "what reads back is a prefix, in order")
            // Reopening for writing finds no damage: at most a torn tail, cut.
            try LogWriter.open(database: dir.db, options: writerOptions(reopened)).close()
            #expect(reopened.of(.damage).isEmpty, "\(reopened.all)")
        }
    }
}

extension FileManager {
    func fileSize(_ path: String) -> Int64 { (try? attributesOfItem(atPath: path)[.size] as? Int64) ?? -1 }
}

/// The `LogError` `body` throws, if any.
/// Opens a writer on `stream` itself. A child process that another test thread is starting
/// holds a copy of the stream's lock between its fork and its exec (flock locks belong to the open
/// file description, which the child shares until exec closes it), so a writer opened right after
/// the previous one closed may find the lock held for a moment; without a name it would then
/// start a new stream. Waits until the lock is free.
func openStream(_ database: String, _ stream: String, _ options: WriterOptions) throws -> LogWriter {
    var named = options
    named.streamName = stream
    let deadline = Date().addingTimeInterval(10)
    while true {
        let result = Result { () throws(LogError) -> LogWriter in try LogWriter.open(database: database, options: named) }
        switch result {
        case .success(let writer): return writer
        case .failure(let error):
            guard error.code == .streamLocked, Date() < deadline else { throw error }
            usleep(1_000)
        }
    }
}

func captureLogError(_ body: () throws -> Void) -> LogError? {
    do { try body() } catch { return error as? LogError }
    return nil
}
