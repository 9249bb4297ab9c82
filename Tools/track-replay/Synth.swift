import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackModel

/// Appends synthetic metric points straight to the event log: for crash tests, multi-process
/// tests and load measurements.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Append synthetic metric points to an event-log database (for tests and load).",
        discussion: """
        Creates project 'synth' and the trials <prefix>-<n> (uid <prefix>-<n>_0) when they do not exist, \
        then logs a noisy decaying loss for each trial, one point per step, directly through the \
        event-log writer. After each commit it prints 'committed <step> <sequence>' on standard output \
        (every trial has its points up to <step>; <sequence> is the writer's durable sequence), so a \
        test can kill it at any moment and check that everything committed survived; at the end, \
        'done <points> <sequence>'.
        """
    )

    @Argument(help: "The database directory (created if missing).")
    var database: String

    @Option(help: "Trials to log into.")
    var trials = 1

    @Option(help: "Points per trial.")
    var points = 10_000

    @Option(help: "Commit every this many points per trial (0: only at the end).")
    var commitEvery = 1_000

    @Option(help: "Durability: buffered, groupCommit or sync.")
    var durability = "buffered"

    @Option(help: "Segment size in bytes.")
    var segmentBytes: Int64 = Limits.segmentBytesDefault

    @Option(help: "A prefix for the trial uids, so that several processes log distinct trials.")
    var prefix = "synth"

    @Option(help: "Microseconds to sleep after each step (to give a test time to kill the process).")
    var pauseMicroseconds = 0

    @Option(help: "Log this many metrics per call (loss, then m1, m2, ...) through appendPoints instead of one through a metric handle.")
    var metricsPerCall = 1

    @Flag(help: "After writing, replay the whole database and print the events per second.")
    var readBack = false

    func validate() throws {
        guard trials > 0, points >= 0, commitEvery >= 0 else { throw ValidationError("--trials must be positive, --points and --commit-every not negative") }
        guard Durability(rawValue: durability) != nil else {
            throw ValidationError("--durability must be one of \(Durability.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let uids = (0..<trials).map { "\(prefix)-\($0)_0" }
        // The project and trials first, through the backend's rules, so that every command (and
        // the web view) shows the points' trials; an existing one is left as it is.
        do {
            let backend = try TrackClient(backend: "file://\(database)").backend
            _ = try backend.newProject(Project(name: "synth", description: "synthetic load (track-replay synth)"))
            for index in 0..<trials {
                _ = try backend.newTrial(Trial(hash: "\(prefix)-\(index)", name: "\(prefix)-\(index)", parameters: ["index": .int(Int64(index))],
                                               projectID: "synth"), autoIncrement: false)
            }
            try backend.close()
        } catch { throw ToolError("cannot create the synthetic trials in \(database): \(error)") }
        var options = WriterOptions()
        // Continuing the stream the trials were just created in is what should happen: no notice.
        options.reporter = { notice in if notice.kind != .streamTakenOver { standardErrorReporter(notice) } }
        options.durability = Durability(rawValue: durability)!
        options.segmentBytes = segmentBytes
        let writer = try LogWriter.open(database: database, records: .track, options: options)
        let slots = uids.map { writer.slot(subject: $0, name: "loss") }
        var generator = SeededRandom(seed: UInt64(getpid()))
        let (points, commitEvery, pauseMicroseconds) = (self.points, self.commitEvery, self.pauseMicroseconds)
        let names = ["loss"] + (1..<max(1, metricsPerCall)).map { "m\($0)" }
        for step in 0..<points {
            for (t, slot) in slots.enumerated() {
                let noise = Double(generator.next() % 1000) / 100_000
                let value = 2.3 * exp(-Double(step) / 2000) + noise + Double(t)
                if names.count == 1 {
                    try writer.append(slot, step: Int64(step), value: value)
                } else {
                    var metrics = ValueObject(minimumCapacity: names.count)
                    for name in names { metrics[name] = .double(value) }
                    try writer.appendMetrics(trial: uids[t], step: .int(Int64(step)), metrics)
                }
            }
            if commitEvery > 0 && (step + 1) % commitEvery == 0 {
                try writer.commit()
                // Unbuffered, so that a test killing the process has seen every line printed.
                FileHandle.standardOutput.write(Data("committed \(step) \(writer.durableSequenceNumber)\n".utf8))
            }
            if pauseMicroseconds > 0 { usleep(UInt32(pauseMicroseconds)) }
        }
        try writer.close()
        FileHandle.standardOutput.write(Data("done \(points * trials) \(writer.durableSequenceNumber)\n".utf8))
        if readBack {
            let started = Date()
            let reader = try LogReader(database: database, records: .track)
            var events = 0
            try reader.forEachFrame { events += $0.frame.events.count }
            let seconds = Date().timeIntervalSince(started)
            print("replayed \(events) events in \(String(format: "%.3f", seconds)) s: \(Int(Double(events) / seconds)) events/s")
        }
    }
}

