import Testing
import TrackBackends
import TrackModel

@Suite("Backend registry")
struct RegistryTests {
    @Test("an unknown scheme is an error listing the known ones")
    func unknownScheme() {
        do {
            _ = try makeBackend(uri: "mongodb://localhost:27017/db")
            Issue.record("expected an error")
        } catch let error as TrackError {
            #expect(error.code == .unknownScheme)
            #expect(error.message.contains("mongodb"))
            #expect(error.message.contains("ephemeral://"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        // A scheme another module provides says how to register it.
        #expect { try BackendRegistry().makeBackend(uri: "cockroach://h/db") } throws: {
            ($0 as? TrackError)?.message.contains("import TrackSQL and call registerSQLBackend()") == true
        }
        #expect { try BackendRegistry().makeBackend(uri: "socket://u:p@h:1") } throws: {
            ($0 as? TrackError)?.message.contains("import TrackServer and call registerSocketBackend()") == true
        }
    }

    @Test("a malformed URI is an error quoting it", arguments: ["", "://nothing", "socket://host:notaport", "ephemeral://?strict", "socket://h:99999"])
    func malformedURI(_ text: String) {
        do {
            _ = try makeBackend(uri: text)
            Issue.record("expected an error for '\(text)'")
        } catch let error as TrackError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("'\(text)'"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a bad strict option is refused")
    func badStrict() {
        #expect(throws: TrackError.self) { try makeBackend(uri: "ephemeral://?strict=maybe") }
    }

    @Test("a registered scheme makes its backend")
    func registerScheme() throws {
        let registry = BackendRegistry()
        registry.register(scheme: "Custom") { uri in MemoryBackend(strict: uri.option("strict") != "false") }
        #expect(registry.schemes.contains("custom"))
        let backend = try registry.makeBackend(uri: "custom://x")
        #expect(backend is MemoryBackend)
        let many = try registry.makeBackend(uris: ["custom://a", "ephemeral://"])
        #expect(many is Multiplexer)
    }

    @Test("a URI with no scheme is the file backend")
    func noSchemeMeansFile() throws {
        let registry = BackendRegistry()
        registry.register(scheme: "file") { uri in MemoryBackend(strict: uri.filePath != "runs/db") }
        let backend = try registry.makeBackend(uri: "runs/db")
        #expect((backend as? MemoryBackend)?.withState { $0.strict } == false)
    }
}

/// A backend that fails every write, to check the multiplexer reports failures.
final class BrokenWrites: TrackProtocol {
    let inner = MemoryBackend()
    struct Boom: Error, CustomStringConvertible { var description: String { "disk on fire" } }
    func newProject(_ project: Project) throws -> Project { throw Boom() }
    func getProject(_ uid: String) throws -> Project? { try inner.getProject(uid) }
    func fetchProjects(_ query: Query) throws -> [Project] { try inner.fetchProjects(query) }
    func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup { throw Boom() }
    func getTrialGroup(_ uid: String) throws -> TrialGroup? { nil }
    func fetchGroups(_ query: Query) throws -> [TrialGroup] { [] }
    func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws { throw Boom() }
    func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup { throw Boom() }
    func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? { throw Boom() }
    func getTrial(hash: String) throws -> [Trial] { [] }
    func fetchTrials(_ query: Query) throws -> [Trial] { [] }
    func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial { throw Boom() }
    func addProjectTrial(project: String, trial: String) throws { throw Boom() }
    func addGroupTrial(group: String, trial: String) throws { throw Boom() }
    func logTrialStart(_ trial: String) throws { throw Boom() }
    func logTrialFinish(_ trial: String) throws { throw Boom() }
    func logTrialChronoStart(_ trial: String, name: String) throws { throw Boom() }
    func logTrialChronoFinish(_ trial: String, name: String) throws { throw Boom() }
    func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws { throw Boom() }
    func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws { throw Boom() }
    func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws { throw Boom() }
    func addTrialTags(_ trial: String, _ tags: ValueObject) throws { throw Boom() }
    func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws { throw Boom() }
    func commit() throws {}
}

@Suite("Multiplexer")
struct MultiplexerTests {
    @Test("a failing backend is reported and the others are still written")
    func failureIsReported() throws {
        let good = MemoryBackend()
        let mux = Multiplexer([BrokenWrites(), good], names: ["broken://", "ephemeral://"])
        do {
            _ = try mux.newProject(Project(name: "p"))
            Issue.record("expected the broken backend's failure to be reported")
        } catch let error as TrackError {
            #expect(error.code == .backendFailure)
            #expect(error.message.contains("broken://"))
            #expect(error.message.contains("disk on fire"))
            #expect(error.message.contains("1 of 2"))
        }
        #expect(try good.getProject("p") != nil, "the healthy backend still got the write")
    }

    @Test("writes reach every backend")
    func writesReachAll() throws {
        let a = MemoryBackend(), b = MemoryBackend()
        let mux = Multiplexer([a, b])
        _ = try mux.newProject(Project(name: "p"))
        let trial = try #require(try mux.newTrial(Trial(name: "t", projectID: "p"), autoIncrement: false))
        try mux.logTrialMetric(trial.uid, name: "loss", step: 1, value: 0.5)
        for backend in [a, b] {
            #expect(try backend.getTrial(uid: trial.uid)?.metrics["loss"]?.points == [MetricPoint(step: 1, value: 0.5)])
        }
    }
}
