// The worker process of the multi-process tests (not a user tool):
//   track-test-worker increment DB TRIAL_NAME KEY TIMES
//   track-test-worker log DB PREFIX POINTS
//   track-test-worker hold-lock DB
//   track-test-worker compact DB [--crash-at whileWritingSnapshot|afterSnapshotBeforeManifest|afterManifestBeforeDeletion]
// It prints one line when done (or "locked" once the lock is held) and exits 0, or prints the
// error on standard error and exits 1.
import Foundation
import TrackBackends
import TrackLog
import TrackStore
import TrackModel

func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func run(_ arguments: [String]) throws {
    guard arguments.count >= 2 else { throw TrackError(.invalidArgument, "usage: track-test-worker increment|log|hold-lock DB ...") }
    let command = arguments[0], db = arguments[1]
    switch command {
    case "increment":
        guard arguments.count == 5, let times = Int(arguments[4]) else { throw TrackError(.invalidArgument, "increment DB TRIAL_NAME KEY TIMES") }
        let backend = try EventLogBackend(path: db)
        for _ in 0..<times {
            _ = try backend.fetchAndUpdateTrial(Query([.init("name", .equal, .string(arguments[2]))]), .incrementMetadata(key: arguments[3], by: 1))
        }
        try backend.close()
        say("incremented \(times)")
    case "log":
        guard arguments.count == 4, let points = Int(arguments[3]) else { throw TrackError(.invalidArgument, "log DB PREFIX POINTS") }
        let backend = try EventLogBackend(path: db)
        _ = try backend.newProject(Project(name: "parallel"))
        let trial = try Trial(name: arguments[2], projectID: "parallel")
        let created = try backend.newTrial(trial, autoIncrement: false) ?? trial
        for step in 0..<points {
            try backend.logTrialMetric(created.uid, name: "loss", step: Int64(step), value: 1 / Double(step + 1))
        }
        try backend.close()
        say("logged \(points)")
    case "compact":
        var crash: Compactor.CrashPoint? = nil
        if arguments.count == 4, arguments[2] == "--crash-at" {
            guard let point = Compactor.CrashPoint(rawValue: arguments[3]) else { throw TrackError(.invalidArgument, "unknown crash point \(arguments[3])") }
            crash = point
        }
        let report = try Compactor.compact(database: db, crashAt: crash)
        say("compacted \(report.generation) \(report.segmentsDeleted)")
    case "hold-lock":
        let file = try LogFile.open(DatabaseLayout(root: db).atomicLockPath, flags: O_RDWR | O_CREAT)
        try file.lockExclusive()
        say("locked")
        while true { sleep(60) }
    default:
        throw TrackError(.invalidArgument, "unknown command \(command)")
    }
}

do {
    try run(Array(CommandLine.arguments.dropFirst()))
} catch {
    FileHandle.standardError.write(Data("track-test-worker: \(error)\n".utf8))
    exit(1)
}
