import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackModel
@testable import TrackServer

/// Issue 12: a reply means the change is stored. The server is killed with SIGKILL right after
/// replies arrive, at random moments; every acknowledged change must be in the database.
@Suite("track-server killed right after it replies", .serialized)
struct ServerCrashTests {
    @Test("ServerKilledRightAfterRepliesLosesNothing: every acknowledged operation survives a SIGKILL", arguments: ["buffered", "groupCommit"])
    func killedAfterReplies(durability: String) throws {
        let dir = NSTemporaryDirectory() + "swift-track-server-crash-\(UUID().uuidString.prefix(10))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let uri = "file://\(dir)/db?durability=\(durability)"
        var random = SeededRandom(seed: durability == "buffered" ? 12 : 13)
        var acknowledged: [(uid: String, steps: [Int], metadata: Bool)] = []
        let rounds = 25 * crashScale
        for round in 0..<rounds {
            let err = dir + "/stderr-\(round)"
            let server = try startServer(["--listen", "127.0.0.1:0", "--backend", uri, "--allow-anonymous"], errPath: err)
            defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) }; _ = server.waitForExit() }
            let port = try #require(listeningPort(errPath: err))
            let c = try WireClient(port: port)
            #expect(c.call(#"{"__rpc__": "authenticate", "username": "crash", "password": "x"}"#)?["status"] == 0)
            if round == 0 { #expect(c.call(#"{"__rpc__": "new_project", "project": "crash"}"#)?["status"] == 0) }
            guard let uid = c.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t\#(round)", "project_id": "crash", "parameters": {}}}"#)?["return"]?["uid"]?.stringValue else {
                Issue.record("round \(round): no trial"); continue
            }
            // The trial was acknowledged: from here every reply counts.
            acknowledged.append((uid, [], false))
            let count = Int(random.next() % 400) + 1
            let killAfter = Int(random.next() % UInt64(count + 1))
            c.send(text: #"{"__rpc__": "log_trial_metadata", "trial": "\#(uid)", "round": \#(round)}"#)
            for step in 0..<count { c.send(text: #"{"__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": \#(step), "loss": 0.5}"#) }
            if c.receive()?["status"] == 0 { acknowledged[acknowledged.count - 1].metadata = true }
            for step in 0..<count {
                if step == killAfter { break }
                guard c.receive()?["status"] == 0 else { break }
                acknowledged[acknowledged.count - 1].steps.append(step)
            }
            kill(server.processIdentifier, SIGKILL)
        }
        let backend = try makeBackend(uri: uri)
        defer { try? backend.close() }
        var points = 0
        for (uid, steps, metadata) in acknowledged {
            let trial = try #require(try backend.getTrial(uid: uid), "an acknowledged trial \(uid) is gone")
            let stored = Set((trial.metrics["loss"]?.points ?? []).compactMap { $0.step?.intValue })
            let missing = steps.filter { !stored.contains(Int64($0)) }
            #expect(missing.isEmpty, "\(uid): \(missing.count) of \(steps.count) acknowledged points lost")
            #expect((trial.metrics["loss"]?.count ?? 0) == stored.count, "\(uid): a point stored twice")
            if metadata { #expect(trial.metadata["round"] != nil, "\(uid): acknowledged metadata lost") }
            points += steps.count
        }
        #expect(points > 0)
    }
}

/// How many times more kills `make crash` asks for (CRASH_SCALE).
let crashScale = max(1, Int(ProcessInfo.processInfo.environment["CRASH_SCALE"] ?? "1") ?? 1)
