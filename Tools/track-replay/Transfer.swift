import ArgumentParser
import Foundation
import Track
import TrackLog

/// `track-replay export DB --format track-json -o FILE`.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the whole state as the JSON database of track's FileProtocol.",
        discussion: "The file is a list of projects embedding their trials and groups, loadable by Python track (file://FILE). Trials and groups that no project lists cannot be represented and are reported on standard error.\n\n" + damageHelp)

    enum Format: String, ExpressibleByArgument, CaseIterable { case trackJSON = "track-json" }

    @Argument(help: "The database directory.")
    var database: String

    @Option(help: "The output format.")
    var format: Format = .trackJSON

    @Option(name: .shortAndLong, help: "The file to write (standard output when not given).")
    var output: String?

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let projection = replayed.projection
        let file = TrackFileDatabase(projects: projection.allProjects, groups: projection.allGroups, trials: projection.allTrials)
        var unplaced: [String] = []
        let text = JSON.encode(file.trackJSON(unplaced: &unplaced), pretty: true, pythonSeparators: true) + "\n"
        if !unplaced.isEmpty {
            warn("warning: \(unplaced.count) trials or groups belong to no project and are not in the export: \(unplaced.prefix(5).joined(separator: ", "))")
        }
        guard let output else {
            FileHandle.standardOutput.write(Data(text.utf8))
            try replayed.finish()
            return
        }
        // Written beside the target and renamed: a reader never sees half a file.
        let temporary = output + ".tmp-\(getpid())"
        TemporaryFileGuard.arm(temporary)
        defer { TemporaryFileGuard.disarm() }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            if FileManager.default.fileExists(atPath: output) { try FileManager.default.removeItem(atPath: output) }
            try FileManager.default.moveItem(atPath: temporary, toPath: output)
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ToolError("cannot write '\(output)': \(error.localizedDescription)")
        }
        warn("exported \(file.projects.count) projects, \(file.groups.count) groups, \(file.trials.count) trials to \(output)\(replayed.damage.isEmpty ? "" : " (not the whole database: it is damaged)")")
        try replayed.finish()
    }
}

/// `track-replay import FILE.json DB`.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a track FileProtocol JSON database into the event log.",
        discussion: "Keeps uids, revisions, statuses, metrics with and without steps, chronos, errors and revision tags. The database is created if it does not exist; nothing is written if the file cannot be read whole, or if any of its objects already exists in the database. An import is one unit: readers see none of it until all of it is written and fsynced, so an import that was killed or failed midway leaves nothing visible, and running it again imports it whole.")

    @Argument(help: "The JSON file written by track's FileProtocol.")
    var file: String

    @Argument(help: "The database directory.")
    var database: String

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ToolError("cannot read '\(file)': no such file or not readable")
        }
        let parsed: TrackFileDatabase
        do {
            parsed = try TrackFileDatabase(trackJSON: try JSON.decode(Array(data)))
        } catch {
            throw ToolError("'\(file)' is not a track database: \(error.message)")
        }
        let backend: EventLogBackend
        do { backend = try EventLogBackend(path: database) } catch { throw ToolError("\(error)") }
        let bar = ProgressBar("importing", total: Int64(parsed.projects.count + parsed.groups.count + parsed.trials.count), unit: "objects")
        do {
            try backend.importDatabase(parsed) { done, _ in bar.update(Int64(done)) }
            bar.finish()
            try backend.close()
        } catch {
            bar.finish()
            try? backend.close()
            throw ToolError("\(error)")
        }
        let points = parsed.trials.reduce(0) { $0 + $1.metrics.values.reduce(0) { $0 + $1.count } }
        print("imported \(parsed.projects.count) projects, \(parsed.groups.count) groups, \(parsed.trials.count) trials, \(points) metric points into \(database)")
    }
}
