import Foundation
import Synchronization
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// Issue 12, points 11 to 14: the server under hostile clients, and the client under a hostile server.
@Suite("hostile clients and servers", .serialized)
struct HostileClientTests {
    @Test("PasswordHashVectors: PBKDF2-HMAC-SHA256 and HMAC-SHA256 match published vectors (RFC 7914, RFC 4231) and existing users files")
    func vectors() {
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        // RFC 7914 section 11 (the first 32 of its 64 bytes: PBKDF2's first block).
        #expect(hex(PasswordHash.pbkdf2(password: "passwd", salt: Array("salt".utf8), iterations: 1)) == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")
        #expect(hex(PasswordHash.pbkdf2(password: "Password", salt: Array("NaCl".utf8), iterations: 80_000)) == "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56")
        #expect(hex(PasswordHash.hmac(key: Array("key".utf8), message: Array("The quick brown fox jumps over the lazy dog".utf8)))
                == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
        // A line the first version (hand-written PBKDF2) wrote for alice / s3cret.
        let line = "alice:pbkdf2-sha256:200000:000102030405060708090a0b0c0d0e0f:810439ddc514044dfcd538c4ef58e0907441682fe4e90f8c696c1e546b2d6ca9"
        let store = try? UserStore(parsing: line)
        #expect(store?.check(user: "alice", password: "s3cret") == true)
    }

    static func server(_ limits: ServerLimits, credentials: any CredentialChecker = AnyCredentials()) throws -> (SocketServer, Int) {
        let server = SocketServer(dispatcher: RPCDispatcher(backend: MemoryBackend(), credentials: credentials), limits: limits)
        return (server, try server.start(host: "127.0.0.1", port: 0))
    }

