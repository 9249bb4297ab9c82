import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import TrackBackends
import TrackModel

/// Where a SQL database is, read from a `cockroach://` or `postgres://` URI:
/// `cockroach://user:password@host:port/database?sslmode=disable|prefer|require|verify-ca|verify-full`,
/// with libpq's `sslrootcert=PATH` (the CA to verify the server against; default: the system's
/// trust roots) and `sslcert=PATH&sslkey=PATH` (a client certificate, as CockroachDB's secure
/// clusters use).
public struct SQLLocation: Sendable, Equatable {
    /// TLS use, with libpq's names: `require` verifies nothing unless `sslrootcert` is given (then
    /// as `verify-ca`); `verify-ca` checks the certificate chain; `verify-full` also the host name.
    public enum SSLMode: String, Sendable { case disable, prefer, require, verifyCA = "verify-ca", verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// `sslrootcert`: PEM file of the certificates the server's must chain to.
    public var rootCertificate: String?
    /// `sslcert` and `sslkey`: PEM files of a client certificate (chain) and its private key.
    public var clientCertificate: String?
    public var clientKey: String?

    /// The location `uri` names; the error says which part is wrong.
    public init(uri: TrackURI) throws {
        guard uri.scheme == "cockroach" || uri.scheme == "postgres" || uri.scheme == "postgresql" else {
            throw TrackError(.invalidArgument, "'\(uri)' is not a cockroach:// or postgres:// URI")
        }
        guard !uri.host.isEmpty else {
            throw TrackError(.invalidArgument, "the URI '\(uri)' needs a host: \(uri.scheme)://user:password@host:port/database")
        }
        host = uri.host
        port = uri.port ?? (uri.scheme == "cockroach" ? 26257 : 5432)
        user = uri.username ?? (uri.scheme == "cockroach" ? "root" : "postgres")
        password = uri.password
        let name = uri.path.hasPrefix("/") ? String(uri.path.dropFirst()) : uri.path
        database = name.isEmpty ? (uri.scheme == "cockroach" ? "defaultdb" : user) : name
        let mode = uri.option("sslmode") ?? "disable"
        guard let parsed = SSLMode(rawValue: mode) else {
            throw TrackError(.invalidArgument, "URI option sslmode=\(mode) is not one of disable, prefer, require, verify-ca, verify-full")
        }
        sslMode = parsed
        func file(_ option: String) throws -> String? {
            guard let path = uri.option(option) else { return nil }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw TrackError(.invalidArgument, "URI option \(option)=\(path): no readable file there")
            }
            return path
        }
        rootCertificate = try file("sslrootcert")
        clientCertificate = try file("sslcert")
        clientKey = try file("sslkey")
        guard (clientCertificate == nil) == (clientKey == nil) else {
            throw TrackError(.invalidArgument, "URI options sslcert and sslkey go together: a client certificate needs its key")
        }
        if sslMode == .disable && (rootCertificate != nil || clientCertificate != nil) {
            throw TrackError(.invalidArgument, "URI options sslrootcert, sslcert and sslkey need TLS, but sslmode=disable (the default): add sslmode=verify-full")
        }
    }

    /// The TLS settings of `sslMode` and the certificate options (nil: no TLS); an unreadable
    /// or malformed certificate or key is an `invalidArgument` error naming its option.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard sslMode != .disable else { return nil }
        var c = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable, .prefer, .require: c.certificateVerification = rootCertificate == nil ? .none : .noHostnameVerification
        case .verifyCA: c.certificateVerification = .noHostnameVerification
        case .verifyFull: c.certificateVerification = .fullVerification
        }
        do {
            if let rootCertificate { c.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(rootCertificate)) }
        } catch {
            throw TrackError(.invalidArgument, "URI option sslrootcert=\(rootCertificate ?? ""): not PEM certificates (\(error))")
        }
        if let clientCertificate, let clientKey {
            do {
                c.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
            } catch {
                throw TrackError(.invalidArgument, "URI option sslcert=\(clientCertificate): not a PEM certificate (\(error))")
            }
            do {
                c.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
            } catch {
                throw TrackError(.invalidArgument, "URI option sslkey=\(clientKey): not a PEM private key (\(error))")
            }
        }
        return c
    }
}

