import Benchmark
import Foundation
import PostgresNIO
import TrackBackends
import TrackModel
import TrackSQL
import TrackTestSupport

// The target of issue 8: metric points per second logged into PostgreSQL through cockroach://
// with batching (>= 100,000), next to one statement per point. The server is a local
// PostgreSQL started for the run with its default durability (fsync on), on 127.0.0.1.

/// A PostgreSQL server for the SQL benchmarks, started by the first one to need it.
nonisolated(unsafe) var benchmarkPostgres: LocalPostgresServer?

func postgresForBenchmarks() throws -> LocalPostgresServer {
    if let server = benchmarkPostgres { return server }
    let server = try LocalPostgresServer(fsync: true)
    benchmarkPostgres = server
    atexit { benchmarkPostgres?.stop() }
    return server
}

/// A fresh database with a project and a trial, and a backend on it.
final class SQLRun {
    let backend: any TrackProtocol
    let uri: String
    let trial: String

    init(options: String = "") throws {
        registerSQLBackend()
        uri = try postgresForBenchmarks().freshDatabase(options: options)
        backend = try makeBackend(uri: uri)
        _ = try backend.newProject(Project(name: "bench"))
        trial = try backend.newTrial(try Trial(name: "run", projectID: "bench"), autoIncrement: true)!.uid
    }

    func close() { try? backend.close() }
}

func sqlBenchmarks() {
    var batched: SQLRun?
    var step: Int64 = 0
    Benchmark("cockroach:// batched points into PostgreSQL, 200 k per run (target >= 100 k points/s)",
              configuration: .init(metrics: [.wallClock, pointsPerSecond], scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 7,
                                   setup: { batched = try SQLRun() },
                                   teardown: { batched?.close(); batched = nil })) { benchmark in
        let run = batched!
        var curve = LossCurve()
        let count = 200_000
        try measureRate(benchmark, pointsPerSecond, count: count) {
            for _ in 0..<count {
                try run.backend.logTrialMetric(run.trial, name: "loss", step: step, value: curve.value(Int(step)))
                step += 1
            }
            try run.backend.commit()  // every point committed before the clock stops
        }
    }

    var unbatched: SQLRun?
    Benchmark("cockroach:// with batch_points=1: a transaction per point, 2 k per run",
              configuration: .init(metrics: [.wallClock, pointsPerSecond], scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 5,
                                   setup: { unbatched = try SQLRun(options: "&batch_points=1") },
                                   teardown: { unbatched?.close(); unbatched = nil })) { benchmark in
        let run = unbatched!
        let count = 2_000
        try measureRate(benchmark, pointsPerSecond, count: count) {
            for _ in 0..<count {
                try run.backend.logTrialMetric(run.trial, name: "loss", step: step, value: 0.5)
                step += 1
            }
            try run.backend.commit()
        }
    }

    // Creating trials in a project that already holds many: each creation adds one member row
    // (schema version 2); with the list inside the project's body it rewrote the whole list.
    var sweep: SQLRun?
    var made = 0
    Benchmark("cockroach:// new trials in a project already holding 3 k, 300 per run",
              configuration: .init(metrics: [.wallClock, trialsPerSecond], scalingFactor: .one, maxDuration: .seconds(15), maxIterations: 5,
                                   setup: {
                                       let run = try SQLRun()
                                       for i in 0..<3_000 { _ = try run.backend.newTrial(Trial(name: "pre\(i)", projectID: "bench"), autoIncrement: false) }
                                       sweep = run
                                   },
                                   teardown: { sweep?.close(); sweep = nil })) { benchmark in
        let run = sweep!
        let count = 300
        try measureRate(benchmark, trialsPerSecond, count: count) {
            for _ in 0..<count {
                _ = try run.backend.newTrial(Trial(name: "t\(made)", projectID: "bench"), autoIncrement: false)
                made += 1
            }
        }
    }

    // The naive store: one autocommitted INSERT per point into the same points table.
    var naive: (run: SQLRun, connection: SQLConnection)?
    Benchmark("PostgreSQL, one INSERT statement per point (autocommit), 2 k per run",
              configuration: .init(metrics: [.wallClock, pointsPerSecond], scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 5,
                                   setup: {
                                       let run = try SQLRun()
                                       naive = (run, try SQLConnection(SQLLocation(uri: TrackURI(run.uri))))
                                   },
                                   teardown: { try? naive?.connection.close(); naive?.run.close(); naive = nil })) { benchmark in
        let (run, connection) = naive!
        let count = 2_000
        try measureRate(benchmark, pointsPerSecond, count: count) {
            for _ in 0..<count {
                try connection.run("INSERT INTO track_points (trial, name, step, value) VALUES (\(run.trial), 'loss', \(step), \(0.5))")
                step += 1
            }
        }
    }
}
