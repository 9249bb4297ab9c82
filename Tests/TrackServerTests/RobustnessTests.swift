import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// A server holding another client's data, to check that an attack changes nothing of it and
/// that the server still serves.
final class Bystander {
    let server: TestServer
    let trial: String

    init(limits: ServerLimits = ServerLimits()) throws {
        server = try TestServer(limits: limits)
        let c = try WireClient(port: server.port)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0)
        #expect(c.call(#"{"__rpc__": "new_project", "project": "safe"}"#)?["status"] == 0)
        let t = c.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "safe", "parameters": {}}}"#)
        trial = try #require(t?["return"]?["uid"]?.stringValue)
        for step in 0..<10 {
            #expect(c.call(#"{"__rpc__": "log_trial_metrics", "trial": "\#(trial)", "step": \#(step), "loss": 0.5}"#)?["status"] == 0)
        }
    }

    /// The server still answers a new client, and the bystander's data is as it was.
    func check(alsoCreated: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let c = try WireClient(port: server.port)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0, sourceLocation: sourceLocation)
        let t = c.call(#"{"__rpc__": "get_trial", "trial": "\#(trial)"}"#)?["return"]?.arrayValue?.first
        #expect(t?["metrics"]?["loss"]?.objectValue?.count == 10, sourceLocation: sourceLocation)
        #expect(try server.backend.fetchProjects(Query()).map(\.name).sorted() == (["safe"] + alsoCreated).sorted(), sourceLocation: sourceLocation)
        server.stop()
    }
}

/// Little-endian length header.
func header(_ length: UInt32) -> [UInt8] { [UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)] }

@Suite("track-server survives anything a network can send", .serialized)
struct RobustnessTests {
    @Test("a length below 4: an error reply, then the connection closes")
    func lengthBelowFour() throws {
        let b = try Bystander()
        for length: UInt32 in [0, 1, 3] {
            let c = try WireClient(port: b.server.port)
            c.sendRaw(header(length))
            #expect(c.receive()?["error"]?.stringValue?.contains("outside") == true)
            #expect(c.receive() == nil)
        }
        try b.check()
    }

    @Test("a length above the limit: an error reply, then the connection closes, before the body is read")
    func lengthAboveLimit() throws {
        var limits = ServerLimits()
        limits.messageBytesMax = 1 << 16
        let b = try Bystander(limits: limits)
        let c = try WireClient(port: b.server.port)
        c.sendRaw(header(UInt32(1 << 16) + 1))
        #expect(c.receive()?["error"]?.stringValue?.contains("outside 4...65536") == true)
        #expect(c.receive() == nil)
        let d = try WireClient(port: b.server.port)
        d.sendRaw(header(UInt32.max))
        #expect(d.receive()?["status"] == 1)
        try b.check()
    }

    @Test("a length that promises more bytes than ever arrive: closed at the idle timeout, or when the client leaves")
    func promisesMore() throws {
        var limits = ServerLimits()
        limits.idleSecondsMax = 1
        let b = try Bystander(limits: limits)
        let c = try WireClient(port: b.server.port)
        c.sendRaw(header(1000) + Array(#"{"__rpc__": "authenticate""#.utf8))
        let started = Date()
        #expect(c.receive() == nil)
        // The client's own receive timeout is 10 s: returning well before it means the server
        // closed the connection (at its 1 s limit; a loaded machine takes a few seconds more).
        #expect(Date().timeIntervalSince(started) < 9)
        // The same, but the client hangs up first.
        let d = try WireClient(port: b.server.port)
        d.sendRaw(header(1000) + [1, 2, 3])
        _ = consume d
        try b.check()
    }

    @Test("a message trickling in a byte at a time is cut off once it has taken longer than the idle timeout")
    func trickle() throws {
        var limits = ServerLimits()
        limits.idleSecondsMax = 1
        let b = try Bystander(limits: limits)
        let c = try WireClient(port: b.server.port)
        let message = header(200) + Array(repeating: UInt8(ascii: " "), count: 196)
        var closed = false
        let started = Date()
        for byte in message {
            c.sendRaw([byte])
            usleep(100_000)
            // The error reply arrives once the message has been arriving for over a second.
            if Date().timeIntervalSince(started) > 1.2 { closed = c.receive()?["error"]?.stringValue?.contains("did not arrive whole") == true; break }
        }
        #expect(closed)
        #expect(c.receive() == nil)
        try b.check()
    }

    @Test("a client that connects and sends nothing is closed at the idle timeout")
    func silentClient() throws {
        var limits = ServerLimits()
        limits.idleSecondsMax = 1
        let b = try Bystander(limits: limits)
        let c = try WireClient(port: b.server.port)
        let started = Date()
        #expect(c.receive() == nil)
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.5 && waited < 5)
        try b.check()
    }

    @Test("invalid UTF-8: an error reply; the connection stays usable")
    func invalidUTF8() throws {
        let b = try Bystander()
        let c = try WireClient(port: b.server.port)
        let body: [UInt8] = [0x7B, 0xFF, 0xFE, 0x80, 0x7D]
        c.sendRaw(header(UInt32(body.count + 4)) + body)
        #expect(c.receive()?["error"]?.stringValue?.contains("UTF-8") == true)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0)
        try b.check()
    }

    @Test("invalid JSON, and JSON that is not an object: error replies; the connection stays usable")
    func invalidJSON() throws {
        let b = try Bystander()
        let c = try WireClient(port: b.server.port)
        for text in ["{not json", "", "[1, 2]", "42", #"{"__rpc__": "new_project", "project": "x""#] {
            #expect(c.call(text)?["status"] == 1, "\(text.prefix(30))")
        }
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0)
        // Larger garbage once logged in (before, messages are limited to 64 KiB).
        #expect(c.call(String(repeating: "[", count: 100_000))?["status"] == 1)
        #expect(c.call(#"{"__rpc__": "fetch_projects", "query": {}}"#)?["status"] == 0)
        try b.check()
    }

