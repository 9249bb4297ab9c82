import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackLog
import TrackModel

/// Path of a built tool next to the test bundle.
func builtTool(_ name: String) -> String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.path != "/" {
        let candidate = url.deletingLastPathComponent().appendingPathComponent(name)
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        url = url.deletingLastPathComponent()
    }
    return ".build/debug/\(name)"
}

/// Starts the test worker with `arguments`.
func startWorker(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: builtTool("track-test-worker"))
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.standardError
    try process.run()
    return (process, pipe)
}

@Suite("Several processes on one file:// database", .serialized)
struct ParallelTests {
    @Test("20 processes incrementing one counter with fetchAndUpdateTrial end at exactly 20, revision tag exact")
    func twentyIncrements() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db)
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "counter", projectID: "p"), autoIncrement: false))
        let before = try #require(try backend.getTrial(uid: trial.uid)).updateCount
        let workers = try (0..<20).map { _ in try startWorker(["increment", db, "counter", "count", "1"]) }
        for w in workers {
            _ = w.output.fileHandleForReading.readDataToEndOfFile()
            #expect(w.process.waitForExit().status == 0)
        }
        let after = try #require(try backend.getTrial(uid: trial.uid))
        #expect(after.metadata["count"] == 20)
        #expect(after.updateCount == before + 20)
        try backend.close()
    }

    @Test("8 processes logging 200,000 points each keep all 1.6 million, each series in step order")
    func eightLoggers() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let workers = try (0..<8).map { try startWorker(["log", db, "worker-\($0)", "200000"]) }
        for w in workers {
            _ = w.output.fileHandleForReading.readDataToEndOfFile()
            #expect(w.process.waitForExit().status == 0)
        }
        let backend = try EventLogBackend(path: db)
        let trials = try backend.fetchTrials(.all)
        #expect(trials.count == 8)
        var total = 0
        for trial in trials {
            let loss = try #require(trial.metrics["loss"])
            total += loss.count
            let ordered = loss.points.enumerated().allSatisfy { $0.element.step == .int(Int64($0.offset)) }
            #expect(ordered, "\(trial.name ?? "?") in step order without gaps")
        }
        #expect(total == 1_600_000)
        try backend.close()
    }

    @Test("a lock held by a process killed with SIGKILL blocks nobody")
    func deadLockHolder() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let backend = try EventLogBackend(path: db)
        _ = try backend.newProject(Project(name: "p"))
        let holder = try startWorker(["hold-lock", db])
        // Wait until it holds the lock.
        var output = Data()
        while !String(decoding: output, as: UTF8.self).contains("locked") {
            let chunk = holder.output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
        }
        #expect(String(decoding: output, as: UTF8.self).contains("locked"))
        // While it lives, an atomic operation waits; once it is killed, the operation goes through.
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        Thread.detachNewThread {
            box.set(Result { try backend.newTrial(Trial(name: "after", projectID: "p"), autoIncrement: false) })
            done.signal()
        }
        #expect(done.wait(timeout: .now() + 0.5) == .timedOut, "the live holder blocks the atomic operation")
        kill(holder.process.processIdentifier, SIGKILL)
        _ = holder.process.waitForExit()
        #expect(done.wait(timeout: .now() + 10) == .success, "the dead holder's lock was released by the kernel")
        #expect((try? box.get()?.map { $0 != nil }) == true)
        try backend.close()
    }
}

/// A result handed from a thread to the test.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<Trial?, any Error>?
    func set(_ r: Result<Trial?, any Error>) { lock.lock(); value = r; lock.unlock() }
    func get() throws -> Trial?? { lock.lock(); defer { lock.unlock() }; return try value.map { try $0.get() } }
}
