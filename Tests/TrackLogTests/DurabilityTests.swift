import Foundation
import Testing
import TrackLog
@testable import TrackStore
import TrackModel

/// Issue 12: nothing acknowledged is lost, and no damage is silent. Each test is named after the
/// failure it guards against; each failed on the code before it.
@Suite("Acknowledged data and damage")
struct DurabilityTests {
    /// A stream written with `durability`, `frames` commits of a few points each.
    static func write(_ dir: TemporaryDirectory, frames: Int, durability: Durability = .groupCommit, segmentBytes: Int64 = Limits.segmentBytesDefault,
                      pointsPerFrame: Int = 10) throws -> String {
        let notices = NoticeCollector()
        var options = writerOptions(notices, segmentBytes: segmentBytes, durability: durability)
        options.flushIntervalMilliseconds = 3_600_000
        let writer = try LogWriter.open(database: dir.db, options: options)
        let slot = writer.slot(subject: "a_0", name: "loss")
        var step: Int64 = 0
        for _ in 0..<frames {
            for _ in 0..<pointsPerFrame { try writer.append(slot, step: step, value: Double(step) * 0.5); step += 1 }
            try writer.commit()
        }
        try writer.close()
        #expect(notices.all.isEmpty, "\(notices.all)")
        return writer.streamName
    }

    @Test("SyncedLastFrameFlippedIsDamageNotTornTail: a fsynced frame is never cut, and its sequences are never reused")
    func syncedFrameIsNotTorn() throws {
        let dir = TemporaryDirectory()
        let stream = try Self.write(dir, frames: 3)
        let layout = DatabaseLayout(root: dir.db)
        let segment = layout.segmentPath(stream, base: 0)
        let frames = readFile(segment).withUnsafeBytes { SegmentScanner.scan($0, path: segment).frames }
        try #require(frames.count == 3)
        var bytes = readFile(segment)
        bytes[Int(frames[2].offset) + 70] ^= 0x01
        writeFile(segment, bytes)

        // A reader reports it (the materializer's damage list), before any writer opens the stream.
        let readNotices = NoticeCollector()
        let materializer = try Materializer(database: dir.db, reporter: readNotices.reporter)
        try materializer.smartReload()
        #expect(materializer.damage.contains { $0.path == segment && $0.offset == frames[2].offset }, "\(materializer.damage)")

        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        #expect(notices.of(.tornTailCut).isEmpty, "\(notices.all)")
        #expect(notices.of(.damage).contains { $0.path == segment && $0.offset == frames[2].offset }, "\(notices.all)")
        #expect(writer.nextSequence == frames[2].header.endSequence, "the damaged frame's sequences are not reused")
        try writer.append(writer.slot(subject: "a_0", name: "loss"), step: 1000, value: 1)
        try writer.close()
        #expect(readFile(segment) == bytes, "the damaged bytes are kept")
        // Later readers still see the loss: a gap in the sequences.
        let later = try Materializer(database: dir.db, reporter: NoticeCollector().reporter)
        try later.smartReload()
        #expect(later.damage.contains { $0.message.contains("\(frames[2].header.firstSequence)..<\(frames[2].header.endSequence)") }, "\(later.damage)")
    }

    @Test("UnsyncedTailIsStillCut: bytes past the sync marker are an unfinished write")
    func unsyncedTailIsCut() throws {
        let dir = TemporaryDirectory()
        let stream = try Self.write(dir, frames: 2, durability: .buffered)
        let layout = DatabaseLayout(root: dir.db)
        let segment = layout.segmentPath(stream, base: 0)
        let durable = readFile(segment).count
        // A frame appended after the last fsync, torn by a crash.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector()))
        let marker = readFile(layout.syncMarkerPath(stream))
        try writer.append(writer.slot(subject: "a_0", name: "loss"), step: 99, value: 1)
        try writer.close()
        writeFile(layout.syncMarkerPath(stream), marker)
        let full = readFile(segment)
        writeFile(segment, Array(full.prefix(durable + 40)))
        let notices = NoticeCollector()
        try LogWriter.open(database: dir.db, options: writerOptions(notices)).close()
        #expect(notices.of(.damage).isEmpty, "\(notices.all)")
        #expect(notices.of(.tornTailCut).count == 1)
        #expect(readFile(segment).count == durable)
    }

    @Test("TruncatedDurableSegmentIsReported: durable bytes cut off the active segment are damage")
    func truncatedDurable() throws {
        let dir = TemporaryDirectory()
        let stream = try Self.write(dir, frames: 4)
        let segment = DatabaseLayout(root: dir.db).segmentPath(stream, base: 0)
        let bytes = readFile(segment)
        writeFile(segment, Array(bytes.prefix(bytes.count - 100)))
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        #expect(notices.of(.damage).count == 1 && notices.of(.tornTailCut).isEmpty, "\(notices.all)")
        #expect(writer.nextSequence == 40)
        try writer.close()
    }

