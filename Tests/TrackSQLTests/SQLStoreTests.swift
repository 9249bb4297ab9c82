import Foundation
import Synchronization
import Testing
import TrackTestSupport
import TrackBackends
import TrackLog
import TrackStore
import TrackModel
@testable import TrackSQL

@Suite("the SQL store against a real PostgreSQL server", .serialized)
struct SQLStoreTests {
    /// A fresh database on the shared server.
    func freshDatabase() throws -> (LocalPostgresServer, SQLConnection) {
        let server = try sharedPostgres.get()
        let admin = try SQLConnection(SQLLocation(uri: TrackURI(server.uri())))
        let name = "t_\(UUID().uuidString.prefix(8).lowercased())"
        try admin.run(PostgresQueryText.create(name))
        let connection = try SQLConnection(SQLLocation(uri: TrackURI("cockroach://postgres@127.0.0.1:\(server.port)/\(name)?sslmode=disable")))
        return (server, connection)
    }

    @Test("the schema is created on first use, versioned, and migrating again changes nothing")
    func schema() throws {
        let (_, c) = try freshDatabase()
        #expect(try SQLSchema.version(c) == 0)
        #expect(try SQLSchema.migrate(c) == 0)
        #expect(try SQLSchema.version(c) == SQLSchema.current)
        #expect(try SQLSchema.migrate(c) == SQLSchema.current)
        #expect(try c.run("SELECT count(*)::BIGINT FROM track_schema").first?.decode(Int64.self) == Int64(SQLSchema.current))
        // A database from a newer build is refused, not misread.
        try c.run("INSERT INTO track_schema (version) VALUES (99)")
        #expect { try SQLSchema.migrate(c) } throws: { ($0 as? TrackError)?.message.contains("schema version 99") == true }
    }