    @Test("BeforeLoginLimits: before authenticate a large message is refused, a silent connection closed at the login deadline, and connections past the cap refused while logged-in users still get in")
    func beforeLogin() throws {
        var limits = ServerLimits()
        limits.loginSecondsMax = 1
        limits.unauthenticatedConnectionsMax = 4
        limits.unauthenticatedConnectionsPerAddressMax = 100  // the global cap is tested here
        limits.unauthenticatedMessageBytesMax = 1024
        let (server, port) = try Self.server(limits)
        defer { try? server.stop() }
        // A 64 KiB message before login: refused and closed, before the server buffers it all.
        let big = try WireClient(port: port)
        big.send(text: #"{"__rpc__": "authenticate", "username": "\#(String(repeating: "x", count: 64 << 10))", "password": "p"}"#)
        let refused = big.receive()
        #expect(refused?["status"] == 1 && (refused?["error"]?.stringValue ?? "").contains("before authenticate"), "\(String(describing: refused))")
        // A logged-in user, then four silent connections fill the cap: a fifth is refused ...
        let user = try WireClient(port: port)
        #expect(user.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        let silent = try (0..<4).map { _ in try WireClient(port: port) }
        usleep(100_000)
        let fifth = try WireClient(port: port)
        let reply = fifth.receive()
        #expect((reply?["error"]?.stringValue ?? "").contains("waiting to log in"), "\(String(describing: reply))")
        // ... while the logged-in user is served, and large messages are fine once logged in.
        #expect(user.call(#"{"__rpc__": "new_project", "project": "\#(String(repeating: "p", count: 4000))"}"#)?["status"] == 0)
        // The silent ones are closed at the login deadline (each read waits for it); then a new
        // login gets in.
        for s in silent { #expect((s.receive()?["error"]?.stringValue ?? "").contains("not logged in within")) }
        let late = try WireClient(port: port)
        #expect(late.call(#"{"__rpc__": "authenticate", "username": "v", "password": "p"}"#)?["status"] == 0)
    }

    @Test("RepliesAreBoundedPerConnection: a client that sends requests and never reads gets no more than the limit of replies built for it")
    func replyAmplification() throws {
        var limits = ServerLimits()
        limits.replyBytesQueuedMax = 256 << 10
        let (server, port) = try Self.server(limits)
        defer { try? server.stop() }
        let setup = try WireClient(port: port)
        #expect(setup.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(setup.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let blob = String(repeating: "z", count: 50_000)
        let uid = try #require(setup.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {}, "metadata": {"blob": "\#(blob)"}}}"#)?["return"]?["uid"]?.stringValue)
        let hash = String(uid.prefix { $0 != "_" })
        // 2,000 requests, each answered with ~50 KB: 100 MB of replies if all were built, well
        // past the 64 MiB of growth the check below allows.
        let flood = try WireClient(port: port)
        #expect(flood.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        for _ in 0..<2000 { flood.send(text: #"{"__rpc__": "get_trial", "trial": "\#(hash)"}"#) }
        usleep(500_000)
        let resident = residentBytes()
        usleep(500_000)
        #expect(residentBytes() < resident + (64 << 20), "replies kept being built for a client that does not read")
        #expect(resident < 400 << 20, "resident \(resident >> 20) MiB")
        // Other clients are served meanwhile, and the flooding client gets every reply once it reads.
        #expect(setup.call(#"{"__rpc__": "get_project", "project": "p"}"#)?["status"] == 0)
        // Checked by their first bytes: decoding 200 MB of JSON would cost this test most of its time.
        let success = Array(#"{"status": 0"#.utf8)
        for i in 0..<2000 {
            guard let body = flood.receiveBody(), body.starts(with: success) else { Issue.record("reply \(i) missing"); break }
        }
    }

    @Test("MalformedReplyIsAnError: a server answering {\"status\":0,\"return\":null} gives the socket:// client an error naming the operation, not a trap")
    func malformedReply() throws {
        // A fake server that logs anyone in and answers null to everything.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 4)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread {
            let fd = accept(listener, nil, nil)
            defer { close(fd); close(listener) }
            let reply = Array(#"{"status": 0, "return": null}"#.utf8)
            let framed = withUnsafeBytes(of: UInt32(reply.count + 4).littleEndian) { Array($0) } + reply
            var header = [UInt8](repeating: 0, count: 4)
            while recv(fd, &header, 4, Int32(MSG_WAITALL)) == 4 {
                let n = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24) - 4
                var body = [UInt8](repeating: 0, count: max(0, n))
                if n > 0 && recv(fd, &body, n, Int32(MSG_WAITALL)) != n { return }
                _ = framed.withUnsafeBytes { send(fd, $0.baseAddress, framed.count, Int32(MSG_NOSIGNAL)) }
            }
        }
        thread.start()
        registerSocketBackend()
        let client = try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)?pipeline=false")
        for (name, call) in [("new_project", { _ = try client.newProject(Project(name: "p")) }),
                             ("new_trial_group", { _ = try client.newTrialGroup(TrialGroup(name: "g", projectID: "p")) }),
                             ("fetch_and_update_group", { _ = try client.fetchAndUpdateGroup(.all, .setMetadata(["k": 1])) })] as [(String, () throws -> Void)] {
            do {
                try call()
                Issue.record("\(name) accepted a null reply")
            } catch {
                #expect("\(error)".contains(name), "\(error)")
            }
        }
        try? client.close()
    }
}

/// This process's resident memory in bytes (Linux).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A checker as slow as a real key derivation can be on a loaded machine.
struct SlowCredentials: CredentialChecker {
    func check(user: String, password: String) -> Bool { usleep(1_500_000); return true }
}

@Suite("logins never hold up other clients", .serialized)
struct LoginFloodTests {
    @Test("LoginsRunOffTheRequestThreads: while several logins derive keys, a logged-in client is answered")
    func loginFlood() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: SlowCredentials())
        defer { try? server.stop() }
        let user = try WireClient(port: port)
        #expect(user.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        let flood = try (0..<4).map { _ in try WireClient(port: port) }
        for c in flood { c.send(text: #"{"__rpc__": "authenticate", "username": "x", "password": "y"}"#) }
        usleep(100_000)
        #expect(user.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        // Answered while every login is still running: none of them has replied yet.
        for c in flood {
            var byte: UInt8 = 0
            #expect(recv(c.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) < 0, "a login finished before the logged-in client was answered")
        }
        for c in flood { #expect(c.receive()?["status"] == 0) }
    }
}

/// Issue 23, points 6 to 8: the server under a hostile client, second round.
@Suite("hostile clients, second round", .serialized)
struct HostileClientSecondRoundTests {
    @Test("OneAddressCannotTakeEveryLoginSlot: 80 idle connections from one address leave logins from others unhindered")
    func perAddressShare() throws {
        var limits = ServerLimits()
        limits.loginSecondsMax = 5
        let (server, port) = try HostileClientTests.server(limits)
        defer { try? server.stop() }
        let share = limits.unauthenticatedConnectionsPerAddressMax
        let idle = try (0..<80).map { _ in try WireClient(port: port, from: "127.0.0.1") }
        // Past its share, each is refused at once, with the reason.
        for c in idle[share...] {
            let reply = c.receive()
            #expect((reply?["error"]?.stringValue ?? "").contains("from your address"), "\(String(describing: reply))")
        }
        for i in 0..<15 {
            let other = try WireClient(port: port, from: "127.0.0.\(2 + i % 3)")
            let reply = other.call(#"{"__rpc__": "authenticate", "username": "u\#(i)", "password": "p"}"#)
            #expect(reply?["status"] == 0, "login \(i) from another address: \(String(describing: reply))")
        }
    }

    @Test("WrongPasswordFloodDoesNotStopLogins: while 16 connections send wrong passwords in a loop, a new login gets in")
    func wrongPasswordFlood() throws {
        var limits = ServerLimits()
        limits.loginSecondsMax = 4
        let users = UserStore([UserRecord(name: "alice", password: "right", iterations: 20_000),
                               UserRecord(name: "bob", password: "bobs", iterations: 20_000)])
        let (server, port) = try HostileClientTests.server(limits, credentials: users)
        defer { try? server.stop() }
        let stop = Atomic<Bool>(false)
        let failures = Atomic<Int>(0)
        let threads = (0..<16).map { i in
            let thread = Thread {
                var client = try? WireClient(port: port, from: "127.0.1.\(1 + i)")
                while !stop.load(ordering: .relaxed) {
                    guard let c = client else { break }
                    let reply = c.call(#"{"__rpc__": "authenticate", "username": "alice", "password": "guess"}"#)
                    if (reply?["error"]?.stringValue ?? "").contains("authentication failed") {
                        failures.add(1, ordering: .relaxed)
                    } else {
                        client = try? WireClient(port: port, from: "127.0.1.\(1 + i)")  // closed at the login deadline
                    }
                }
            }
            thread.start()
            return thread
        }
        defer { stop.store(true, ordering: .relaxed); _ = threads }
        // The flood is under way once every connection has failed a few times (delays growing).
        while failures.load(ordering: .relaxed) < 32 { usleep(1_000) }
        for round in 0..<3 {
            let client = try WireClient(port: port, from: "127.0.2.1")
            let reply = client.call(#"{"__rpc__": "authenticate", "username": "bob", "password": "bobs"}"#)
            #expect(reply?["status"] == 0, "round \(round): \(String(describing: reply))")
            #expect(client.call(#"{"__rpc__": "new_project", "project": "p\#(round)"}"#)?["status"] == 0)
        }
    }

    @Test("LoneSurrogateIsRefused: a name or value holding a lone surrogate is refused with invalidArgument, nothing stored changed")
    func loneSurrogate() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        for request in [#"{"__rpc__": "new_project", "project": "bad\ud800name"}"#,
                        #"{"__rpc__": "new_project", "project": "p", "metadata": {"k": "\udc00"}}"#] {
            let reply = client.call(request)
            #expect(reply?["status"] == 1 && reply?["code"] == "invalidArgument" && (reply?["error"]?.stringValue ?? "").contains("lone surrogate"),
                    "\(String(describing: reply))")
        }
        let projects = client.call(#"{"__rpc__": "fetch_projects", "query": {}}"#)
        #expect(projects?["return"]?.arrayValue?.isEmpty == true, "\(String(describing: projects))")
    }
}

@Suite("the server's start and stop")
struct ServerLifecycleTests {
    @Test("StartStopRace: stop from several threads while start binds, twice, and after: no crash, one clean stop, a clear error for a late start")
    func startStopRace() throws {
        for _ in 0..<20 {
            let server = SocketServer(dispatcher: RPCDispatcher(backend: MemoryBackend(), credentials: AnyCredentials()))
            let stops = DispatchGroup()
            let starter = Thread { _ = try? server.start(host: "127.0.0.1", port: 0) }
            starter.start()
            for _ in 0..<3 {
                stops.enter()
                Thread { try? server.stop(); stops.leave() }.start()
            }
            #expect(stops.wait(timeout: .now() + 30) == .success)
            try server.stop()  // once more: nothing to do
            #expect { try server.start(host: "127.0.0.1", port: 0) } throws: { "\($0)".contains("already") || "\($0)".contains("stopped") }
        }
    }
}