/// A failure the SQL server reported (with its SQLSTATE) or a lost connection.
struct SQLFailure: Error, Sendable {
    /// The server's SQLSTATE (`40001`: serialization failure, `23505`: unique violation), or nil
    /// when the connection failed: the statement's outcome is then unknown.
    var sqlState: String?
    var message: String

    /// Set when the connection was lost while committing: the transaction may or may not have
    /// been applied.
    var outcomeUnknown = false

    /// Whether running the whole transaction again may succeed (a conflict with another writer).
    var isRetryable: Bool { ["40001", "40P01", "23505"].contains(sqlState ?? "") }
}

/// A blocking connection to PostgreSQL or CockroachDB (backends' API is synchronous). A broken
/// connection is dropped and made again by the next statement. Not for concurrent use: callers
/// serialize (the backends hold a lock).
public final class SQLConnection: @unchecked Sendable {
    /// Where it is connected.
    public let location: SQLLocation
    private let group: MultiThreadedEventLoopGroup
    private var connection: PostgresConnection?
    private let logger: Logger
    private var closed = false
    /// Whether a transaction is open on `connection`. A statement then never reconnects: on a new
    /// connection it would run outside the transaction and commit on its own.
    private var inTransaction = false

    /// A fault a test makes happen at the next COMMIT (never set otherwise).
    enum CommitFault { case connectionLostBefore, replyLostAfter }
    /// The fault for the next COMMIT, for tests.
    var injectedCommitFault: CommitFault?