    @Test("a missing, ill-typed or unknown __rpc__: an error reply naming the problem")
    func badRPC() throws {
        let b = try Bystander()
        let c = try WireClient(port: b.server.port)
        #expect(c.call(#"{"username": "user"}"#)?["error"]?.stringValue?.contains("__rpc__") == true)
        #expect(c.call(#"{"__rpc__": 7}"#)?["error"]?.stringValue?.contains("__rpc__") == true)
        #expect(c.call(#"{"__rpc__": "drop_everything"}"#)?["error"]?.stringValue?.contains("unknown operation 'drop_everything'") == true)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0)
        #expect(c.call(#"{"__rpc__": "__init__"}"#)?["error"]?.stringValue?.contains("unknown operation") == true)
        try b.check()
    }

    @Test("missing or ill-typed arguments of every operation: an error reply, nothing changed")
    func badArguments() throws {
        let b = try Bystander()
        let c = try WireClient(port: b.server.port)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user"}"#)?["status"] == 1)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": 1, "password": []}"#)?["status"] == 1)
        #expect(c.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0)
        // Every operation with no arguments, and with each argument of the wrong type.
        let wrong: [String] = ["42", "[1]", #"{"dtype": "nonsense"}"#, "\"not_a_uid\"", "true"]
        for rpc in ProtocolRequests.operations.sorted() where !["authenticate", "commit", "fetch_projects", "fetch_groups", "fetch_trials"].contains(rpc) {
            #expect(c.call(#"{"__rpc__": "\#(rpc)"}"#)?["status"] == 1, "\(rpc) with no arguments")
            for w in wrong {
                let request = #"{"__rpc__": "\#(rpc)", "project": \#(w), "group": \#(w), "trial": \#(w), "query": \#(w), "status": \#(w), "name": \#(w), "step": \#(w), "attr": \#(w)}"#
                let reply = c.call(request)
                #expect(reply?["status"] == 1 || rpc.hasPrefix("get_") || rpc == "new_project", "\(rpc) with \(w): \(String(describing: reply))")
            }
        }
        #expect(c.call(#"{"__rpc__": "fetch_trials", "query": {"status": {"$regex": "x"}}}"#)?["status"] == 1)
        #expect(c.call(#"{"__rpc__": "log_trial_metrics", "trial": "\#(b.trial)", "step": [1], "loss": 1.0}"#)?["error"]?.stringValue?.contains("step") == true)
        // (new_project with a string is a valid request: the project named by it.)
        try b.check(alsoCreated: ["not_a_uid"])
    }

    @Test("1,000 connections opened and dropped, and connections beyond the limit, leave the server serving")
    func manyConnections() throws {
        // Two descriptors per connection live in this process (client and server side).
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 4096 { limit.rlim_cur = min(limit.rlim_max, 4096); setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let batch = limit.rlim_cur >= 4096 ? 1000 : 250
        let b = try Bystander()
        var opened = 0
        while opened < 1000 {
            var held: [WireClient] = []
            for _ in 0..<batch { held.append(try WireClient(port: b.server.port)) }
            // Half send a partial message before they go.
            for (i, c) in held.enumerated() where i % 2 == 0 { c.sendRaw(header(100) + [0x7B]) }
            opened += held.count
            held.removeAll()
        }
        // Every dropped connection is let go: only the bystander's may remain.
        var open = b.server.server.openConnections
        for _ in 0..<100 where open > 1 {
            usleep(50_000)
            open = b.server.server.openConnections
        }
        #expect(open <= 1)
        try b.check()

        var limits = ServerLimits()
        limits.connectionsMax = 5
        let small = try Bystander(limits: limits)
        var held: [WireClient] = []
        for _ in 0..<4 { held.append(try WireClient(port: small.server.port)) }
        // The bystander's first connection may still be open; the sixth onwards is closed at once.
        let extra = try (0..<3).map { _ in try WireClient(port: small.server.port) }
        #expect(extra.last?.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#) == nil)
        held.removeAll()
        // Closed connections free their places.
        var served = false
        for _ in 0..<50 where !served {
            usleep(50_000)
            served = (try? WireClient(port: small.server.port))?.call(#"{"__rpc__": "authenticate", "username": "user", "password": "pass"}"#)?["status"] == 0
        }
        #expect(served)
        _ = extra
        try small.check()
    }

    @Test("random bytes from many clients: the server stays up and the data is untouched")
    func garbage() throws {
        let b = try Bystander()
        var generator = SeededRandom(seed: 42)
        for _ in 0..<50 {
            let c = try WireClient(port: b.server.port)
            var bytes = (0..<Int(generator.next() % 4096)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if generator.next() % 2 == 0 {
                // A well-formed length around garbage, so the body reaches the JSON parser.
                bytes = header(UInt32(bytes.count + 4)) + bytes
            }
            c.sendRaw(bytes)
        }
        try b.check()
    }
}

