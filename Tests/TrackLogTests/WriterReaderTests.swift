import Foundation
import Testing
import Synchronization
import TrackLog
@testable import TrackStore
import TrackModel

@Suite("Writer, segments, indices, reader and tailer")
struct WriterReaderTests {
    @Test("appended events read back in order, across segments, with contiguous sequences")
    func writeAndRead() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 16 << 10, frameBytes: 2048))
        let records = try sampleRecords()
        for r in records { try writer.append(r) }
        let loss = writer.slot(subject: "t1_0", name: "loss")
        for step in 0..<20_000 { try writer.append(loss, step: Int64(step), value: 1 / Double(step + 1)) }
        try writer.appendPoints(subject: "t2_0", step: 5, [(name: "a", value: 1), (name: "b", value: 2)])
        try writer.commit()
        let stream = writer.streamName
        try writer.close()

        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        let segments = reader.segments(stream)
        #expect(segments.count > 2, "small segments roll")
        for segment in segments.dropLast() {
            #expect(FileManager.default.fileExists(atPath: segment.path.replacingOccurrences(of: ".log", with: ".idx")), "sealed segments have an index")
        }
        let frames = try reader.allFrames()
        let seqs = sequences(frames)
        #expect(seqs.count == records.count + 20_001 && isContiguous(seqs), "sequences are contiguous, the two points of one call share one")
        let pts = points(frames)
        #expect(pts.count == 20_002)
        #expect(pts[0].0 == "t1_0" && pts[0].2 == 0 && pts[0].3 == 1)
        #expect(pts[19_999].2 == 19_999)
        #expect(pts[20_000].1 == "a" && pts[20_001].1 == "b" && pts[20_001].2 == 5)
        var decodedRecords: [LogRecord] = []
        for f in frames { for e in f.frame.events { if let r = e.record { decodedRecords.append(r) } } }
        #expect(decodedRecords == records)
        #expect(notices.all.isEmpty, "\(notices.all)")
    }

    @Test("points appended many at a time read back as one call per point would write them, across frames")
    func appendMany() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 16 << 10, frameBytes: 2048))
        let loss = writer.slot(subject: "t1_0", name: "loss")
        let n = 20_000
        let steps = (0..<n).map { Int64($0 * 3) }, values = (0..<n).map { 1 / Double($0 + 1) }
        try writer.append(loss, step: -1, value: 7)
        try steps.withUnsafeBufferPointer { s in try values.withUnsafeBufferPointer { v in
            _ = try writer.append(loss, steps: s.baseAddress, values: v.baseAddress!, count: n)
        } }
        try values.withUnsafeBufferPointer { v in _ = try writer.append(loss, steps: nil, values: v.baseAddress!, count: 3) }
        // A reserved step anywhere refuses the whole call.
        let bad: [Int64] = [1, Int64.min]
        #expect(throws: LogError.self) { try bad.withUnsafeBufferPointer { s in try values.withUnsafeBufferPointer { v in
            _ = try writer.append(loss, steps: s.baseAddress, values: v.baseAddress!, count: 2)
        } } }
        try writer.close()
        let frames = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
        #expect(frames.count > 10, "one call spans many frames")
        let seqs = sequences(frames)
        #expect(seqs.count == n + 4 && isContiguous(seqs), "each point its own operation")
        let pts = points(frames)
        #expect(pts.count == n + 4)
        #expect(pts[0].2 == -1 && pts[1].2 == 0 && pts[n].2 == Int64((n - 1) * 3) && pts[n].3 == 1 / Double(n))
        #expect(pts[n + 1].2 == nil && pts[n + 3].3 == values[2])
        #expect(notices.all.isEmpty, "\(notices.all)")
    }

    @Test("threads appending at once, each sealing frames, leave frames on disk in sequence order")
    func concurrentSealsStayInOrder() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        // A one-byte frame target: every append seals its frame, so the threads race to hand
        // frames to the flusher. A frame sealed first must be written first.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, frameBytes: 1))
        let threads = 4, perThread = 5_000
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let slot = writer.slot(subject: "t\(t)_0", name: "loss")
            for step in 0..<perThread {
                do { try writer.append(slot, step: Int64(step), value: Double(step)) } catch { failures.withLock { $0 += 1 } }
            }
        }
        try writer.close()
        #expect(failures.withLock { $0 } == 0)
        let frames = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
        let firsts = frames.map(\.frame.header.firstSequence)
        #expect(firsts == firsts.sorted(), "frames out of sequence order on disk")
        let seqs = sequences(frames)
        #expect(seqs.count == threads * perThread && isContiguous(seqs))
        #expect(notices.all.isEmpty, "\(notices.all)")
    }

    @Test("segments flushed in the background at three quarters full still roll and read back whole")
    func backgroundSegmentSync() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        // 3 MiB segments: writeback starts every MiB and the background fsync at 2.25 MiB.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 3 << 20))
        let loss = writer.slot(subject: "t1_0", name: "loss")
        let n = 2_000_000
        var random = SeededRandom(seed: 7)
        let values = (0..<n).map { _ in Double(bitPattern: random.next() >> 2) }  // incompressible: about 10 bytes a point
        try values.withUnsafeBufferPointer { v in _ = try writer.append(loss, steps: nil, values: v.baseAddress!, count: n) }
        try writer.commit()
        let stream = writer.streamName
        try writer.close()
        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        #expect(reader.segments(stream).count >= 5)
        let read = points(try reader.allFrames())
        #expect(read.count == n && read.last?.3.bitPattern == values.last?.bitPattern)
        #expect(notices.all.isEmpty, "\(notices.all)")
    }

    @Test("seeking by sequence, time and trial reads only the frames needed")
    func seeks() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 8 << 10, frameBytes: 1024))
        let a = writer.slot(subject: "a_0", name: "loss"), b = writer.slot(subject: "b_0", name: "loss")
        var middleHLC = HLC.zero
        for step in 0..<6000 {
            try writer.append(step < 3000 ? a : b, step: Int64(step), value: Double(step))
            if step == 3000 { middleHLC = writer.lastHLC }
        }
        try writer.close()
        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        let stream = reader.streams()[0]
        let all = try reader.frames(stream: stream)
        let some = try reader.frames(stream: stream, sequences: 4000..<4010)
        #expect(!some.isEmpty && some.count <= 2)
        #expect(some.contains { f in f.frame.events.contains { $0.sequence == 4005 } })
        let ofA = try reader.frames(subject: "a_0")
        #expect(ofA.allSatisfy { $0.frame.subjects.contains("a_0") })
        #expect(points(ofA).filter { $0.0 == "a_0" }.count == 3000)
        #expect(ofA.count < all.count)
        let late = try reader.frames(hlc: middleHLC...HLC(rawValue: .max))
        #expect(late.count < all.count)
        #expect(points(late).contains { $0.2 == 5999 })
        #expect(!points(late).contains { $0.2 == 0 })
    }

    @Test("a missing or damaged index is rebuilt from its segment, with a notice")
    func indexRebuild() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 8 << 10, frameBytes: 1024))
        let s = writer.slot(subject: "a_0", name: "loss")
        for step in 0..<20000 { try writer.append(s, step: Int64(step), value: sin(Double(step))) }
        try writer.close()
        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        let stream = reader.streams()[0]
        let sealed = reader.segments(stream).filter { !$0.isActive }
        try #require(sealed.count >= 2)
        let expected = points(try reader.allFrames()).count
        let missing = sealed[0].path.replacingOccurrences(of: ".log", with: ".idx")
        let damaged = sealed[1].path.replacingOccurrences(of: ".log", with: ".idx")
        try FileManager.default.removeItem(atPath: missing)
        var bytes = readFile(damaged)
        bytes[bytes.count / 2] ^= 0xFF
        writeFile(damaged, bytes)
        #expect(points(try reader.allFrames()).count == expected)
        let rebuilt = notices.of(.indexRebuilt)
        #expect(rebuilt.count == 2, "\(notices.all)")
        #expect(rebuilt.contains { $0.path == missing && $0.message.contains("missing") })
        #expect(rebuilt.contains { $0.path == damaged && $0.message.contains("CRC") })
        #expect(FileManager.default.fileExists(atPath: missing), "the rebuilt index is written back")
        // And the writer's recovery does the same when it reopens.
        try FileManager.default.removeItem(atPath: missing)
        let again = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        try again.close()
        #expect(notices.of(.indexRebuilt).count == 3)
    }

    @Test("a stream whose writer is gone is taken over and continued; a live one is not shared")
    func takeover() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let first = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        let s = first.slot(subject: "a_0", name: "loss")
        for step in 0..<100 { try first.append(s, step: Int64(step), value: 1) }
        let second = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        #expect(second.streamName != first.streamName, "a live writer's stream is not taken")
        try second.close()
        try first.close()
        let third = try LogWriter.open(database: dir.db, options: writerOptions(notices, durability: .sync))
        #expect([first.streamName, second.streamName].contains(third.streamName))
        #expect(notices.of(.streamTakenOver).count == 1)
        var named = WriterOptions()
        named.streamName = third.streamName
        named.reporter = notices.reporter
        #expect { try LogWriter.open(database: dir.db, options: named) } throws: { ($0 as? LogError)?.code == .streamLocked }
        let before = third.nextSequence
        let t = third.slot(subject: "a_0", name: "loss")
        try third.append(t, step: 100, value: 2)
        #expect(third.durableSequenceNumber == before + 1, "sync durability: durable on return")
        try third.close()
        #expect(throws: LogError.self) { try third.append(t, step: 101, value: 3) }
        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        #expect(points(try reader.allFrames()).count == 101)
    }

    @Test("the tailer returns only new frames while a writer appends, across segment rolls")
    func tailer() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 8 << 10, frameBytes: 1024))
        let tailer = try LogTailer(database: dir.db, reporter: notices.reporter)
        #expect(try tailer.poll().isEmpty)
        let s = writer.slot(subject: "a_0", name: "loss")
        var seen = 0
        for round in 0..<5 {
            for step in 0..<1000 { try writer.append(s, step: Int64(round * 1000 + step), value: Double(step)) }
            try writer.flush()
            let new = points(try tailer.poll())
            #expect(new.count == 1000, "round \(round)")
            #expect(new.first?.2 == Int64(round * 1000))
            seen += new.count
            #expect(try tailer.poll().isEmpty)
        }
        #expect(seen == 5000)
        #expect(try LogReader(database: dir.db).segments(writer.streamName).count > 1)
        // A second writer's stream shows up too, and events merge by timestamp.
        let other = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        try other.append(.trialStarted(trial: "b_0"))
        try other.flush()
        try writer.append(.trialStarted(trial: "a_0"))
        try writer.flush()
        let frames = try tailer.poll()
        let merged = LogReader.mergedByHLC(frames)
        #expect(merged.count == 2)
        let hlcs = merged.map { frames[$0.frame].frame.events[$0.event].hlc }
        #expect(hlcs == hlcs.sorted())
        try other.close()
        try writer.close()
    }

    @Test("a tailer polled a few frames at a time returns every frame once, in order, across segments and streams")
    func boundedTailer() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, segmentBytes: 8 << 10, frameBytes: 1024))
        let other = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        let s = writer.slot(subject: "a_0", name: "loss")
        for step in 0..<3000 { try writer.append(s, step: Int64(step), value: Double(step)) }
        try other.append(.trialStarted(trial: "b_0"))
        try writer.flush()
        try other.flush()
        let whole = try LogTailer(database: dir.db, reporter: notices.reporter).poll()
        #expect(whole.count > 6)
        let tailer = try LogTailer(database: dir.db, reporter: notices.reporter)
        var pieces: [LocatedFrame] = []
        while true {
            let some = try tailer.poll(maxFrames: 3)
            #expect(some.count <= 3)
            if some.isEmpty { break }
            pieces += some
        }
        #expect(pieces.map { "\($0.stream)@\($0.segmentBase)+\($0.offset)" } == whole.map { "\($0.stream)@\($0.segmentBase)+\($0.offset)" })
        #expect(points(pieces).map(\.2) == (0..<3000).map(Int64.init))
        try other.close()
        try writer.close()
    }

    @Test("a bounded tailer over frames larger than its first window, and over damage mid-segment, sees what an unbounded one sees")
    func boundedTailerWindows() throws {
        let dir = TemporaryDirectory()
        let notices = NoticeCollector()
        // Random values barely compress: frames of ~400 KiB raw stay far above the tailer's
        // first 64 KiB window, so it has to grow it.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices, frameBytes: 400 << 10))
        let s = writer.slot(subject: "a_0", name: "loss")
        var random = SeededRandom(seed: 11)
        for step in 0..<200_000 { try writer.append(s, step: Int64(step), value: Double(bitPattern: random.next() >> 2)) }
        try writer.close()
        func drain(_ maxFrames: Int?, _ reporter: @escaping LogReporter) throws -> [LocatedFrame] {
            let tailer = try LogTailer(database: dir.db, reporter: reporter)
            guard let maxFrames else { return try tailer.poll() }
            var all: [LocatedFrame] = []
            while case let some = try tailer.poll(maxFrames: maxFrames), !some.isEmpty {
                #expect(some.count <= maxFrames)
                all += some
            }
            return all
        }
        let whole = try drain(nil, notices.reporter)
        #expect(whole.count > 3)
        #expect(whole[1].offset - whole[0].offset > 64 << 10)
        for budget in [1, 2, 5] {
            #expect(try drain(budget, notices.reporter).map(\.offset) == whole.map(\.offset))
        }
        // Damage inside the second frame: both skip it, report it, and go on with the third.
        let stream = try #require(DatabaseLayout(root: dir.db).streamNames().first)
        let segment = DatabaseLayout(root: dir.db).segmentPath(stream, base: try #require(DatabaseLayout(root: dir.db).segmentBases(stream).first))
        let handle = try #require(FileHandle(forUpdatingAtPath: segment))
        try handle.seek(toOffset: UInt64(whole[1].offset + 100))
        handle.write(Data(repeating: 0xA5, count: 64))
        try handle.close()
        let unboundedNotices = NoticeCollector()
        let unbounded = try drain(nil, unboundedNotices.reporter)
        #expect(unbounded.map(\.offset) == whole.map(\.offset).filter { $0 != whole[1].offset })
        #expect(unboundedNotices.of(.damage).count == 1)
        for budget in [1, 3] {
            let boundedNotices = NoticeCollector()
            let got = try drain(budget, boundedNotices.reporter)
            #expect(got.map(\.offset) == unbounded.map(\.offset), "budget \(budget): \(got.map(\.offset)) vs \(unbounded.map(\.offset)), whole \(whole.map(\.offset))")
            #expect(boundedNotices.of(.damage).map(\.offset) == unboundedNotices.of(.damage).map(\.offset))
        }
    }

    @Test("not a database: a clear error")
    func notADatabase() throws {
        let dir = TemporaryDirectory()
        #expect { try LogReader(database: dir.path + "/nothing") } throws: { ($0 as? LogError)?.code == .notADatabase }
        #expect { try LogReader(database: dir.path) } throws: { ($0 as? LogError)?.message.contains("FORMAT") == true }
    }
}
