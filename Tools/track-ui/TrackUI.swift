import ArgumentParser
import Foundation
import Hummingbird
import Logging
import TrackServer

/// `track-ui DB`: a live, read-only web view of a database.
@main
struct TrackUI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track-ui",
        abstract: "Serve a live, read-only web view of a database: runs table, run pages, curves, comparisons.",
        discussion: """
            Open the address it prints in a browser. Everything the page loads is served from here (the \
            charts are Debian's libjs-dygraphs). New points appear while a training loop writes: the view \
            reads only what was appended since its last look and pushes the change to the page.
            On an address other than loopback, --users is required: the page asks for a user and password \
            of that file (see `track-server add-user`), and each user sees the projects the access rules grant.
            """)

    @Argument(help: "The database directory.")
    var database: String

    @Option(help: "The address to listen on. Anything but loopback needs --users.")
    var host = "127.0.0.1"

    @Option(help: "The port (0: any free port; the address is printed).")
    var port = 8080

    @Option(help: "The users file of track-server (lines written by `track-server add-user`): the page asks for one of its users.")
    var users: String?

    @Option(help: "Where the creators of projects are kept (default: the users file's path + .owners), as track-server.")
    var owners: String?

    @Option(help: "The folder holding dygraph.min.js and dygraph.min.css (default: Debian's libjs-dygraphs, /usr/share/javascript/dygraphs).")
    var dygraphs: String?

    @Option(help: "How often to look for new events, in milliseconds.")
    var pollMilliseconds = 200

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not a port (0...65535)") }
        guard pollMilliseconds >= 10 && pollMilliseconds <= 60_000 else { throw ValidationError("--poll-milliseconds is 10...60000") }
        if users == nil && !Self.isLoopback(host) {
            throw ValidationError("listening on \(host) (not loopback) needs --users FILE: the view shows every run of the database to whoever connects")
        }
    }

    /// Whether `host` is a loopback address (only this machine can connect).
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    func run() async throws {
        let gate: Gate
        do {
            if let users {
                let store = try UserStore(contentsOf: users)
                gate = Gate(users: store, access: try ProjectAccess(users: store, ownersPath: owners ?? users + ".owners"))
            } else {
                gate = Gate(users: nil, access: nil)
            }
        } catch {
            throw UIError("track-ui: \(error)")
        }
        let assets: Assets
        let store: RunStore
        do {
            assets = try Assets(dygraphs: dygraphs)
            store = try RunStore(database: database)
        } catch {
            throw UIError("track-ui: \(error)")
        }
        var logger = Logger(label: "track-ui")
        logger.logLevel = .warning
        let router = makeRouter(store: store, gate: gate, assets: assets, title: database)
        let database = self.database, host = self.host, polling = Duration.milliseconds(pollMilliseconds)
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
                              onServerRunning: { channel in
                                  let bound = channel.localAddress?.port ?? 0
                                  let shown = host.contains(":") ? "[\(host)]" : host
                                  // Written at once (not buffered): scripts and tests read the address.
                                  FileHandle.standardOutput.write(Data("track-ui: serving \(database) at http://\(shown):\(bound)/ (read-only; Ctrl-C stops)\n".utf8))
                              }, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            group.addTask {
                // Follows the database: each look reads only what was appended since the last.
                var sinceHeartbeat = Duration.zero
                while !Task.isCancelled {
                    try await Task.sleep(for: polling)
                    do { try store.refresh() } catch {
                        FileHandle.standardError.write(Data("track-ui: reading \(database): \(error)\n".utf8))
                    }
                    sinceHeartbeat += polling
                    if sinceHeartbeat >= .seconds(15) {
                        sinceHeartbeat = .zero
                        store.publish("")
                    }
                }
            }
            // The server ends on SIGINT or SIGTERM; then the follower stops too.
            try await group.next()
            group.cancelAll()
        }
    }
}
