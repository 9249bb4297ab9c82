import Foundation
import Testing
import Track
import TrackBackends
import TrackLog
import TrackStore
import TrackModel
import TrackSQL

/// The README's Swift snippets, verbatim but for their `import` lines: this file must compile,
/// `ReadmeShowsThisCode` checks that the README shows exactly the code between the markers, and
/// the snippets that need no network or fixed path run.
enum ReadmeSnippets {
    static func computeLoss() -> Double { 0.25 }
    static func lossValue(_ step: Int) -> Double { 1 / Double(step + 1) }

    /// "Using it": a training loop through the client API.
    static func usingIt() throws -> Int {
        // README begin
        let client = try TrackClient(backend: "ephemeral://")
        try client.setProject(name: "mnist")
        try client.setGroup(name: "lr-sweep")
        let logger = try client.newTrial(name: "mlp", parameters: ["lr": 0.01, "batch_size": 64])
        try logger.run { logger in
            let loss = logger.metric("loss")
            for epoch in 0..<10 {
                try logger.chrono("epoch") {
                    for step in 0..<1000 { try loss.log(computeLoss(), step: Int64(epoch * 1000 + step)) }
                }
            }
        }
        print(try logger.trial().metrics["loss"]!.count)
        // README end
        return try logger.trial().metrics["loss"]!.count
    }

    /// The SQL backend from Swift (needs a server: compiled, not run).
    static func sqlClient() throws {
        // README begin
        registerSQLBackend()
        let client = try TrackClient(backend: "cockroach://alice:pw@db.internal:26257/runs?sslmode=require")
        // or postgres://user:pw@host:5432/db; add &buffer=/local/track-buffer to survive outages
        // README end
        _ = client
    }

    /// A FileProtocol database into SQL (needs a server: compiled, not run).
    static func sqlImport() throws {
        // README begin
        let file = try TrackFileDatabase(trackJSON: JSON.decode(Array(Data(contentsOf: URL(fileURLWithPath: "runs.json")))))
        let sql = try makeBackend(uri: "cockroach://alice:pw@db.internal:26257/runs?sslmode=verify-full") as! SQLBackend
        try sql.importDatabase(file) { done, total in print("\(done)/\(total)") }
        // README end
    }

    /// The event log on its own (writes under ./runs: compiled, not run).
    static func eventLog(uid: String) throws {
        // README begin
        var options = WriterOptions()
        options.durability = .buffered          // or .groupCommit (fsync per frame), .sync (fsync per call)
        let writer = try LogWriter.open(database: "runs/db", options: options)
        let loss = writer.slot(subject: uid, name: "loss")
        for step in 0..<1_000_000 { try writer.append(loss, step: Int64(step), value: lossValue(step)) }
        try writer.commit()                      // returns once everything is on disk
        try writer.close()

        let reader = try LogReader(database: "runs/db")
        try reader.forEachFrame { frame in /* decoded events of one frame */ }
        // README end
    }

    /// "Queries".
    static func query(_ backend: any TrackProtocol) throws -> [Trial] {
        // README begin
        let done = try backend.fetchTrials(Query(json: #"{"status.name": "Completed", "metadata.lr": {"$lte": 0.01}}"#))
        // README end
        return done
    }
}

@Suite("the README's Swift snippets")
struct ReadmeSnippetTests {
    /// Lines without their common indentation.
    static func dedented(_ lines: [Substring]) -> [String] {
        let indent = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
    }

    /// Lines without leading and trailing blank ones.
    static func trimmed(_ lines: [String]) -> [String] {
        var out = lines
        while out.first?.trimmingCharacters(in: .whitespaces).isEmpty == true { out.removeFirst() }
        while out.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { out.removeLast() }
        return out
    }

    @Test("ReadmeShowsThisCode: every swift block of the README is one of the snippets above, in order (imports aside)")
    func readmeShowsThisCode() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var blocks: [[String]] = []
        var current: [Substring]?
        for line in readme {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" { current = []; continue }
            if current != nil, trimmed == "```" { blocks.append(Self.trimmed(Self.dedented(current!).filter { !$0.hasPrefix("import ") })); current = nil; continue }
            current?.append(line)
        }
        let source = try String(contentsOf: here, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var snippets: [[String]] = []
        current = nil
        for line in source {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "// README begin" { current = []; continue }
            if trimmed == "// README end" { snippets.append(Self.trimmed(Self.dedented(current!))); current = nil; continue }
            current?.append(line)
        }
        #expect(blocks.count == 5 && blocks == snippets, "README blocks:\n\(blocks.map { $0.joined(separator: "\n") }.joined(separator: "\n---\n"))")
    }

    @Test("the snippets that need no server run: the training loop logs 10,000 points; the query selects")
    func snippetsRun() throws {
        #expect(try ReadmeSnippets.usingIt() == 10_000)
        let backend = MemoryBackend()
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
        try backend.logTrialMetadata(trial.uid, ["lr": 0.001])
        try backend.setTrialStatus(trial.uid, .completed, error: nil)
        #expect(try ReadmeSnippets.query(backend).map(\.uid) == [trial.uid])
    }
}
