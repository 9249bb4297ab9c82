import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// Issue 13: what Python `track` clients send is answered as Python's server would.
@Suite("Python track clients", .serialized)
struct PythonCompatibilityTests {
    @Test("AnonymousLoginIsAcceptedWhenAllowed: authenticate with null username and password, as TrackClient('socket://host:port') sends it")
    func anonymousAllowed() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        let reply = client.call(#"{"__rpc__": "authenticate", "username": null, "password": null}"#)
        #expect(reply == ["status": 0, "return": ["status": 0, "return": true]], "\(String(describing: reply))")
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        // The Swift client without credentials in the URI does the same.
        registerSocketBackend()
        let backend = try makeBackend(uri: "socket://127.0.0.1:\(port)?pipeline=false")
        defer { try? backend.close() }
        #expect(try backend.getProject("p") != nil)
    }

    @Test("AnonymousLoginIsRefusedWithUsers: with a users file, a login without credentials is refused with a reason")
    func anonymousRefused() throws {
        let users = UserStore([UserRecord(name: "alice", password: "right", iterations: 1000)])
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: users)
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        let reply = client.call(#"{"__rpc__": "authenticate", "username": null, "password": null}"#)
        #expect(reply?["status"] == 1 && (reply?["error"]?.stringValue ?? "").contains("checks credentials"), "\(String(describing: reply))")
        #expect((client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["error"]?.stringValue ?? "").contains("not authenticated"))
        registerSocketBackend()
        #expect { try makeBackend(uri: "socket://127.0.0.1:\(port)?pipeline=false") } throws: {
            ($0 as? TrackError)?.message.contains("without credentials") == true
        }
    }
}

extension PythonCompatibilityTests {
    @Test("StringRevisionsAreAccepted: a trial whose revision is \"0\" (Python's uid setter) is found; \"exist\" finds nothing")
    func stringRevisions() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let created = client.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {"lr": 0.1}, "revision": "0"}}"#)
        let uid = try #require(created?["return"]?["uid"]?.stringValue, "\(String(describing: created))")
        let hash = String(uid.prefix(while: { $0 != "_" }))
        // TrackClient.set_trial(uid=...): a trial with only uid, hash and revision, as strings.
        let found = client.call(#"{"__rpc__": "get_trial", "trial": {"dtype": "trial", "uid": "\#(uid)", "hash": "\#(hash)", "revision": "0", "parameters": {}}}"#)
        #expect(found?["status"] == 0 && found?["return"]?.arrayValue?.first?["uid"]?.stringValue == uid, "\(String(describing: found))")
        let missing = client.call(#"{"__rpc__": "get_trial", "trial": {"dtype": "trial", "uid": "\#(hash)_exist", "hash": "\#(hash)", "revision": "exist", "parameters": {}}}"#)
        #expect(missing == ["status": 0, "return": nil], "\(String(describing: missing))")
    }
}

extension PythonCompatibilityTests {
    @Test("PrivateAttributePathsWork: {\"_hash\": ...} on trials and {\"_uid\": ...} on groups select as in Python")
    func privateAttributes() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let group = client.call(#"{"__rpc__": "new_trial_group", "group": {"dtype": "trial_group", "name": "g", "project_id": "p", "metadata": {}, "trials": []}}"#)
        let groupUID = try #require(group?["return"]?["uid"]?.stringValue, "\(String(describing: group))")
        let trial = client.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {"lr": 0.1}}}"#)
        let hash = try #require(trial?["return"]?["hash"]?.stringValue, "\(String(describing: trial))")
        let trials = client.call(#"{"__rpc__": "fetch_trials", "query": {"_hash": "\#(hash)"}}"#)
        #expect(trials?["return"]?.arrayValue?.count == 1, "\(String(describing: trials))")
        let groups = client.call(#"{"__rpc__": "fetch_groups", "query": {"_uid": "\#(groupUID)"}}"#)
        #expect(groups?["return"]?.arrayValue?.count == 1, "\(String(describing: groups))")
    }
}

