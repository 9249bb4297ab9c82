import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackModel
@testable import TrackServer

/// The built `track-server` (swift test builds every product).
func trackServerPath() -> String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.path != "/" {
        let candidate = url.deletingLastPathComponent().appendingPathComponent("track-server")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        url = url.deletingLastPathComponent()
    }
    return ".build/debug/track-server"
}

/// Starts `track-server` with `arguments`, standard input `input`, standard error to `errPath`.
func startServer(_ arguments: [String], input: String = "", errPath: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trackServerPath())
    process.arguments = arguments
    let stdin = Pipe()
    FileManager.default.createFile(atPath: errPath, contents: nil)
    process.standardInput = stdin
    process.standardOutput = FileHandle.nullDevice
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    return process
}

/// The port a `track-server` started with `--listen 127.0.0.1:0` says it listens on (nil after 20 s).
func listeningPort(errPath: String) -> Int? {
    for _ in 0..<400 {
        let log = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        if let range = log.range(of: "listening on 127.0.0.1:") { return Int(log[range.upperBound...].prefix { $0.isNumber }) }
        usleep(50_000)
    }
    return nil
}

@Suite("the track-server command", .serialized)
struct CommandTests {
    @Test("add-user reads the password from stdin; serve logs into the backend and flushes on SIGTERM")
    func serveAndStop() throws {
        let dir = NSTemporaryDirectory() + "swift-track-server-cli-\(UUID().uuidString.prefix(10))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let users = dir + "/users", err = dir + "/stderr"
        let add = try startServer(["add-user", "alice", "--users", users, "--iterations", "1000"], input: "s3cret\n", errPath: err)
        #expect(add.waitForExit().status == 0)
        #expect(try UserStore(contentsOf: users).check(user: "alice", password: "s3cret"))
        let again = try startServer(["add-user", "alice", "--users", users, "--iterations", "1000"], input: "x\n", errPath: err)
        #expect(again.waitForExit().status != 0)
        #expect(String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self).contains("already"))

        let noUsers = try startServer(["--listen", "127.0.0.1:1"], errPath: err)
        #expect(noUsers.waitForExit().status != 0)
        #expect(String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self).contains("--allow-anonymous"))

        // Port 0: the server takes any free port and says which in its log.
        let server = try startServer(["--listen", "127.0.0.1:0", "--backend", "file://\(dir)/db", "--users", users], errPath: err)
        let bound = try #require(listeningPort(errPath: err), "the server never said where it listens")
        let c = try WireClient(port: bound)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "alice", "password": "s3cret"}"#)?["status"] == 0)
        #expect(c.call(#"{"__rpc__": "new_project", "project": "cli"}"#)?["status"] == 0)
        let uid = try #require(c.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "cli", "parameters": {}}}"#)?["return"]?["uid"]?.stringValue)
        for step in 0..<100 {
            c.send(text: #"{"__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": \#(step), "loss": 0.25}"#)
        }
        for _ in 0..<100 { #expect(c.receive()?["status"] == 0) }
        kill(server.processIdentifier, SIGTERM)
        #expect(server.waitForExit().status == 0)
        let log = String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self)
        #expect(log.contains("listening on 127.0.0.1:\(bound)") && log.contains("stopped"))
        // Everything acknowledged is in the database, and alice owns her project.
        let backend = try makeBackend(uri: "file://\(dir)/db")
        #expect(try backend.getTrial(uid: uid)?.metrics["loss"]?.count == 100)
        try backend.close()
        #expect(String(decoding: FileManager.default.contents(atPath: users + ".owners") ?? Data(), as: UTF8.self).contains("\"owner\":\"alice\""))
    }

    @Test("repeated wrong passwords are slowed down: 100 ms per earlier failure, up to 2 s, reset by a success")
    func slowedFailures() {
        let store = UserStore([UserRecord(name: "u", password: "right", iterations: 1000)])
        #expect(!store.check(user: "u", password: "a"))
        #expect(store.failureDelayMilliseconds(user: "u") == 0)
        #expect(!store.check(user: "u", password: "b"))
        #expect(store.failureDelayMilliseconds(user: "u") == 100)
        #expect(!store.check(user: "u", password: "c"))
        #expect(store.failureDelayMilliseconds(user: "u") == 200)
        for _ in 0..<30 { _ = store.check(user: "u", password: "x") }
        #expect(store.failureDelayMilliseconds(user: "u") == 2_000)
        #expect(store.check(user: "u", password: "right"))
        #expect(store.failureDelayMilliseconds(user: "u") == 0)
    }
}

@Suite("what the built tools link")
struct LinkedSymbolsTests {
    @Test("NoTestSupportInTheTools: track-server and track-replay carry no symbol of the test-support modules (PostgreSQL launcher, conformance suite, fuzz targets)")
    func noTestSupport() throws {
        let server = trackServerPath()
        let replay = URL(fileURLWithPath: server).deletingLastPathComponent().appendingPathComponent("track-replay").path
        for tool in [server, replay] {
            // Both are built by swift test; a missing one must fail the test, not skip it.
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) was not built")
            guard FileManager.default.isExecutableFile(atPath: tool) else { continue }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nm")
            process.arguments = [tool]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            let symbols = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(process.waitForExit().status == 0, "nm \(tool)")
            #expect(symbols.count > 10_000, "nm listed almost nothing for \(tool)")
            for module in ["LocalPostgresServer", "16TrackTestSupport", "16TrackConformance", "16TrackFuzzTargets"] {
                #expect(!symbols.contains(module), "\(tool) links \(module)")
            }
        }
    }
}