    /// Connects to `location`; a refused or failed connection is a `TrackError(.io)` naming it.
    public init(_ location: SQLLocation, logger: Logger = Logger(label: "track-sql")) throws {
        self.location = location
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            connection = try connect()
            let version = try run("SELECT version()").first?.decode(String.self) ?? ""
            isCockroach = version.contains("CockroachDB")
        } catch {
            try? close()
            throw error
        }
    }

    deinit {
        if !closed { try? close() }
    }

    /// Whether the server is CockroachDB rather than PostgreSQL (asked once, on connecting).
    public private(set) var isCockroach = false

    /// Where the database is, for messages: `defaultdb at host:port`.
    public var place: String { "\(location.database) at \(location.host):\(location.port)" }

    private func connect() throws -> PostgresConnection {
        let tls: PostgresConnection.Configuration.TLS
        if let c = try location.tlsConfiguration() {
            do {
                let context = try NIOSSLContext(configuration: c)
                tls = location.sslMode == .prefer ? .prefer(context) : .require(context)
            } catch {
                throw TrackError(.invalidArgument, "cannot set up TLS for the SQL database \(place): \(error)")
            }
        } else {
            tls = .disable
        }
        do {
            var configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                                 password: location.password, database: location.database, tls: tls)
            configuration.options.connectTimeout = .seconds(5)
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: 1, logger: logger).wait()
        } catch {
            throw TrackError(.io, "cannot connect to the SQL database \(place) as \(location.user): \(Self.describe(error))")
        }
    }

    /// A sentence for `error` (PSQLError's own description hides everything useful).
    static func describe(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return "\(error)" }
        if let message = e.serverInfo?[.message] { return message }
        if let underlying = e.underlying {
            let text = underlying is PSQLError ? describe(underlying) : "\(underlying)"
            if text.contains("Connection refused") { return "connection refused (is the server running and listening there?)" }
            if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("certificate verify failed") {
                return "the server's TLS certificate is not trusted (name its CA with sslrootcert=PATH; verify-full also checks the host name): \(text)"
            }
            if text.contains("timed out") || text.contains("connectTimeout") { return "connection timed out" }
            return "\(e.code): \(text)"
        }
        switch e.code {
        case .serverClosedConnection: return "the server closed the connection"
        case .clientClosedConnection: return "the connection was closed"
        case .uncleanShutdown: return "the connection ended without a clean shutdown"
        case .tooManyParameters: return "the statement has more than 65,535 parameters"
        case .queryCancelled: return "the statement was cancelled"
        case .sslUnsupported: return "the server does not support TLS (try sslmode=disable or prefer)"
        case .authMechanismRequiresPassword: return "the server wants a password: put it in the URI (user:password@host)"
        default: return "\(e.code)"
        }
    }

    /// Runs `query`; server errors keep their SQLSTATE, a lost connection is dropped (the next
    /// statement reconnects) and reported with no SQLSTATE.
    @discardableResult
    func execute(_ query: PostgresQuery) throws(SQLFailure) -> [PostgresRow] {
        guard !closed else { throw SQLFailure(sqlState: nil, message: "the connection to \(place) is closed") }
        let live: PostgresConnection
        if let connection, !connection.isClosed {
            live = connection
        } else {
            if inTransaction {
                drop()
                throw SQLFailure(sqlState: nil, message: "the connection to the SQL database \(place) was lost in a transaction (the server rolls it back)")
            }
            connection = nil
            do { live = try connect() } catch { throw SQLFailure(sqlState: nil, message: (error as? TrackError)?.message ?? "\(error)") }
            connection = live
        }
        do {
            return try live.query(query, logger: logger).wait().rows
        } catch let error as PSQLError {
            if error.code == .server, let state = error.serverInfo?[.sqlState] {
                throw SQLFailure(sqlState: state, message: error.serverInfo?[.message] ?? "\(error.code)")
            }
            drop()
            throw SQLFailure(sqlState: nil, message: "the connection to the SQL database \(place) failed: \(Self.describe(error))")
        } catch {
            drop()
            throw SQLFailure(sqlState: nil, message: "the connection to the SQL database \(place) failed: \(error)")
        }
    }

    /// Drops the connection as if the network had failed (for tests).
    func simulateConnectionLoss() { drop() }

    private func drop() {
        if let c = connection { Self.release(c, waiting: false) }
        connection = nil
    }

    /// Closes `c` and keeps it alive until its channel is closed: PostgresNIO asserts (and a debug
    /// build stops) when a connection is freed while its channel is still open, which a dropped
    /// connection's last reference would otherwise do right after `close()` was only started.
    private static func release(_ c: PostgresConnection, waiting: Bool) {
        let closing: EventLoopFuture<Void> = c.close()
        closing.whenComplete { _ in }
        c.closeFuture.whenComplete { _ in withExtendedLifetime(c) {} }
        if waiting { try? c.closeFuture.wait() }
    }

    /// Runs `query` and returns its rows; a failure is a `TrackError(.io)` with the server's message.
    @discardableResult
    public func run(_ query: PostgresQuery) throws -> [PostgresRow] {
        do {
            return try execute(query)
        } catch {
            throw TrackError(.io, "SQL failed on \(place): \(error.message)\(error.sqlState.map { " (SQLSTATE \($0))" } ?? "") (in: \(query.sql.prefix(200)))")
        }
    }

    /// Runs `body` in a transaction and commits. A conflict with another writer (serialization
    /// failure, deadlock, a key inserted meanwhile) rolls back and runs `body` again, up to
    /// `attempts` times; other failures roll back and are thrown. A connection lost in the
    /// middle fails the transaction (it is never continued on a new connection); lost while
    /// committing, the failure has `outcomeUnknown`.
    func transaction<T>(attempts: Int = 30, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            var begun = false
            do {
                _ = try execute("BEGIN")
                begun = true
                inTransaction = true
                let result = try body()
                do throws(SQLFailure) {
                    let fault = injectedCommitFault
                    injectedCommitFault = nil
                    if fault == .connectionLostBefore { drop() }
                    _ = try execute("COMMIT")
                    inTransaction = false
                    if fault == .replyLostAfter {
                        drop()
                        throw SQLFailure(sqlState: nil, message: "the connection to the SQL database \(place) failed: the reply was lost (injected)")
                    }
                } catch {
                    inTransaction = false
                    let lost = error.sqlState == nil
                    let message = lost ? error.message + " (while committing: the change may or may not have been applied)" : error.message
                    throw SQLFailure(sqlState: error.sqlState, message: message, outcomeUnknown: lost)
                }
                return result
            } catch {
                let failure = error as? SQLFailure
                if inTransaction {
                    if let connection, !connection.isClosed { _ = try? execute("ROLLBACK") }
                    inTransaction = false
                }
                // A connection found dead at BEGIN ran nothing: try once more on a new one.
                if let failure, failure.sqlState == nil, !begun, attempt == 1 { continue }
                if let failure, failure.isRetryable, attempt < attempts {
                    usleep(UInt32.random(in: 200...2_000) * UInt32(min(attempt, 10)))
                    continue
                }
                throw error
            }
        }
    }

    /// Closes the connection.
    public func close() throws {
        guard !closed else { return }
        closed = true
        if let c = connection { Self.release(c, waiting: true) }
        connection = nil
        try? group.syncShutdownGracefully()
    }
}
