import PostgresNIO
import TrackBackends

/// The versioned schema of the SQL store (docs/FORMAT.md, "SQL schema"). Version N is reached by
/// running the statements of versions 1...N in order; each statement is idempotent, so two
/// processes migrating at once both succeed. Only SQL that PostgreSQL and CockroachDB share.
public enum SQLSchema {
    /// The statements of each version, from version 1.
    static let versions: [[String]] = [
        [
            """
            CREATE TABLE IF NOT EXISTS track_schema (
                version INT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            // Every operation as an event; a retried batch is written once thanks to the key.
            """
            CREATE TABLE IF NOT EXISTS track_events (
                stream TEXT NOT NULL,
                seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                body JSONB NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (stream, seq)
            )
            """,
        ],
    ]

    /// The version this build writes.
    public static var current: Int { versions.count }

    /// The version `connection`'s database is at (0: no schema).
    public static func version(_ connection: SQLConnection) throws -> Int {
        let exists = try connection.run("SELECT count(*)::BIGINT FROM information_schema.tables WHERE table_name = 'track_schema'")
        guard let count = try exists.first?.decode(Int64.self), count > 0 else { return 0 }
        let rows = try connection.run("SELECT coalesce(max(version), 0)::BIGINT FROM track_schema")
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    /// Brings the schema to `current`; returns the version found before. A database written by a
    /// newer build is refused rather than misread.
    @discardableResult
    public static func migrate(_ connection: SQLConnection) throws -> Int {
        let found = try version(connection)
        guard found <= current else {
            throw TrackError(.invalidArgument, "the SQL database is at schema version \(found), newer than this build's \(current); upgrade swift-track")
        }
        for v in found..<current {
            for statement in versions[v] { try connection.run(PostgresQuery(unsafeSQL: statement)) }
            let next = v + 1
            try connection.run("INSERT INTO track_schema (version) VALUES (\(next)) ON CONFLICT (version) DO NOTHING")
        }
        return found
    }
}

/// One event of the SQL store's log.
public struct SQLEvent: Sendable, Equatable {
    /// The writer's stream (one per writing process) and the event's number in it.
    public var stream: String
    public var seq: Int64
    /// What happened (an operation name) and its arguments as JSON text.
    public var kind: String
    public var body: String

    /// An event.
    public init(stream: String, seq: Int64, kind: String, body: String) {
        self.stream = stream
        self.seq = seq
        self.kind = kind
        self.body = body
    }
}

extension SQLConnection {
    /// Appends `events` in one multi-row statement; an event whose (stream, seq) is already
    /// stored is skipped, so a batch retried after a lost reply is written once. Returns how many
    /// were new.
    @discardableResult
    public func append(_ events: [SQLEvent]) throws -> Int {
        var total = 0
        // PostgreSQL allows 65,535 binds per statement: 4 per event.
        for start in stride(from: 0, to: events.count, by: 10_000) {
            let chunk = events[start..<min(events.count, start + 10_000)]
            var sql = "INSERT INTO track_events (stream, seq, kind, body) VALUES "
            var binds = PostgresBindings(capacity: chunk.count * 4)
            for (i, e) in chunk.enumerated() {
                if i > 0 { sql += ", " }
                sql += "($\(4 * i + 1), $\(4 * i + 2), $\(4 * i + 3), $\(4 * i + 4)::JSONB)"
                binds.append(e.stream)
                binds.append(e.seq)
                binds.append(e.kind)
                binds.append(e.body)
            }
            sql += " ON CONFLICT (stream, seq) DO NOTHING RETURNING seq"
            total += try run(PostgresQuery(unsafeSQL: sql, binds: binds)).count
        }
        return total
    }

    /// The events of `stream` from `seq` on, in order.
    public func events(stream: String, from seq: Int64 = 0) throws -> [SQLEvent] {
        try run("SELECT stream, seq, kind, body::TEXT FROM track_events WHERE stream = \(stream) AND seq >= \(seq) ORDER BY seq").map { row in
            let (stream, seq, kind, body) = try row.decode((String, Int64, String, String).self)
            return SQLEvent(stream: stream, seq: seq, kind: kind, body: body)
        }
    }
}
