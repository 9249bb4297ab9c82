import Foundation
import Testing
import TrackBackends
import TrackConformance
import TrackModel
@testable import TrackServer

@Suite("socket:// through a track-server", .serialized)
struct SocketConformanceTests {
    @Test("passes the conformance suite, in plain TCP and in TLS", arguments: Conformance.cases, [false, true])
    func conformance(_ check: ConformanceCase, tls: Bool) throws {
        registerSocketBackend()
        // A server over a backend of the strictness the check needs.
        let directory = NSTemporaryDirectory() + "swift-track-socket-\(UUID().uuidString.prefix(10))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backend = try makeBackend(uri: "file://\(directory)/db\(check.strict ? "" : "?strict=false")")
        let context = tls ? try SocketServer.tlsContext(certificatePath: fixture("server.pem"), keyPath: fixture("server.key")) : nil
        let server = SocketServer(dispatcher: RPCDispatcher(backend: backend, credentials: UserStore([UserRecord(name: "u", password: "p", iterations: 1000)])), tls: context)
        let port = try server.start(host: "127.0.0.1", port: 0)
        defer { try? server.stop(); try? backend.close() }
        let options = tls ? "?tls=true&ca=\(fixture("test-ca.pem"))" : ""
        try check.run { _ in try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)\(options)") }
    }

    @Test("pipelined metric points all arrive, and an error among them reaches the caller")
    func pipelining() throws {
        registerSocketBackend()
        let server = try TestServer()
        defer { server.stop() }
        let client = try makeBackend(uri: "socket://user:pass@127.0.0.1:\(server.port)")
        _ = try client.newProject(Project(name: "p"))
        let trial = try #require(try client.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        for step in 0..<20_000 { try client.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(step)) }
        try client.commit()
        #expect(try client.getTrial(uid: trial.uid)?.metrics["loss"]?.count == 20_000)
        // In the order sent: the flush timer once wrote its part ahead of parts queued before it
        // (steps 0…10412, 8863…: Python sees the dict's order, and a repeated step kept the
        // older value).
        let stored = try #require(try server.backend.getTrial(uid: trial.uid)?.metrics["loss"])
        #expect(stored.points.map { $0.step?.intValue } == (0..<20_000).map { Int64($0) })
        // A missing trial is refused at once; an error among pipelined points reaches the next call.
        #expect { try client.logTrialMetric("0000_0", name: "loss", step: 1, value: 1) } throws: { ($0 as? TrackError)?.code == .itemNotFound }
        let socket = try #require(client as? SocketClient)
        try socket.send("log_trial_metrics", ["trial": "0000_0", "step": 1, "loss": 1.0])
        #expect { try socket.commit() } throws: { ($0 as? TrackError)?.code == .itemNotFound }
        try client.close()
    }

    @Test("PortInUse: listening on a port another server holds is one clear sentence, not NIO's errno text")
    func portInUse() throws {
        let first = try TestServer()
        defer { first.stop() }
        let second = SocketServer(dispatcher: RPCDispatcher(backend: first.backend, credentials: UserStore([])))
        #expect { _ = try second.start(host: "127.0.0.1", port: first.port) } throws: { error in
            let text = "\(error)"
            return text.contains("cannot listen on 127.0.0.1:\(first.port): the address is already in use") && !text.contains("errno")
        }
    }

    @Test("a wrong password is a clear error at connection")
    func wrongPassword() throws {
        registerSocketBackend()
        let server = try TestServer()
        defer { server.stop() }
        #expect { try makeBackend(uri: "socket://user:wrong@127.0.0.1:\(server.port)") } throws: {
            ($0 as? TrackError)?.message.contains("refused user 'user'") == true
        }
    }
}
