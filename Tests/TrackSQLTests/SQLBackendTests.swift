import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackConformance
import TrackModel
@testable import TrackSQL

@Suite("cockroach:// against a real PostgreSQL server")
struct SQLBackendTests {
    @Test("passes the conformance suite", arguments: Conformance.cases)
    func conformance(_ check: ConformanceCase) throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        try check.run { strict in try makeBackend(uri: try server.freshDatabase(options: strict ? "" : "&strict=false")) }
    }

    @Test("postgres:// and postgresql:// name the same backend; a bad option is a clear error")
    func schemes() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase()
        let a = try makeBackend(uri: uri)
        _ = try a.newProject(Project(name: "shared"))
        try a.close()
        for scheme in ["postgres", "postgresql"] {
            let b = try makeBackend(uri: uri.replacingOccurrences(of: "cockroach://", with: "\(scheme)://"))
            #expect(try b.getProject("shared")?.name == "shared")
            try b.close()
        }
        #expect { try makeBackend(uri: uri + "&batch_points=lots") } throws: { ($0 as? TrackError)?.message.contains("batch_points=lots") == true }
        #expect { try makeBackend(uri: uri.replacingOccurrences(of: "127.0.0.1:\(server.port)", with: "127.0.0.1:\(LocalPostgresServer.freePort())")) } throws: {
            ($0 as? TrackError)?.code == .io && ($0 as? TrackError)?.message.contains("cannot connect") == true
        }
    }

    @Test("a COMMIT whose reply is lost leaves no doubt: the call succeeds and its change is applied once")
    func lostCommitReply() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let backend = try #require(try makeBackend(uri: try server.freshDatabase(options: "&flush_ms=0")) as? SQLBackend)
        _ = try backend.newProject(Project(name: "p"))
        // Auto-increment makes a change applied twice visible: it would create two revisions.
        backend.connection.injectedCommitFault = .replyLostAfter  // committed, reply lost
        let first = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: true))
        backend.connection.injectedCommitFault = .connectionLostBefore  // never committed
        let second = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: true))
        #expect(first.revision == 0 && second.revision == 1)
        #expect(try backend.fetchTrials(Query(trackJSON: ["project_id": "p"])).map(\.revision).sorted() == [0, 1])
        backend.connection.injectedCommitFault = .replyLostAfter
        try backend.addTrialTags(first.uid, ["k": "v"])
        backend.connection.injectedCommitFault = .connectionLostBefore
        try backend.setTrialStatus(first.uid, .completed, error: nil)
        let read = try #require(try backend.getTrial(uid: first.uid))
        #expect(read.tags["k"] == "v" && read.status == .completed)
        #expect(try backend.connection.events(stream: backend.stream).map(\.seq) == [0, 1, 2, 3, 4])
        try backend.close()
    }

    @Test("a project's and a group's rows do not grow with their trials; their lists keep the order trials were added")
    func memberLists() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase()
        let backend = try makeBackend(uri: uri)
        let memory = MemoryBackend()
        let observer = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
        defer { try? observer.close() }
        func rowBytes() throws -> [Int64] {
            try observer.run("SELECT length(body)::BIGINT FROM track_projects UNION ALL SELECT length(body)::BIGINT FROM track_groups").map { try $0.decode(Int64.self) }
        }
        var sizes: [[Int64]] = []
        for (n, b) in ([backend, memory] as [any TrackProtocol]).enumerated() {
            _ = try b.newProject(Project(name: "p"))
            let g = try b.newTrialGroup(TrialGroup(name: "g", projectID: "p"))
            for i in 0..<60 {
                let t = try #require(try b.newTrial(Trial(name: "t\(i % 20)", projectID: "p", groupID: i % 2 == 0 ? g.uid : nil), autoIncrement: true))
                if i % 2 == 1 && i % 3 == 0 { try b.addGroupTrial(group: g.uid, trial: t.uid) }
                if n == 0 && (i == 0 || i == 59) { sizes.append(try rowBytes()) }
            }
            try b.addProjectTrial(project: "p", trial: try #require(try b.fetchTrials(.all).first).uid)  // already there
        }
        #expect(sizes.count == 2 && sizes[0] == sizes[1])
        let (sqlProjects, memoryProjects) = (try backend.fetchProjects(.all), try memory.fetchProjects(.all))
        #expect(sqlProjects.map(\.trials) == memoryProjects.map(\.trials) && sqlProjects.map(\.updateCount) == memoryProjects.map(\.updateCount))
        #expect(sqlProjects.first?.trials.count == 60)
        let (sqlGroups, memoryGroups) = (try backend.fetchGroups(.all), try memory.fetchGroups(.all))
        #expect(sqlGroups.map(\.trials) == memoryGroups.map(\.trials) && sqlGroups.map(\.updateCount) == memoryGroups.map(\.updateCount))
        #expect(try backend.getProject("p") == memoryProjects.first)
        try backend.close()
    }

    @Test("a NUL character in a name is a clear error; the backend goes on")
    func nulInNames() throws {
        registerSQLBackend()
        let backend = try makeBackend(uri: try sharedPostgres.get().freshDatabase())
        #expect { try backend.newProject(Project(name: "a\u{0}b")) } throws: {
            ($0 as? TrackError)?.code == .invalidArgument && ($0 as? TrackError)?.message.contains("NUL character") == true
        }
        #expect(try backend.newProject(Project(name: "ab")).name == "ab")
        try backend.close()
    }

    @Test("metric points are written in batches: by size, on commit, before reads; revision tags count calls")
    func batching() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase(options: "&batch_points=1000&flush_ms=0")
        let backend = try #require(try makeBackend(uri: uri) as? SQLBackend)
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        let observer = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
        defer { try? observer.close() }
        func stored() throws -> Int64 { try observer.run("SELECT count(*)::BIGINT FROM track_points").first!.decode(Int64.self) }
        for step in 0..<999 { try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(step)) }
        #expect(try stored() == 0)  // gathered, not yet written
        try backend.logTrialMetric(trial.uid, name: "loss", step: 999, value: 999)
        try backend.logTrialMetric(trial.uid, name: "loss", step: 1000, value: 1000)  // the full batch is written first
        #expect(try stored() == 1000)
        try backend.logTrialMetrics(trial.uid, step: nil, ["acc": .double(0.5), "note": "text", "list": [1, 2]])
        try backend.commit()
        #expect(try stored() == 1004)
        // One event per batch, covering its sequence numbers.
        let batches = try observer.run("SELECT count(*)::BIGINT FROM track_events WHERE kind = 'metric_points'").first!.decode(Int64.self)
        #expect(batches == 2)
        try backend.logTrialMetric(trial.uid, name: "loss", step: 1001, value: 1001)
        let read = try #require(try backend.getTrial(uid: trial.uid))  // a read writes what is gathered first
        #expect(read.metrics["loss"]?.count == 1002)
        #expect(read.metrics["note"]?.points.first?.value == "text")
        #expect(read.metrics["list"]?.points.first?.value == [1, 2])
        #expect(read.updateCount == 1003)  // one per logging call
        // Same answer as the in-memory backend for the same calls.
        let memory = MemoryBackend()
        _ = try memory.newProject(Project(name: "p"))
        _ = try memory.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false)
        for step in 0...1000 { try memory.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: Double(step)) }
        try memory.logTrialMetrics(trial.uid, step: nil, ["acc": .double(0.5), "note": "text", "list": [1, 2]])
        try memory.logTrialMetric(trial.uid, name: "loss", step: 1001, value: 1001)
        var expected = try #require(try memory.getTrial(uid: trial.uid))
        expected.lastChange = read.lastChange
        #expect(read == expected)
        try backend.close()
    }

    @Test("gathered points are written within the flush interval without a commit")
    func interval() throws {
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase(options: "&flush_ms=50")
        let backend = try SQLBackend(uri: TrackURI(uri))
        _ = try backend.newProject(Project(name: "p"))
        let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        for step in 0..<10 { try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(step), value: 1) }
        let observer = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
        defer { try? observer.close() }
        var stored: Int64 = 0
        for _ in 0..<100 where stored < 10 {
            Thread.sleep(forTimeInterval: 0.05)
            stored = try observer.run("SELECT count(*)::BIGINT FROM track_points").first!.decode(Int64.self)
        }
        #expect(stored == 10)
        try backend.close()
        #expect { try backend.logTrialMetric(trial.uid, name: "loss", step: 11, value: 1) } throws: { ($0 as? TrackError)?.message.contains("closed") == true }
    }

    @Test("a damaged row is a clear error naming it; the other objects stay readable")
    func damagedRow() throws {
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase()
        let backend = try SQLBackend(uri: TrackURI(uri))
        _ = try backend.newProject(Project(name: "p"))
        let good = try #require(try backend.newTrial(Trial(name: "good", projectID: "p"), autoIncrement: false))
        let bad = try #require(try backend.newTrial(Trial(name: "bad", projectID: "p"), autoIncrement: false))
        let observer = try SQLConnection(SQLLocation(uri: TrackURI(uri)))
        try observer.run("UPDATE track_trials SET body = '{\"dtype\": \"trial\", \"revision\": [' WHERE uid = \(bad.uid)")
        try observer.close()
        #expect { try backend.getTrial(uid: bad.uid) } throws: {
            let message = ($0 as? TrackError)?.message ?? ""
            return message.contains(bad.uid) && message.contains("track_trials") && message.contains("malformed")
        }
        #expect(try backend.getTrial(uid: good.uid)?.name == "good")
        #expect(try backend.getProject("p")?.trials.count == 2)
        try backend.close()
    }

    @Test("queries push equality and comparisons into SQL and answer as the in-memory backend")
    func queries() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let sql = try makeBackend(uri: try server.freshDatabase(options: "&strict=false"))
        let memory = MemoryBackend(strict: false)
        var random = SystemRandomNumberGenerator()
        let statuses: [Status] = [.running, .completed, .interrupted, .createdGroup, .named("Custom", value: 7)]
        for backend in [sql, memory] as [any TrackProtocol] {
            _ = try backend.newProject(Project(name: "p1", metadata: ["team": "a"]))
            _ = try backend.newProject(Project(name: "p2", metadata: ["team": "b"]))
            _ = try backend.newTrialGroup(TrialGroup(name: "g1", projectID: "p1", metadata: ["kind": "sweep"]))
        }
        var trials: [Trial] = []
        for i in 0..<60 {
            let lr: Value = i % 7 == 0 ? "auto" : .double(Double(i % 5) / 10)
            trials.append(try Trial(name: i % 4 == 0 ? nil : "run\(i % 9)", version: i % 3 == 0 ? .string("v\(i % 2)") : .int(Int64(i % 2)),
                                    parameters: ["lr": lr, "layers": .int(Int64(i % 4))],
                                    tags: i % 2 == 0 ? ["split": "train"] : [:], projectID: i % 5 == 0 ? nil : "p\(1 + i % 2)",
                                    groupID: i % 3 == 0 ? "g1" : nil))
        }
        for (i, t) in trials.enumerated() {
            for backend in [sql, memory] as [any TrackProtocol] {
                guard let stored = try backend.newTrial(t, autoIncrement: i % 11 == 0) else { continue }
                try backend.setTrialStatus(stored.uid, statuses[i % statuses.count])
                if i % 3 != 1 { try backend.logTrialMetadata(stored.uid, ["seed": .int(Int64(i)), "owner": i % 2 == 0 ? "ann" : "bob", "mixed": i % 4 == 0 ? "x" : .int(Int64(i))]) }
                try backend.logTrialMetric(stored.uid, name: "loss", step: 1, value: Double(i))
                // Values JSON cannot hold (track writes NaN and Infinity) must not break queries.
                if i % 6 == 0 { try backend.logTrialMetadata(stored.uid, ["score": .double(i % 12 == 0 ? .nan : -.infinity), "peak": .double(.infinity)]) }
                if i % 6 == 3 { try backend.logTrialMetadata(stored.uid, ["score": .int(Int64(i)), "flag": .bool(i % 2 == 0), "peak": .double(Double(i) / 2)]) }
                if i % 10 == 1 { try backend.logTrialMetadata(stored.uid, ["note": .string("a\u{0}b"), "k\u{0}": 1]) }
            }
        }
        _ = random.next()
        let queries: [String] = [
            #"{}"#, #"{"name": "run1"}"#, #"{"name": null}"#, #"{"name": {"$ne": "run2"}}"#, #"{"name": {"$in": ["run1", "run3", null]}}"#,
            #"{"name": {"$in": ["run1", "run3"]}}"#, #"{"name": {"$gt": "run4"}}"#, #"{"name": {"$lte": "run4"}}"#, #"{"name": {"$exists": false}}"#,
            #"{"project_id": "p1"}"#, #"{"project_id": {"$ne": "p1"}}"#, #"{"group_id": "g1", "project_id": "p2"}"#,
            #"{"revision": {"$gte": 1}}"#, #"{"revision": 0}"#, #"{"revision": 0.0}"#, #"{"revision": true}"#, #"{"revision": {"$in": [1, 2]}}"#,
            #"{"status": "Running"}"#, #"{"status": 101}"#, #"{"status.name": "Completed"}"#, #"{"status": {"$ne": "Running"}}"#,
            #"{"status": {"$in": ["Running", "Custom"]}}"#, #"{"status.value": {"$gt": 100}}"#,
            #"{"metadata.owner": "ann"}"#, #"{"metadata.mixed": "x"}"#, #"{"metadata.seed": {"$lt": 20}}"#, #"{"metadata.seed": 4.0}"#,
            #"{"parameters.lr": "auto"}"#, #"{"parameters.lr": 0.2}"#, #"{"parameters.layers": {"$gte": 2}}"#, #"{"tags.split": "train"}"#,
            #"{"version": "v1"}"#, #"{"version": 1}"#, #"{"metrics.loss": {"$exists": true}}"#, #"{"uid": {"$lt": "8"}}"#,
            #"[["name", {"$ne": null}], ["metadata.owner", {"$in": ["bob"]}]]"#, #"{"hash": {"$exists": true}}"#,
            #"{"metadata.score": {"$exists": true}}"#, #"{"metadata.score": {"$exists": false}}"#, #"{"metadata.score": {"$gt": 10}}"#,
            #"{"metadata.score": {"$lte": 21}}"#, #"{"metadata.peak": {"$gte": 10}}"#, #"{"metadata.peak": {"$lt": 1e300}}"#,
            #"{"metadata.score": 15}"#, #"{"metadata.score": 15.0}"#, #"{"metadata.flag": 1}"#, #"{"metadata.flag": true}"#,
            #"{"metadata.owner": {"$gt": "ann"}}"#, #"{"metadata.owner": {"$lte": "ann"}}"#, #"{"metadata.owner": {"$lt": 5}}"#,
            #"{"parameters.lr": {"$lt": 0.25}}"#, #"{"parameters.lr": {"$gte": "a"}}"#, #"{"tags.split": {"$exists": false}}"#,
            #"{"metadata.note": "a\u0000b"}"#, #"{"metadata.note": {"$gt": "a"}}"#, #"{"metadata.k\u0000": 1}"#,
        ]
        for text in queries {
            let query = try Query(json: text)
            let got = try sql.fetchTrials(query).map(\.uid)
            let want = try memory.fetchTrials(query).map(\.uid)
            #expect(got == want, "trials \(text)")
        }
        for text in [#"{"name": "g1"}"#, #"{"project_id": "p1"}"#, #"{"metadata.kind": "sweep"}"#, #"{"uid": {"$ne": "x"}}"#] {
            let query = try Query(json: text)
            #expect(try sql.fetchGroups(query).map(\.uid) == memory.fetchGroups(query).map(\.uid), "groups \(text)")
        }
        for text in [#"{"name": "p1"}"#, #"{"uid": {"$gt": "p1"}}"#, #"{"metadata.team": "b"}"#, #"{"name": {"$in": ["p2"]}}"#] {
            let query = try Query(json: text)
            #expect(try sql.fetchProjects(query).map(\.uid) == memory.fetchProjects(query).map(\.uid), "projects \(text)")
        }
        // The conditions that map onto columns do reach SQL.
        let pushed = SQLPushdown(try Query(json: #"{"name": "a", "revision": {"$lt": 3}, "status": "Running", "metadata.x": "y", "metrics.loss": 1}"#),
                                 columns: SQLPushdown.trialColumns)
        #expect(pushed.clauses.count == 4)
        #expect(pushed.condition.contains("name = $1") && pushed.condition.contains("revision::FLOAT8 < $2"))
        // Inside metadata, parameters and tags: numbers and strings compared, existence.
        let inside = SQLPushdown(try Query(json: #"{"metadata.lr": {"$lte": 0.01}, "parameters.opt": {"$gt": "a"}, "tags.x": {"$exists": true}, "metadata.n": 3}"#),
                                 columns: SQLPushdown.trialColumns)
        #expect(inside.clauses.count == 4)
        #expect(SQLPushdown(try Query(json: #"{"metadata.lr": {"$ne": 1}, "metadata.k": {"$in": [1]}}"#), columns: SQLPushdown.trialColumns).clauses.isEmpty)
        // Code point order: PostgreSQL is told COLLATE "C"; CockroachDB compares bytes already.
        let order = try Query(json: #"{"name": {"$gt": "a"}}"#)
        #expect(SQLPushdown(order, columns: SQLPushdown.trialColumns).condition == #"name COLLATE "C" > $1"#)
        #expect(SQLPushdown(order, columns: SQLPushdown.trialColumns, cockroach: true).condition == "name > $1")
        try sql.close()
    }

    @Test("many writers at once: creations and revision tags stay exact")
    func concurrentWriters() throws {
        registerSQLBackend()
        let server = try sharedPostgres.get()
        let uri = try server.freshDatabase()
        let setup = try makeBackend(uri: uri)
        _ = try setup.newProject(Project(name: "p"))
        let trial = try #require(try setup.newTrial(Trial(name: "shared", projectID: "p"), autoIncrement: false))
        let writers = 4
        let perWriter = 25
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            do {
                let b = try makeBackend(uri: uri)
                for i in 0..<perWriter {
                    try b.logTrialMetadata(trial.uid, ["w\(w)": .int(Int64(i))])
                    _ = try b.newTrial(Trial(name: "shared", projectID: "p"), autoIncrement: true)
                    try b.logTrialMetric(trial.uid, name: "loss", step: nil, value: Double(i))
                }
                try b.close()
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let t = try #require(try setup.getTrial(uid: trial.uid))
        #expect(t.updateCount == writers * perWriter * 2)
        #expect(t.metrics["loss"]?.count == writers * perWriter)
        let revisions = try setup.getTrial(hash: trial.hash).map(\.revision)
        #expect(revisions == Array(0...(writers * perWriter)))
        #expect(try setup.getProject("p")?.trials.count == writers * perWriter + 1)
        try setup.close()
    }
}

import Synchronization
