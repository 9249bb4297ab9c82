import Foundation
import Testing
import TrackTestSupport
import TrackLog
@testable import TrackStore
import TrackModel

/// How many times more kills, cut points and flips `make crash` asks for (CRASH_SCALE).
let crashScale = max(1, Int(ProcessInfo.processInfo.environment["CRASH_SCALE"] ?? "1") ?? 1)

/// Runs the built `track-replay` with `arguments`, its output discarded.
func startTool(_ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trackReplayPath())
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Issue 12: writers and compactions killed with SIGKILL at random moments lose nothing that was
/// committed, store nothing twice, and leave a database `verify` finds clean.
@Suite("writers and compactions killed at random moments", .serialized)
struct RandomKillTests {
    @Test("WriterAndCompactorKilledAtRandomLoseNothingCommitted: at least 50 writer and 50 compaction kills (more with make crash)")
    func randomKills() throws {
        let dir = TemporaryDirectory()
        var random = SeededRandom(seed: 2026)
        var committed: [String: Int] = [:]
        var writerKills = 0, compactionKills = 0, round = 0
        let wanted = 50 * crashScale
        while (writerKills < wanted || compactionKills < wanted) && round < wanted * 6 {
            defer { round += 1 }
            if writerKills < wanted {
                let durability = ["buffered", "groupCommit", "sync"][round % 3]
                let every = 20 + Int(random.next() % 200)
                let (process, pipe) = try startSynth([dir.db, "--points", "100000000", "--commit-every", "\(every)", "--durability", durability,
                                                      "--segment-bytes", "16384", "--prefix", "r\(round)"])
                // Killed at a random moment after its first commit (a condition, not a guess at
                // how long a loaded machine takes to start it).
                var output = ""
                while !output.contains("committed ") {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    output += String(decoding: chunk, as: UTF8.self)
                }
                usleep(UInt32(random.next() % 120_000))
                kill(process.processIdentifier, SIGKILL)
                output += String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                if process.waitForExit().signaled { writerKills += 1 }
                if let last = output.split(separator: "\n").last(where: { $0.hasPrefix("committed ") }), let field = last.split(separator: " ").dropFirst().first, let step = Int(field) {
                    committed["r\(round)-0_0"] = step
                }
            }
            if compactionKills < wanted {
                let compaction = try startTool(["compact", dir.db, "--force"])
                usleep(UInt32(random.next() % 60_000))
                kill(compaction.processIdentifier, SIGKILL)
                if compaction.waitForExit().signaled { compactionKills += 1 }
            }
        }
        #expect(writerKills >= wanted && compactionKills >= wanted, "\(writerKills) writer and \(compactionKills) compaction kills in \(round) rounds")
        #expect(committed.count >= writerKills * 9 / 10, "\(committed.count) of \(writerKills) killed writers committed something")

        // Every committed point is there once, read through the snapshots and the log after them.
        let notices = NoticeCollector()
        let materializer = try Materializer(database: dir.db, reporter: notices.reporter)
        try materializer.reload()
        #expect(materializer.damage.isEmpty, "\(materializer.damage)")
        for (uid, last) in committed.sorted(by: { $0.key < $1.key }) {
            let steps = materializer.projection.columns(trial: uid, metric: "loss")?.steps ?? []
            let distinct = Set(steps)
            #expect(distinct.count == steps.count, "\(uid): a point stored twice")
            let missing = (0...last).filter { !distinct.contains(Int64($0)) }
            #expect(missing.isEmpty, "\(uid): \(missing.count) committed steps lost (first \(missing.first ?? -1))")
        }
        // verify finds nothing wrong, and a final compaction goes through.
        let verify = try startTool(["verify", dir.db])
        #expect(verify.waitForExit().status == 0)
        let compact = try startTool(["compact", dir.db])
        #expect(compact.waitForExit().status == 0)
    }
}
