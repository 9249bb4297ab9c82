import ArgumentParser
import Foundation
import Track
import TrackLog

/// `track-replay`: rebuild, inspect and demonstrate a swift-track database.
@main
struct TrackReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track-replay",
        abstract: "Rebuild, inspect and demonstrate swift-track databases.",
        subcommands: [Demo.self, Synth.self]
    )
}

/// A simulated training loop logged through the `Track` client API, then read back.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log a simulated training run through the client API and print it back.",
        discussion: """
        Creates a project, a learning-rate sweep group and one trial per learning rate, logs a
        loss and an accuracy per step and an epoch chrono, then reads every trial back and prints
        it. The default backend is in memory (ephemeral://); give --backend to log elsewhere.
        """
    )

    @Option(help: "The backend URI to log into.")
    var backend = "ephemeral://"

    @Option(help: "How many trials (learning rates) to run.")
    var trials = 3

    @Option(help: "Epochs per trial.")
    var epochs = 3

    @Option(help: "Steps per epoch.")
    var steps = 100

    @Flag(help: "Print each trial in track's JSON serialization.")
    var json = false

    func validate() throws {
        guard trials > 0, epochs > 0, steps > 0 else {
            throw ValidationError("--trials, --epochs and --steps must be positive")
        }
    }

    func run() throws {
        let client = try TrackClient(backend: backend)
        try client.setProject(name: "demo", description: "a simulated training loop")
        try client.setGroup(name: "lr-sweep", metadata: ["search": "grid"])
        let started = Date()
        var uids: [String] = []
        var points = 0
        for index in 0..<trials {
            let lr = 0.1 / pow(10, Double(index))
            let logger = try client.newTrial(name: "mlp", parameters: ["lr": .double(lr), "epochs": .int(Int64(epochs))])
            uids.append(logger.uid)
            try logger.logMetadata(["host": .string(ProcessInfo.processInfo.hostName)])
            let loss = logger.metric("loss")
            let accuracy = logger.metric("accuracy")
            try logger.run { logger in
                for epoch in 0..<epochs {
                    try logger.chrono("epoch") {
                        for step in 0..<steps {
                            let global = epoch * steps + step
                            let progress = Double(global + 1) * lr
                            try loss.log(2.3 * exp(-progress) + 0.05, step: Int64(global))
                            try accuracy.log(1 - 0.9 * exp(-progress), step: Int64(global))
                            points += 2
                        }
                    }
                }
            }
        }
        let seconds = Date().timeIntervalSince(started)
        print("logged \(points) metric points into \(trials) trials in \(String(format: "%.3f", seconds)) s (\(backend))")
        print("")
        print("uid                                                                 status     points  last loss")
        for uid in uids {
            guard let trial = try client.backend.getTrial(uid: uid) else {
                throw TrackError(.itemNotFound, "trial \(uid) was logged but cannot be read back")
            }
            let count = trial.metrics.values.reduce(0) { $0 + $1.count }
            let lastLoss = trial.metrics["loss"]?.last?.value.doubleValue ?? .nan
            print("\(trial.uid.padding(toLength: 68, withPad: " ", startingAt: 0)) \(trial.status.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(count).padding(toLength: 7, withPad: " ", startingAt: 0)) \(String(format: "%.4f", lastLoss))")
            if json { print(JSON.encode(trial.trackJSON, pretty: true)) }
        }
    }
}