    @Test("a retried batch of events is stored once")
    func idempotentEvents() throws {
        let (_, c) = try freshDatabase()
        try SQLSchema.migrate(c)
        let batch = (0..<500).map { SQLEvent(stream: "w1", seq: Int64($0), kind: "metric", body: #"{"loss": \#(Double($0) / 7), "s": "é\"x"}"#) }
        #expect(try c.append(batch) == 500)
        #expect(try c.append(Array(batch[250...]) + [SQLEvent(stream: "w1", seq: 500, kind: "metric", body: "{}")]) == 1)
        let back = try c.events(stream: "w1")
        #expect(back.count == 501)
        #expect(back.map(\.seq) == (0...500).map(Int64.init))
        #expect(try JSON.decode(back[7].body)["s"]?.stringValue == "é\"x")
        // 25,000 events take three statements (the bind limit).
        let big = (0..<25_000).map { SQLEvent(stream: "w2", seq: Int64($0), kind: "metric", body: "{}") }
        #expect(try c.append(big) == 25_000)
    }

    @Test("a metric batch applied again (a retry after a lost reply) is refused whole and stored once")
    func batchRetry() throws {
        let (_, c) = try freshDatabase()
        try SQLSchema.migrate(c)
        let store = SQLStore(connection: c)
        var batch = PointBatch()
        for step in 0..<100 { batch.add(trial: "t_0", name: "loss", step: Int64(step), double: Double(step), json: nil) }
        batch.add(trial: "t_0", step: nil, ["note": "x"], at: 1)
        let event = SQLEvent(stream: "w", seq: 7, lastSeq: 9, kind: "metric_points", body: #"{"points": 101}"#)
        func apply() throws {
            try c.transaction {
                try store.gate([event])
                try c.insertPoints(batch)
            }
        }
        try apply()
        #expect(throws: AlreadyApplied.self) { try apply() }
        #expect(try c.run("SELECT count(*)::BIGINT FROM track_points").first?.decode(Int64.self) == 101)
        #expect(try c.lastSequence(stream: "w") == 9)
        #expect(try c.lastSequence(stream: "other") == -1)
    }

    @Test("processes migrating a new database at the same time all succeed")
    func concurrentMigration() throws {
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase()
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let c = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
                try SQLSchema.migrate(c)
                try c.close()
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let c = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
        #expect(try SQLSchema.version(c) == SQLSchema.current)
        try c.close()
    }

    @Test("a connection the client gives up on while it is still open is closed, not freed open, and the next statement reconnects")
    func droppedWhileOpen() throws {
        let (_, c) = try freshDatabase()
        for _ in 0..<5 {
            // More binds than the protocol allows: PostgresNIO refuses it on the client side, with
            // the connection still open; SQLConnection drops that connection (PostgresNIO stops a
            // debug build if one is freed before its channel has closed: a CI run crashed so).
            var binds = PostgresBindings()
            for i in 0..<70_000 { binds.append(Int64(i)) }
            let query = PostgresQuery(unsafeSQL: "SELECT " + (1...70_000).map { "$\($0)" }.joined(separator: ","), binds: binds)
            #expect { try c.run(query) } throws: { ($0 as? TrackError)?.message.contains("more than 65,535 parameters") == true }
            #expect(try c.run("SELECT 41 + 1").first?.decode(Int.self) == 42)
        }
        try c.close()
        #expect { try c.run("SELECT 1") } throws: { ($0 as? TrackError)?.message.contains("closed") == true }
    }

    @Test("a transaction whose connection is lost midway is never continued on a new one; a lost COMMIT is reported as unknown")
    func lostInTransaction() throws {
        let (_, c) = try freshDatabase()
        try SQLSchema.migrate(c)
        func stored(_ stream: String) throws -> Int { try c.events(stream: stream).count }
        // Lost between two statements: the second must not reconnect and commit on its own.
        #expect(throws: SQLFailure.self) {
            try c.transaction {
                _ = try c.insertEvents([SQLEvent(stream: "mid", seq: 0, kind: "x", body: "{}")])
                c.simulateConnectionLoss()
                _ = try c.insertEvents([SQLEvent(stream: "mid", seq: 1, kind: "x", body: "{}")])
            }
        }
        #expect(try stored("mid") == 0)
        // Lost just before COMMIT: not applied; lost just after: applied. Both say "unknown".
        for (fault, expected) in [(SQLConnection.CommitFault.connectionLostBefore, 0), (.replyLostAfter, 1)] {
            c.injectedCommitFault = fault
            #expect {
                try c.transaction { _ = try c.insertEvents([SQLEvent(stream: "\(fault)", seq: 0, kind: "x", body: "{}")]) }
            } throws: { ($0 as? SQLFailure)?.outcomeUnknown == true && ($0 as? SQLFailure)?.message.contains("may or may not") == true }
            #expect(try stored("\(fault)") == expected)
        }
        try c.close()
    }

    @Test("a version 1 database migrates: trial lists move out of project and group bodies and read the same")
    func migrateFromVersion1() throws {
        let (_, c) = try freshDatabase()
        for statement in SQLSchema.versions[0] { try c.run(PostgresQuery(unsafeSQL: statement)) }
        try c.run("INSERT INTO track_schema (version) VALUES (1)")
        // Rows as version 1 wrote them: the lists inside the bodies (and a NaN, which JSONB refuses).
        let project = Project(name: "p", metadata: ["x": .double(.nan)], groups: ["g1"], trials: ["a_0", "b_0", "c_0"], updateCount: 4)
        let group = TrialGroup(name: "g", projectID: "p", trials: ["b_0", "a_0"], uid: "g1", updateCount: 2)
        try c.run("INSERT INTO track_projects (uid, update_count, attrs, body) VALUES (\(project.uid), 4, '{}'::JSONB, \(JSON.encode(project.trackJSON())))")
        try c.run("INSERT INTO track_groups (uid, name, project_id, update_count, attrs, body) VALUES ('g1', 'g', 'p', 2, '{}'::JSONB, \(JSON.encode(group.trackJSON)))")
        #expect(try SQLSchema.migrate(c) == 1)
        #expect(try SQLSchema.version(c) == SQLSchema.current)
        let migrated = try #require(try c.loadProjects(where: "true").first)
        #expect(migrated.trials == ["a_0", "b_0", "c_0"] && migrated.groups == ["g1"] && migrated.updateCount == 4)
        #expect(migrated.metadata["x"]?.doubleValue?.isNaN == true)
        #expect(try c.loadGroups(where: "true").first?.trials == ["b_0", "a_0"])
        #expect(try c.run("SELECT body FROM track_projects").first?.decode(String.self).contains("a_0") == false)
        // A change that adds a trial reads only the members it needs.
        #expect(try c.loadProjects(where: "true", members: .only(["c_0", "zz_0"])).first?.trials == ["c_0"])
        #expect(try SQLSchema.migrate(c) == SQLSchema.current)  // again: nothing to do
        #expect(try c.loadProjects(where: "true").first?.trials == ["a_0", "b_0", "c_0"])
        try c.close()
    }

    @Test("an imported project, group or trial shipped over an existing one replaces it whole: members and points too")
    func importedReplaces() throws {
        let (_, c) = try freshDatabase()
        try SQLSchema.migrate(c)
        let store = SQLStore(connection: c)
        var trial = Trial(hash: "h", revision: 0)
        var series = MetricSeries()
        series.record(step: 1, value: .double(0.5))
        series.record(step: 2, value: .string("two"))
        trial.metrics["loss"] = series
        for (trials, steps) in [(["a_0", "b_0", "c_0"], [1, 2]), (["c_0"], [1])] {
            trial.metrics["loss"] = MetricSeries(points: series.points.filter { steps.contains(Int($0.step?.intValue ?? 0)) })
            try c.transaction {
                var points = PointBatch()
                for record in [LogRecord.projectImported(Project(name: "p", trials: trials)),
                               .groupImported(TrialGroup(name: "g", projectID: "p", trials: trials, uid: "g1")), .trialImported(trial)] {
                    try store.apply(record, at: 0, points: &points) { Issue.record("skipped \($0)") }
                }
            }
        }
        #expect(try c.loadProjects(where: "true").map(\.trials) == [["c_0"]])
        #expect(try c.loadGroups(where: "true").map(\.trials) == [["c_0"]])
        #expect(try c.withMetrics(c.loadTrials(where: "true").map(\.trial)).first?.metrics["loss"]?.points == [MetricPoint(step: 1, value: .double(0.5))])
        try c.close()
    }

    @Test("URIs: defaults, errors naming the wrong part, and a refused connection")
    func locations() throws {
        let l = try SQLLocation(uri: TrackURI("cockroach://alice:pw@db.example:26000/runs?sslmode=require"))
        #expect(l.host == "db.example" && l.port == 26000 && l.user == "alice" && l.password == "pw" && l.database == "runs" && l.sslMode == .require)
        let d = try SQLLocation(uri: TrackURI("postgres://h"))
        #expect(d.port == 5432 && d.user == "postgres" && d.sslMode == .disable)
        #expect { try SQLLocation(uri: TrackURI("cockroach://h/db?sslmode=maybe")) } throws: { ($0 as? TrackError)?.message.contains("sslmode=maybe") == true }
        #expect { try SQLLocation(uri: TrackURI("cockroach:///db")) } throws: { ($0 as? TrackError)?.message.contains("needs a host") == true }
        let closedPort = LocalPostgresServer.freePort()
        #expect { try SQLConnection(SQLLocation(uri: TrackURI("postgres://postgres@127.0.0.1:\(closedPort)/x"))) } throws: {
            ($0 as? TrackError)?.code == .io && ($0 as? TrackError)?.message.contains("127.0.0.1:\(closedPort)") == true
        }
    }
}

import PostgresNIO

/// Statements the tests build from names they made themselves.
enum PostgresQueryText {
    static func create(_ database: String) -> PostgresQuery { PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)") }
}
