import Foundation
import Testing
import TrackTestSupport
import TrackLog
@testable import TrackStore

/// Runs `track-replay synth` as a separate process.
func startSynth(_ arguments: [String]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trackReplayPath())
    process.arguments = ["synth"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.standardError
    try process.run()
    return (process, pipe)
}

@Suite("Writers in separate processes", .serialized)
struct ProcessTests {
    @Test("the synth tool is built")
    func toolExists() {
        #expect(FileManager.default.isExecutableFile(atPath: trackReplayPath()), "looked at \(trackReplayPath())")
    }

    @Test("WriterKilledWithSIGKILL loses nothing committed; the database reopens and appends")
    func sigkill() throws {
        let dir = TemporaryDirectory()
        let (process, pipe) = try startSynth([dir.db, "--points", "10000000", "--commit-every", "500", "--trials", "2"])
        // Wait for a few commits, then kill it mid-run.
        var output = Data()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            output.append(pipe.fileHandleForReading.availableData)
            if String(decoding: output, as: UTF8.self).components(separatedBy: "committed").count > 6 { break }
        }
        kill(process.processIdentifier, SIGKILL)
        #expect(process.waitForExit().signaled)
        output.append(pipe.fileHandleForReading.readDataToEndOfFile())
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("committed") }
        let lastCommitted = try #require(lines.last.flatMap { UInt64($0.split(separator: " ")[2]) })
        #expect(lastCommitted > 0)

        let notices = NoticeCollector()
        let reader = try LogReader(database: dir.db, reporter: notices.reporter)
        let frames = try reader.allFrames()
        let seqs = sequences(frames)
        #expect(UInt64(seqs.count) >= lastCommitted, "every committed event survives")
        #expect(isContiguous(seqs), "no gap")
        // The database reopens (taking the dead writer's stream over) and appends.
        let writer = try LogWriter.open(database: dir.db, options: writerOptions(notices))
        #expect(notices.of(.streamTakenOver).count == 1)
        #expect(notices.of(.damage).isEmpty)
        try writer.append(writer.slot(subject: "after_0", name: "loss"), step: 0, value: 1)
        try writer.close()
        let after = try LogReader(database: dir.db, reporter: notices.reporter).allFrames()
        #expect(points(after).last?.0 == "after_0")
    }

    @Test("TwoProcessesAppendAtOnce and both keep every event")
    func twoProcesses() throws {
        let dir = TemporaryDirectory()
        let a = try startSynth([dir.db, "--points", "200000", "--commit-every", "10000", "--prefix", "a"])
        let b = try startSynth([dir.db, "--points", "200000", "--commit-every", "10000", "--prefix", "b"])
        _ = a.1.fileHandleForReading.readDataToEndOfFile()
        _ = b.1.fileHandleForReading.readDataToEndOfFile()
        #expect(a.0.waitForExit().status == 0)
        #expect(b.0.waitForExit().status == 0)
        let reader = try LogReader(database: dir.db)
        #expect(reader.streams().count == 2)
        let pts = points(try reader.allFrames())
        for prefix in ["a", "b"] {
            let mine = pts.filter { $0.0 == "\(prefix)-0_0" }
            #expect(mine.count == 200_000)
            let inOrder = mine.enumerated().allSatisfy { $0.element.2 == Int64($0.offset) }
            #expect(inOrder, "\(prefix): steps in order without gaps")
        }
    }
}
