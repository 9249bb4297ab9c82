import PostgresNIO
import TrackBackends
import TrackModel

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
            // Every change as an event, keyed by its writer's stream and sequence number so that
            // a retried batch is refused as a whole; a batch of metric points is one event
            // covering sequences seq...last_seq (the points themselves are in track_points).
            """
            CREATE TABLE IF NOT EXISTS track_events (
                stream TEXT NOT NULL,
                seq BIGINT NOT NULL,
                last_seq BIGINT NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                PRIMARY KEY (stream, seq)
            )
            """,
            // Projections. Bodies are track's JSON as text (key order is part of the model;
            // JSONB would sort keys, and refuses NaN and Infinity, which track writes). attrs
            // holds the queryable objects as JSONB for pushed-down queries (non-finite numbers
            // replaced, see FORMAT.md). ord keeps creation order.
            """
            CREATE TABLE IF NOT EXISTS track_projects (
                uid TEXT PRIMARY KEY,
                ord BIGSERIAL NOT NULL,
                update_count BIGINT NOT NULL,
                attrs JSONB NOT NULL,
                body TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS track_groups (
                uid TEXT PRIMARY KEY,
                ord BIGSERIAL NOT NULL,
                name TEXT NOT NULL,
                project_id TEXT NOT NULL,
                update_count BIGINT NOT NULL,
                attrs JSONB NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS track_groups_project ON track_groups (project_id)",
            // A trial's row holds everything but its metrics. Its revision tag is
            // update_count + metric_updates (metric batches only add to the latter).
            """
            CREATE TABLE IF NOT EXISTS track_trials (
                uid TEXT PRIMARY KEY,
                ord BIGSERIAL NOT NULL,
                hash TEXT NOT NULL,
                revision BIGINT NOT NULL,
                name TEXT,
                project_id TEXT,
                group_id TEXT,
                status_name TEXT NOT NULL,
                status_value BIGINT NOT NULL,
                update_count BIGINT NOT NULL,
                metric_updates BIGINT NOT NULL DEFAULT 0,
                last_change FLOAT8,
                chrono_starts TEXT NOT NULL DEFAULT '{}',
                attrs JSONB NOT NULL,
                body TEXT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS track_trials_hash ON track_trials (hash, revision)",
            "CREATE INDEX IF NOT EXISTS track_trials_project ON track_trials (project_id)",
            "CREATE INDEX IF NOT EXISTS track_trials_group ON track_trials (group_id)",
            // Metric points: a double in value, any other value as JSON text in value_json.
            """
            CREATE TABLE IF NOT EXISTS track_points (
                trial TEXT NOT NULL,
                ord BIGSERIAL NOT NULL,
                name TEXT NOT NULL,
                step BIGINT,
                value FLOAT8,
                value_json TEXT,
                PRIMARY KEY (trial, ord)
            )
            """,
        ],
        // Version 2: a project's and a group's trial lists move out of their bodies into rows of
        // their own, so that adding a trial writes one row instead of rewriting a list that
        // grows with the project (moveMemberLists moves existing lists).
        [
            """
            CREATE TABLE IF NOT EXISTS track_members (
                owner_kind TEXT NOT NULL,
                owner TEXT NOT NULL,
                trial TEXT NOT NULL,
                pos BIGINT NOT NULL,
                PRIMARY KEY (owner_kind, owner, trial)
            )
            """,
            "CREATE INDEX IF NOT EXISTS track_members_order ON track_members (owner_kind, owner, pos)",
        ],
        // Version 3: metric steps that are not integers (Python's step=1.5, step="warmup") as
        // JSON text; step is null for them.
        [
            "ALTER TABLE track_points ADD COLUMN IF NOT EXISTS step_json TEXT",
        ],
    ]

    /// Data moves run after a version's statements (by version number).
    static let dataSteps: [Int: @Sendable (SQLConnection) throws -> Void] = [2: { try moveMemberLists($0) }]

    /// Version 2's move: the trial lists in the bodies of projects and groups become
    /// `track_members` rows, and the bodies keep empty lists. Idempotent (a moved body has an empty
    /// list), and in one transaction with the rows locked, so concurrent migrations agree.
    static func moveMemberLists(_ connection: SQLConnection) throws {
        try connection.transaction {
            for (table, kind) in [("track_projects", "project"), ("track_groups", "group")] {
                for row in try connection.execute(PostgresQuery(unsafeSQL: "SELECT uid, body FROM \(table) ORDER BY ord FOR UPDATE")) {
                    let (uid, body) = try row.decode((String, String).self)
                    guard case .object(var object)? = try? JSON.decode(body), let trials = object["trials"]?.arrayValue, !trials.isEmpty else { continue }
                    try connection.addMembers(kind, uid, trials.compactMap(\.stringValue))
                    object["trials"] = .array([])
                    try connection.execute(PostgresQuery(unsafeSQL: "UPDATE \(table) SET body = $1 WHERE uid = $2", binds: {
                        var b = PostgresBindings(capacity: 2)
                        b.append(JSON.encode(.object(object)))
                        b.append(uid)
                        return b
                    }()))
                }
            }
        }
    }

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
    /// newer build is refused rather than misread. Processes migrating at once may collide on
    /// PostgreSQL's catalog (a unique violation or "already exists" in `CREATE ... IF NOT EXISTS`): the
    /// loser tries again.
    @discardableResult
    public static func migrate(_ connection: SQLConnection) throws -> Int {
        var attempt = 0
        while true {
            attempt += 1
            let found = try version(connection)
            guard found <= current else {
                throw TrackError(.invalidArgument, "the SQL database is at schema version \(found), newer than this build's \(current); upgrade swift-track")
            }
            do {
                for v in found..<current {
                    for statement in versions[v] { try connection.execute(PostgresQuery(unsafeSQL: statement)) }
                    try dataSteps[v + 1]?(connection)
                    try connection.execute("INSERT INTO track_schema (version) VALUES (\(v + 1)) ON CONFLICT (version) DO NOTHING")
                }
                return found
            } catch let error as SQLFailure where ["23505", "42P07", "42710", "40001"].contains(error.sqlState ?? "") && attempt < 10 {
                usleep(UInt32.random(in: 1_000...20_000))
            } catch let error as SQLFailure {
                throw TrackError(.io, "cannot create the schema in the SQL database \(connection.place): \(error.message)")
            } catch {
                throw TrackError(.io, "cannot migrate the SQL database \(connection.place): \(error)")
            }
        }
    }
}

