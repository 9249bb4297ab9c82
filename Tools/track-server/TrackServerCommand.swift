import ArgumentParser
import Foundation
import Logging
import TrackBackends
import TrackModel
import TrackServer
import TrackSQL

/// `track-server`: serves `track`'s socket protocol so unmodified Python clients can log to any backend.
@main
struct TrackServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track-server",
        abstract: "Serve track's socket protocol (Python SocketClient compatible) over any swift-track backend.",
        version: SwiftTrack.version,
        subcommands: [Serve.self, AddUser.self],
        defaultSubcommand: Serve.self
    )
}

/// Runs the server.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Listen for clients until SIGINT or SIGTERM.")

    @Option(help: "host:port to listen on (port 0: any free port, named in the log).")
    var listen = "127.0.0.1:8123"

    @Option(help: "The backend URI every client logs into (file://, pickled://, ephemeral://, cockroach://, postgres://).")
    var backend = "file://./track-server.db"

    @Option(help: "The users file (lines written by `track-server add-user`).")
    var users: String?

    @Flag(help: "Accept any user name and password (no users file); everyone may use every project.")
    var allowAnonymous = false

    @Option(help: "Where the creators of projects are kept (default: the users file's path + .owners).")
    var owners: String?

    @Option(help: "PEM certificate chain; with --tls-key, only TLS connections are accepted.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Speak Python track's AES security layer (clients with ?security_layer=AES) on every connection instead of plain messages. It is weak: one key and IV per connection, no message authentication, no server identity. Prefer TLS (--tls-cert/--tls-key; Python clients use ?security_layer=ssl). Python's client reads a reply with one 4096-byte recv, so replies longer than about 4 KB do not reach it through this layer.")
    var aesLayer = false

    @Option(help: "The largest message accepted, in bytes.")
    var messageBytesMax = 64 << 20

    @Option(help: "Seconds a silent connection stays open.")
    var idleSecondsMax: Int64 = 300

    @Option(help: "Connections served at once.")
    var connectionsMax = 1024

    func validate() throws {
        guard users != nil || allowAnonymous else {
            throw ValidationError("give --users FILE (see `track-server add-user`), or --allow-anonymous to accept anyone")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError("give both --tls-cert and --tls-key, or neither")
        }
        guard !(aesLayer && tlsCert != nil) else {
            throw ValidationError("--aes-layer and --tls-cert exclude each other: a connection speaks one security layer; TLS is the one to use")
        }
        guard messageBytesMax >= 64, idleSecondsMax > 0, connectionsMax > 0 else {
            throw ValidationError("--message-bytes-max must be at least 64; --idle-seconds-max and --connections-max positive")
        }
        guard listen.split(separator: ":").count == 2, Int(listen.split(separator: ":")[1]) != nil else {
            throw ValidationError("--listen must be host:port, got '\(listen)'")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "track-server")
        logger.logLevel = .info
        let credentials: any CredentialChecker
        let access: any AccessPolicy
        if let users {
            let store = try UserStore(contentsOf: users)
            credentials = store
            access = try ProjectAccess(users: store, ownersPath: owners ?? users + ".owners")
        } else {
            credentials = AnyCredentials()
            access = OpenAccess()
        }
        let tls = try tlsCert.map { try SocketServer.tlsContext(certificatePath: $0, keyPath: tlsKey!) }
        registerSQLBackend()
        let backend = try makeBackend(uri: backend)
        var limits = ServerLimits()
        limits.messageBytesMax = messageBytesMax
        limits.idleSecondsMax = idleSecondsMax
        limits.connectionsMax = connectionsMax
        if aesLayer {
            logger.warning("the AES layer is weak (one key and IV per connection, no message authentication, no server identity); prefer TLS with --tls-cert and --tls-key")
        }
        let server = SocketServer(dispatcher: RPCDispatcher(backend: backend, credentials: credentials, access: access), limits: limits, tls: tls,
                                  aesLayer: aesLayer, logger: logger)
        let parts = listen.split(separator: ":")
        try server.start(host: String(parts[0]), port: Int(parts[1])!)
        // Stop cleanly on SIGINT and SIGTERM: close the listener, make the backend durable.
        let stop = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        logger.info("stopping")
        try server.stop()
        try backend.close()
        logger.info("stopped; the backend is flushed")
    }
}

/// Appends a user to a users file, reading the password from standard input.
struct AddUser: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-user",
        abstract: "Add a user to a users file; the password is read from standard input (one line).")

    @Argument(help: "The user name (no ':').")
    var name: String

    @Option(help: "The users file to append to (created if missing).")
    var users = "track-users"

    @Option(help: "PBKDF2 iterations.")
    var iterations = 200_000

    @Option(name: .customLong("grant"), help: "A project the user may use besides those they create (repeatable; '*' for every project).")
    var grants: [String] = []

    func validate() throws {
        guard !name.isEmpty, !name.contains(":"), !name.contains("\n") else { throw ValidationError("a user name is not empty and has no ':'") }
        guard iterations >= 1000 else { throw ValidationError("--iterations must be at least 1000") }
        for grant in grants where grant.isEmpty || grant.contains(",") || grant.contains(":") || grant.contains("\n") {
            throw ValidationError("--grant '\(grant)': a granted project name is not empty and has no ',' or ':'")
        }
    }

    func run() throws {
        guard let password = readLine(strippingNewline: true), !password.isEmpty else {
            throw ValidationError("no password on standard input")
        }
        if let existing = try? UserStore(contentsOf: users), existing.names.contains(name) {
            throw ValidationError("user '\(name)' is already in \(users)")
        }
        let line = UserRecord(name: name, password: password, iterations: iterations, grants: grants).line + "\n"
        if let handle = FileHandle(forWritingAtPath: users) {
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
            handle.closeFile()
        } else {
            FileManager.default.createFile(atPath: users, contents: Data(line.utf8), attributes: [.posixPermissions: 0o600])
        }
        FileHandle.standardError.write(Data("added \(name) to \(users)\n".utf8))
    }
}
