import Foundation
import Testing
import TrackSQL

/// A real PostgreSQL server for the tests: `initdb` into a temporary folder, listening only on
/// 127.0.0.1 on a free port, stopped by `stop()`. As root (CI), the server runs as the
/// `postgres` user, since PostgreSQL refuses to run as root. `make test` installs the Debian
/// `postgresql` package when it is missing.
final class PostgresServer: @unchecked Sendable {
    let directory: String
    let port: Int
    let bin: String
    private let asPostgres: Bool

    /// The folder holding initdb and pg_ctl (Debian keeps them off the PATH).
    static func binaries() -> String? {
        if let dir = ProcessInfo.processInfo.environment["PG_BIN"] { return dir }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        for v in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/initdb") { return "\(root)/\(v)/bin" }
        return nil
    }

    init() throws {
        guard let bin = Self.binaries() else {
            throw TestFailure("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `make test` installs the postgresql package")
        }
        self.bin = bin
        asPostgres = getuid() == 0
        directory = NSTemporaryDirectory() + "swift-track-pg-\(UUID().uuidString.prefix(8))"
        port = Self.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asPostgres { try run("/bin/chown", ["postgres", directory], asPostgres: false) }
        try run("\(bin)/initdb", ["-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        try run("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60",
                                  "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
    }

    /// The URI of database `postgres` as user `postgres`, in `scheme`.
    func uri(_ scheme: String = "cockroach") -> String { "\(scheme)://postgres@127.0.0.1:\(port)/postgres?sslmode=disable" }

    func stop() {
        try? run("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-m", "fast", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `tool` (as postgres when the tests run as root) with its output in a log file and
    /// waits for it with waitpid (Foundation's Process missed the exit of runuser here).
    private func run(_ tool: String, _ arguments: [String], asPostgres: Bool? = nil) throws {
        let argv = (asPostgres ?? self.asPostgres) ? ["/usr/sbin/runuser", "-u", "postgres", "--", tool] + arguments : [tool] + arguments
        let log = "\(directory)/\(URL(fileURLWithPath: tool).lastPathComponent).out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, environ)
        guard spawned == 0 else { throw TestFailure("cannot start \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7F) == 0
        let code = (status >> 8) & 0xFF
        guard exited && code == 0 else {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            throw TestFailure("\(argv.joined(separator: " ")) failed (status \(status)): \(text.suffix(1500))")
        }
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One server for the whole test process, started on first use and stopped when the process exits.
let sharedPostgres: Result<PostgresServer, any Error> = {
    let result = Result { try PostgresServer() }
    atexit { if case .success(let server) = sharedPostgres { server.stop() } }
    return result
}()
