import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackModel

/// `track-replay`: rebuild, inspect, verify, compact, export, import and plot swift-track
/// databases, and run the demo.
@main
struct TrackReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track-replay",
        abstract: "Rebuild, inspect, verify, compact, export, import and plot swift-track databases.",
        discussion: "Every command reads a database while training processes may still be writing to it.",
        version: SwiftTrack.version,
        subcommands: [Demo.self, Summary.self, Show.self, Metrics.self, Stats.self, Tail.self, Plot.self,
                      Export.self, Import.self, Verify.self, Compact.self, Synth.self]
    )
}

/// A simulated training loop logged through the `Track` client API, then replayed.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log a simulated training run into an event-log database, then replay it and print the summary.",
        discussion: """
        Creates a project and a learning-rate sweep group, runs one trial per learning rate, logs a loss \
        and an accuracy per step through metric handles and an epoch chrono, sets statuses (the largest \
        learning rate diverges and ends as Exception), then replays the database and prints the \
        throughput and the summary. Each run adds new revisions of the trials.
        """
    )

    @Argument(help: "The database directory (created if missing).")
    var database = "track-demo.db"

    @Option(help: "How many trials (learning rates) to run.")
    var trials = 4

    @Option(help: "Epochs per trial.")
    var epochs = 5

    @Option(help: "Steps per epoch.")
    var steps = 20_000

    func validate() throws {
        guard trials > 0, epochs > 0, steps > 0 else { throw ValidationError("--trials, --epochs and --steps must be positive") }
    }

    func run() throws {
        struct Diverged: Error, CustomStringConvertible { var description: String { "loss diverged (NaN)" } }
        let client: TrackClient
        do { client = try TrackClient(backend: "file://\(database)") } catch { throw ToolError("\(error)") }
        try client.setProject(name: "demo", description: "a simulated training loop", metadata: ["created_by": "track-replay demo"])
        try client.setGroup(name: "lr-sweep", metadata: ["search": "grid"])
        let started = Date()
        var points = 0
        for index in 0..<trials {
            let lr = 0.3 / pow(3, Double(index))
            let logger = try client.newTrial(name: "mlp", parameters: ["lr": .double(lr), "epochs": .int(Int64(epochs)), "batch_size": 64],
                                             newRevision: true)
            try logger.logMetadata(["host": .string(ProcessInfo.processInfo.hostName), "pid": .int(Int64(getpid()))])
            try logger.addTags(["sweep": "lr"])
            let loss = logger.metric("loss"), accuracy = logger.metric("accuracy")
            var noise: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(index)
            do {
                try logger.run { logger in
                    for epoch in 0..<epochs {
                        try logger.chrono("epoch") {
                            for step in 0..<steps {
                                let global = epoch * steps + step
                                noise = noise &* 6364136223846793005 &+ 1442695040888963407
                                let jitter = (Double(noise >> 40) / Double(1 << 24) - 0.5) * 0.02
                                let progress = Double(global + 1) * lr * 4 / Double(steps)
                                var value = Double(Float(2.3 * exp(-progress) * (1 + jitter) + 0.05))
                                if index == 0 && epoch == epochs - 1 && step == steps / 2 { value = .nan }
                                try loss.log(value, step: Int64(global))
                                try accuracy.log(Double(Float(1 - 0.9 * exp(-progress))), step: Int64(global))
                                points += 2
                                if value.isNaN { throw Diverged() }
                            }
                        }
                        try logger.logMetrics(step: .int(Int64(epoch)), ["epoch_done": .int(Int64(epoch))])
                    }
                }
            } catch is Diverged {
                // The trial is already finished with status Exception; the sweep goes on.
            }
        }
        try client.commit()
        let seconds = Date().timeIntervalSince(started)
        print("logged \(points) metric points into \(trials) trials in \(String(format: "%.2f", seconds)) s (\(String(format: "%.1f", Double(points) / seconds / 1e6)) M points/s) into \(database)")
        try client.backend.close()

        let replayStarted = Date()
        let materializer = try replay(database)
        let replaySeconds = Date().timeIntervalSince(replayStarted)
        let projection = materializer.projection
        print("replayed \(projection.eventCount) events (\(projection.pointCount) metric points) in \(String(format: "%.2f", replaySeconds)) s")
        print("")
        printSummary(projection)
        if let line = materializer.damageLine { print(line) }
        try materializer.finish()
    }
}