/// One event of the SQL store's log.
public struct SQLEvent: Sendable, Equatable {
    /// The writer's stream (one per writing process) and the event's number in it.
    public var stream: String
    public var seq: Int64
    /// The last sequence number the event covers (a batch of metric points covers several).
    public var lastSeq: Int64
    /// What happened (an operation name) and its arguments as JSON text.
    public var kind: String
    public var body: String

    /// An event covering `seq...lastSeq` (just `seq` by default).
    public init(stream: String, seq: Int64, lastSeq: Int64? = nil, kind: String, body: String) {
        self.stream = stream
        self.seq = seq
        self.lastSeq = lastSeq ?? seq
        self.kind = kind
        self.body = body
    }
}

extension SQLConnection {
    /// Inserts `events` in one statement, skipping those whose (stream, seq) is stored; returns
    /// how many were new.
    func insertEvents(_ events: [SQLEvent]) throws(SQLFailure) -> Int {
        if events.isEmpty { return 0 }
        var binds = PostgresBindings(capacity: 5)
        binds.append(events.map(\.stream))
        binds.append(events.map(\.seq))
        binds.append(events.map(\.lastSeq))
        binds.append(events.map(\.kind))
        binds.append(events.map(\.body))
        let sql = """
            INSERT INTO track_events (stream, seq, last_seq, kind, body)
            SELECT s, q, l, k, b FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[]) AS e(s, q, l, k, b)
            ON CONFLICT (stream, seq) DO NOTHING RETURNING seq
            """
        return try execute(PostgresQuery(unsafeSQL: sql, binds: binds)).count
    }

    /// Appends `events`; an event whose (stream, seq) is already stored is skipped, so a batch
    /// retried after a lost reply is written once. Returns how many were new.
    @discardableResult
    public func append(_ events: [SQLEvent]) throws -> Int {
        do {
            return try insertEvents(events)
        } catch {
            throw TrackError(.io, "SQL failed on \(place): \(error.message)")
        }
    }

    /// The events of `stream` from `seq` on, in order.
    public func events(stream: String, from seq: Int64 = 0) throws -> [SQLEvent] {
        try run("SELECT stream, seq, last_seq, kind, body::TEXT FROM track_events WHERE stream = \(stream) AND seq >= \(seq) ORDER BY seq").map { row in
            let (stream, seq, last, kind, body) = try row.decode((String, Int64, Int64, String, String).self)
            return SQLEvent(stream: stream, seq: seq, lastSeq: last, kind: kind, body: body)
        }
    }

    /// Whether the event (`stream`, `seq`) is stored: whether the change it records committed.
    func eventStored(stream: String, seq: Int64) throws(SQLFailure) -> Bool {
        try !execute("SELECT 1 FROM track_events WHERE stream = \(stream) AND seq = \(seq)").isEmpty
    }

    /// The last sequence number of `stream` stored (-1 when none): where shipping it resumes.
    public func lastSequence(stream: String) throws -> Int64 {
        try run("SELECT coalesce(max(last_seq), -1)::BIGINT FROM track_events WHERE stream = \(stream)").first?.decode(Int64.self) ?? -1
    }
}