extension PythonCompatibilityTests {
    @Test("ExistingGroupIsNone: new_trial_group on a group that exists answers null, as Python")
    func existingGroup() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let request = #"{"__rpc__": "new_trial_group", "group": {"dtype": "trial_group", "name": "g", "project_id": "p", "metadata": {}, "trials": []}}"#
        #expect(client.call(request)?["return"]?["name"] == "g")
        let again = client.call(request)
        #expect(again == ["status": 0, "return": nil], "\(String(describing: again))")
    }
}

extension PythonCompatibilityTests {
    @Test("StatusQueriesCompareAsPython: a status compares as str(status), so track's reservation pattern finds an interrupted trial and the capitalized name finds nothing")
    func statusQueries() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let trial = client.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {"lr": 0.1}}}"#)
        let uid = try #require(trial?["return"]?["uid"]?.stringValue, "\(String(describing: trial))")
        #expect(client.call(#"{"__rpc__": "set_trial_status", "trial": "\#(uid)", "status": {"name": "Interrupted", "value": 201}}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "fetch_trials", "query": {"status": "Interrupted"}}"#)?["return"] == .array([]))
        #expect(client.call(#"{"__rpc__": "fetch_trials", "query": {"status": "interrupted"}}"#)?["return"]?.arrayValue?.count == 1)
        // The reservation pattern of track's own code: pick a trial to run and mark it running.
        let reserved = client.call(#"{"__rpc__": "fetch_and_update_trial", "query": {"status": {"$in": ["new", "suspended", "interrupted"]}}, "attr": "set_trial_status", "status": {"name": "Running", "value": 101}}"#)
        #expect(reserved?["status"] == 0 && reserved?["return"]?["status"]?["name"] == "Running", "\(String(describing: reserved))")
        #expect(client.call(#"{"__rpc__": "fetch_trials", "query": {"status": {"$ne": "running"}}}"#)?["return"] == .array([]))
    }
}

extension PythonCompatibilityTests {
    @Test("StringAndFloatStepsAreAccepted: log_trial_metrics with step \"warmup\" or 1.5, as Python sends them, keys the metric by them")
    func stringAndFloatSteps() throws {
        let (server, port) = try HostileClientTests.server(ServerLimits(), credentials: AnyCredentials())
        defer { try? server.stop() }
        let client = try WireClient(port: port)
        #expect(client.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
        #expect(client.call(#"{"__rpc__": "new_project", "project": "p"}"#)?["status"] == 0)
        let created = client.call(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {"lr": 0.1}}}"#)
        let uid = try #require(created?["return"]?["uid"]?.stringValue, "\(String(describing: created))")
        for request in [#"{"loss": 0.9, "__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": "warmup"}"#,
                        #"{"loss": 0.5, "__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": 1.5}"#,
                        #"{"loss": 0.4, "__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": 2}"#,
                        #"{"loss": 0.8, "__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": "warmup"}"#] {
            #expect(client.call(request)?["status"] == 0, "\(request)")
        }
        let trial = client.call(#"{"__rpc__": "get_trial", "trial": {"dtype": "trial", "uid": "\#(uid)", "hash": "\#(uid.prefix(64))", "revision": 0, "parameters": {}}}"#)
        let loss = trial?["return"]?.arrayValue?.first?["metrics"]?["loss"]
        #expect(loss.map { JSON.encode($0) } == #"{"warmup":0.8,"1.5":0.5,"2":0.4}"#, "\(String(describing: trial))")
        let refused = client.call(#"{"loss": 0.1, "__rpc__": "log_trial_metrics", "trial": "\#(uid)", "step": [1]}"#)
        #expect(refused?["status"] == 1 && (refused?["error"]?.stringValue ?? "").contains("step"), "\(String(describing: refused))")
    }
}
