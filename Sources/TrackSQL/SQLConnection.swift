import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import TrackBackends
import TrackModel

/// Where a SQL database is, read from a `cockroach://` or `postgres://` URI:
/// `cockroach://user:password@host:port/database?sslmode=disable|prefer|require|verify-full`.
public struct SQLLocation: Sendable, Equatable {
    /// TLS use, with libpq's names.
    public enum SSLMode: String, Sendable { case disable, prefer, require, verifyFull = "verify-full" }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode

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
            throw TrackError(.invalidArgument, "URI option sslmode=\(mode) is not one of disable, prefer, require, verify-full")
        }
        sslMode = parsed
    }
}

/// A blocking connection to PostgreSQL or CockroachDB (backends' API is synchronous).
public final class SQLConnection: @unchecked Sendable {
    /// Where it is connected.
    public let location: SQLLocation
    private let group: MultiThreadedEventLoopGroup
    private let connection: PostgresConnection
    private let logger: Logger

    /// Connects to `location`; a refused or failed connection is a `TrackError(.io)` naming it.
    public init(_ location: SQLLocation, logger: Logger = Logger(label: "track-sql")) throws {
        self.location = location
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch location.sslMode {
            case .disable: tls = .disable
            case .prefer, .require:
                var c = TLSConfiguration.makeClientConfiguration()
                c.certificateVerification = .none
                let context = try NIOSSLContext(configuration: c)
                tls = location.sslMode == .prefer ? .prefer(context) : .require(context)
            case .verifyFull: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
            let configuration = PostgresConnection.Configuration(host: location.host, port: location.port, username: location.user,
                                                                 password: location.password, database: location.database, tls: tls)
            connection = try PostgresConnection.connect(on: group.next(), configuration: configuration, id: 1, logger: logger).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw TrackError(.io, "cannot connect to the SQL database \(location.database) at \(location.host):\(location.port) as \(location.user): \(String(reflecting: error))")
        }
    }

    deinit {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in }
        try? group.syncShutdownGracefully()
    }

    /// Runs `query` and returns its rows; a failure is a `TrackError(.io)` with the server's message.
    @discardableResult
    public func run(_ query: PostgresQuery) throws -> [PostgresRow] {
        do {
            return try connection.query(query, logger: logger).wait().rows
        } catch let error as PSQLError {
            throw TrackError(.io, "SQL failed: \(error.serverInfo?[.message] ?? String(reflecting: error)) (in: \(query.sql.prefix(200)))")
        } catch {
            throw TrackError(.io, "SQL failed: \(error) (in: \(query.sql.prefix(200)))")
        }
    }

    /// Closes the connection.
    public func close() throws {
        let closing: EventLoopFuture<Void> = connection.close()
        try closing.wait()
    }
}
