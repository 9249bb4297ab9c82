#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PostgresNIO
import TrackBackends
import TrackModel
import TrackSQL

/// A throwaway PostgreSQL server for tests, benchmarks and demos: `initdb` into a temporary
/// folder, listening only on 127.0.0.1 on a free port, deleted by `stop()`. As root (CI) the
/// server runs as the `postgres` user, since PostgreSQL refuses to run as root. Needs the server
/// binaries (Debian's `postgresql` package, found under /usr/lib/postgresql/<version>/bin, or
/// the folder in `PG_BIN`).
public final class LocalPostgresServer: @unchecked Sendable {
    /// The folder holding the data directory, sockets and logs.
    public let directory: String
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// The folder of initdb and pg_ctl.
    public let bin: String
    private let fsync: Bool
    private let asPostgres: Bool
    /// With TLS: the folder of the test CA's files (`ca.crt`; `client.crt` and `client.key` for
    /// the user `certuser`, who may log in only with that certificate). nil without TLS.
    public let tlsDirectory: String?

    /// The folder holding initdb and pg_ctl (Debian keeps them off the PATH).
    public static func binaries() -> String? {
        if let dir = ProcessInfo.processInfo.environment["PG_BIN"] { return dir }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }
        for v in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(v)/bin/initdb") { return "\(root)/\(v)/bin" }
        return nil
    }

    /// Creates and starts a server; `fsync: false` (the default, for tests) trades durability
    /// for speed. With `tls`, it also accepts TLS with a certificate for `localhost` and
    /// 127.0.0.1 from a CA made for it (`tlsDirectory`), and has a user `certuser` who logs in
    /// by client certificate only.
    public init(fsync: Bool = false, tls: Bool = false) throws {
        guard let bin = Self.binaries() else {
            throw TrackError(.io, "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `make deps-postgres` installs the postgresql package, or set PG_BIN")
        }
        self.bin = bin
        self.fsync = fsync
        asPostgres = getuid() == 0
        directory = NSTemporaryDirectory() + "swift-track-pg-\(UUID().uuidString.prefix(8))"
        port = Self.freePort()
        tlsDirectory = tls ? directory + "/tls" : nil
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if asPostgres { try run("/bin/chown", ["postgres", directory], asPostgres: false) }
        try run("\(bin)/initdb", ["-D", "\(directory)/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        if let tlsDirectory { try makeCertificates(tlsDirectory) }
        try start()
        if tls {
            let admin = try SQLConnection(SQLLocation(uri: TrackURI(uri())))
            defer { try? admin.close() }
            try admin.run("CREATE USER certuser")
        }
    }

    /// A CA, a server certificate for localhost and 127.0.0.1, and a client certificate for
    /// `certuser`, made with the openssl tool; `certuser` may log in over TLS by certificate only.
    private func makeCertificates(_ dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let found = ((ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map { "\($0)/openssl" } + ["/usr/bin/openssl"])
            .first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let openssl = found else {
            throw TrackError(.io, "openssl is not installed; it makes the TLS test certificates (`make deps-postgres` installs it)")
        }
        try run(openssl, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=swift-track test CA",
                          "-keyout", "\(dir)/ca.key", "-out", "\(dir)/ca.crt"], asPostgres: false)
        for (name, subject, extensions) in [("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                                            ("client", "/CN=certuser", "extendedKeyUsage=clientAuth")] {
            try run(openssl, ["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr"], asPostgres: false)
            try Data("\(extensions)\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name).ext"))
            try run(openssl, ["x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key", "-CAcreateserial",
                              "-days", "2", "-extfile", "\(dir)/\(name).ext", "-out", "\(dir)/\(name).crt"], asPostgres: false)
        }
        // The server refuses a key others can read; as root the server runs as postgres.
        chmod("\(dir)/server.key", 0o600)
        if asPostgres { try run("/bin/chown", ["-R", "postgres", dir], asPostgres: false) }
        // certuser: certificate only (before initdb's trust lines, which match first otherwise).
        let hba = "\(directory)/data/pg_hba.conf"
        let old = String(decoding: FileManager.default.contents(atPath: hba) ?? Data(), as: UTF8.self)
        guard let handle = FileHandle(forWritingAtPath: hba) else { throw TrackError(.io, "cannot write \(hba)") }
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(("hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n" + old).utf8))
        try handle.close()
    }

    /// Starts the server (again, after `pause()`).
    public func start() throws {
        var options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=\(fsync ? "on" : "off")"
        if let tlsDirectory {
            options += " -c ssl=on -c ssl_cert_file=\(tlsDirectory)/server.crt -c ssl_key_file=\(tlsDirectory)/server.key -c ssl_ca_file=\(tlsDirectory)/ca.crt"
        }
        try run("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-w", "-t", "60", "-o", options, "start"])
    }

    /// Stops the server, keeping its data (`start()` brings it back); `immediate` stops it as a
    /// crash would, without closing client connections cleanly.
    public func pause(immediate: Bool = false) throws {
        try run("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-m", immediate ? "immediate" : "fast", "-w", "stop"])
    }

    /// The URI of `database` as user `postgres`, in `scheme`.
    public func uri(_ scheme: String = "cockroach", database: String = "postgres") -> String {
        "\(scheme)://postgres@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Creates a database with a fresh name and returns its URI (`scheme`, plus `options`).
    public func freshDatabase(_ scheme: String = "cockroach", options: String = "") throws -> String {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try SQLConnection(SQLLocation(uri: TrackURI(uri())))
        defer { try? admin.close() }
        try admin.run(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        return uri(scheme, database: name) + options
    }

    /// Stops the server and deletes its folder.
    public func stop() {
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
        guard spawned == 0 else { throw TrackError(.io, "cannot start \(argv[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7F) == 0
        let code = (status >> 8) & 0xFF
        guard exited && code == 0 else {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            throw TrackError(.io, "\(argv.joined(separator: " ")) failed (status \(status)): \(text.suffix(1500))")
        }
    }

    /// A TCP port free on 127.0.0.1 when asked.
    public static func freePort() -> Int {
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