    @Test("MissingOrTruncatedSegmentsAreGaps: a deleted first or middle segment is reported with the missing range")
    func missingSegments() throws {
        for victim in [0, 2] {
            let dir = TemporaryDirectory()
            let stream = try Self.write(dir, frames: 400, durability: .buffered, segmentBytes: Limits.segmentBytesMin)
            let layout = DatabaseLayout(root: dir.db)
            let bases = layout.segmentBases(stream)
            try #require(bases.count > 3)
            try FileManager.default.removeItem(atPath: layout.segmentPath(stream, base: bases[victim]))
            try? FileManager.default.removeItem(atPath: layout.indexPath(stream, base: bases[victim]))
            let materializer = try Materializer(database: dir.db, reporter: NoticeCollector().reporter)
            try materializer.smartReload()
            let expected = "\(bases[victim])..<\(bases[victim + 1])"
            #expect(materializer.damage.contains { $0.message.contains(expected) }, "segment \(victim): \(materializer.damage)")
        }
    }

    @Test("OversizedRecordIsRefusedBeforeWrite: strings, nestings and records over their limits are refused, naming object, field and limit")
    func oversizedRecords() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        // Buffered: under `sync` every point would be its own fsynced frame (30,000 fsyncs) and
        // the largest record would never meet a batch.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, durability: .buffered))
        let uid = String(repeating: "a", count: 64) + "_0"
        func refused(_ record: LogRecord, _ words: [String]) {
            do {
                try writer.append(record)
                Issue.record("accepted \(record.kindName)")
            } catch {
                #expect(error.code == .invalidArgument)
                for w in words { #expect(error.message.contains(w), "\(error.message) lacks \(w)") }
            }
        }
        let big = String(repeating: "x", count: Limits.stringBytesMax + 1)
        refused(.metadataLogged(trial: uid, ["blob": .string(big)]), ["trial \(uid)", "metadata.blob", "\(Limits.stringBytesMax)"])
        let chunk = String(repeating: "y", count: 900_000)
        var huge: ValueObject = [:]
        for i in 0..<6 { huge["part\(i)"] = .string(chunk) }
        refused(.metadataLogged(trial: uid, huge), ["trial \(uid)", "metadata", "\(Limits.recordBytesMax)"])
        var nested: Value = 1
        for _ in 0..<70 { nested = .array([nested]) }
        refused(.tagsAdded(trial: uid, ["deep": nested]), ["tags.deep", "\(Limits.valueDepthMax)"])
        refused(.projectCreated(Project(name: big)), ["name", "\(Limits.stringBytesMax)"])
        #expect(throws: LogError.self) { try writer.appendPoint(subject: uid, name: big, step: 1, value: 1) }
        #expect(throws: LogError.self) { try writer.append(writer.slot(subject: big, name: "loss"), step: 1, value: 1) }
        // The largest record allowed is stored and reads back, after a batch it would overflow.
        for i in 0..<30_000 { try writer.appendPoint(subject: uid, name: "loss", step: Int64(i), value: Double(i)) }
        var largest: ValueObject = [:]
        for i in 0..<2 { largest["part\(i)"] = .string(chunk) }
        try writer.append(.metadataLogged(trial: uid, largest))
        try writer.close()
        let frames = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
        let records = frames.flatMap { $0.frame.events }.compactMap(\.record)
        #expect(records == [.metadataLogged(trial: uid, largest)])
        #expect(points(frames).count == 30_000)
        #expect(notices.all.isEmpty, "\(notices.all)")
    }

