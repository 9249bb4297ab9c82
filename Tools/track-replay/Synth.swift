import ArgumentParser
import Foundation
import TrackLog

/// Appends synthetic metric points straight to the event log: for crash tests, multi-process
/// tests and load measurements.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Append synthetic metric points to an event-log database (for tests and load).",
        discussion: """
        Logs a noisy decaying loss for each trial, one point per step, directly through the event-log
        writer. After each commit it prints 'committed <trial> <step> <sequence>' on standard output,
        so a test can kill it at any moment and check that everything committed survived.
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

    func validate() throws {
        guard trials > 0, points >= 0, commitEvery >= 0 else { throw ValidationError("--trials must be positive, --points and --commit-every not negative") }
        guard Durability(rawValue: durability) != nil else {
            throw ValidationError("--durability must be one of \(Durability.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        var options = WriterOptions()
        options.durability = Durability(rawValue: durability)!
        options.segmentBytes = segmentBytes
        let writer = try LogWriter.open(database: database, options: options)
        let slots = (0..<trials).map { writer.slot(trial: "\(prefix)-\($0)_0", name: "loss") }
        var generator = SplitMix64(seed: UInt64(getpid()))
        for step in 0..<points {
            for (t, slot) in slots.enumerated() {
                let noise = Double(generator.next() % 1000) / 100_000
                try writer.append(slot, step: Int64(step), value: 2.3 * exp(-Double(step) / 2000) + noise + Double(t))
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
    }
}

/// A small, fast, seeded random generator.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