    @Test("ManySeriesInOneBatchStayReadable: a frame is sealed before its dictionary passes what readers take")
    func dictionaryLimit() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        var options = writerOptions(notices, frameBytes: Limits.frameRawBytesTargetMax)
        options.flushIntervalMilliseconds = 3_600_000
        let writer = try LogWriter.open(database: dir.db, options: options)
        let count = Limits.dictionaryEntriesMax + 5000
        for i in 0..<count { try writer.appendPoint(subject: "t_0", name: "m\(i)", step: nil, value: 1) }
        try writer.close()
        let frames = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
        #expect(points(frames).count == count)
        #expect(frames.count >= 2)
        #expect(notices.all.isEmpty)
        #expect(throws: LogError.self) {
            let w = try LogWriter.open(database: dir.db, options: options)
            defer { try? w.close() }
            try w.appendPoints(subject: "t_0", step: 1, (0...Limits.metricsPerCallMax).map { ("n\($0)", 1.0) })
        }
    }

    @Test("UnreadableFrameIsNeverWritten: the writer reads each frame back and fails instead of writing one that would not read")
    func unreadableFrameFailsTheCheck() throws {
        var garbage = [UInt8](repeating: 0xFF, count: 300)
        garbage[0] = 0x7F
        let frame = garbage.withUnsafeBytes {
            Frame.make(payload: $0, firstSequence: 0, eventCount: 3, minHLC: HLC(rawValue: 1), maxHLC: HLC(rawValue: 1), subjects: [])
        }
        #expect { try Frame.check(frame, path: "seg", records: .track) } throws: {
            guard let e = $0 as? LogError else { return false }
            return e.code == .corruptFrame && e.message.contains("not written")
        }
        #expect(WriterOptions().verifyFrames, "the read-back check is on by default")
    }

    @Test("ReservedStepIsRefused: step -2^63 is an error, not a point without a step")
    func reservedStep() throws {
        let dir = TemporaryDirectory()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector()))
        defer { try? writer.close() }
        #expect(throws: LogError.self) { try writer.appendPoint(subject: "t_0", name: "loss", step: .min, value: 1) }
        #expect(throws: LogError.self) { try writer.append(writer.slot(subject: "t_0", name: "loss"), step: .min, value: 1) }
        #expect(throws: LogError.self) { try writer.appendMetrics(trial: "t_0", step: .int(.min), ["loss": 1.0]) }
        #expect(throws: LogError.self) { try writer.appendMetrics(trial: "t_0", step: .int(.min), ["loss": 1]) }
        try writer.appendPoint(subject: "t_0", name: "loss", step: .min + 1, value: 1)
    }

    @Test("NewStreamDirectoryIsSyncedIntoStreams: every directory a commit depends on has its parent fsynced")
    func directoriesSynced() throws {
        let dir = TemporaryDirectory()
        IOFaults.startRecording(pathPrefix: dir.path)
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(NoticeCollector()))
        try writer.appendPoint(subject: "t_0", name: "loss", step: 1, value: 1)
        try writer.commit()
        let events = IOFaults.stopRecording()
        try writer.close()
        let layout = DatabaseLayout(root: dir.db)
        for directory in [layout.root, layout.streamsDirectory, layout.streamDirectory(writer.streamName)] {
            let parent = String(directory[..<directory.lastIndex(of: "/")!])
            guard let made = events.firstIndex(where: { $0.path == directory && $0.kind == .mkdir }) else {
                Issue.record("\(directory) was not made"); continue
            }
            #expect(events[made...].contains { $0.path == parent && $0.kind == .fsync }, "\(parent) not fsynced after mkdir \(directory)")
        }
    }

    /// A file's bytes with `value` stored at `offset` and the trailing CRC32C recomputed.
    static func craft(_ bytes: [UInt8], at offset: Int, _ value: UInt64) -> [UInt8] {
        var b = bytes
        withUnsafeBytes(of: value.littleEndian) { for i in 0..<8 { b[offset + i] = $0[i] } }
        let crc = CRC32C.checksum(Array(b[0..<b.count - 4]))
        withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { b[b.count - 4 + i] = $0[i] } }
        return b
    }

    @Test("CraftedNumbersDoNotTrap: huge offsets and sizes with valid checksums are errors")
    func craftedNumbers() throws {
        let manifest = Manifest(generation: 1, snapshotName: "s", watermarks: [StreamWatermark(stream: "x", sequence: 1, base: 0, offset: 32)]).encode()
        // magic 8, version 2, reserved 2+4, generation 8, name (4 + 1), count 4, stream (4 + 1), sequence 8, base 8, offset 8.
        let offsetAt = 24 + 5 + 4 + 5 + 16
        #expect(throws: LogError.self) { try Manifest.decode(Self.craft(manifest, at: offsetAt, 1 << 63), path: "MANIFEST") }
        let snapshot = Snapshot.encode(Projection(), generation: 1)
        #expect(throws: LogError.self) { try Snapshot.decode(Self.craft(snapshot, at: 24, 1 << 63), path: "snap") }
        #expect(throws: LogError.self) { try Snapshot.decode(Self.craft(snapshot, at: 24, 1 << 39), path: "snap") }
        let index = SegmentIndex.make(frames: [], subjects: [], baseSequence: 0, segmentBytes: 32).encode()
        let crafted = Self.craft(index, at: 24, 1 << 63)
        if case .success = crafted.withUnsafeBytes({ SegmentIndex.decode($0, path: "idx") }) { Issue.record("accepted an impossible segment size") }
    }
}
