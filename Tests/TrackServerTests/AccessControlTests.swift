import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// One user's connection to a dispatcher, without sockets.
final class Connection {
    let dispatcher: RPCDispatcher
    var session = Session()

    init(_ dispatcher: RPCDispatcher, user: String, password: String = "pw") {
        self.dispatcher = dispatcher
        let reply = call("authenticate", ["username": .string(user), "password": .string(password)])
        precondition(reply["status"]?.intValue == 0, "cannot log in as \(user): \(reply)")
    }

    @discardableResult
    func call(_ rpc: String, _ arguments: ValueObject = [:]) -> Value {
        var request = arguments
        request["__rpc__"] = .string(rpc)
        return dispatcher.handle(.object(request), session: &session)
    }

    /// The returned value; records an issue on an error reply.
    func ok(_ rpc: String, _ arguments: ValueObject = [:], sourceLocation: SourceLocation = #_sourceLocation) -> Value {
        let reply = call(rpc, arguments)
        #expect(reply["status"]?.intValue == 0, "\(rpc) failed: \(reply)", sourceLocation: sourceLocation)
        return reply["return"] ?? .null
    }

    /// True when the reply is a permission error.
    func denied(_ rpc: String, _ arguments: ValueObject = [:]) -> Bool {
        let reply = call(rpc, arguments)
        return reply["status"]?.intValue == 1 && reply["code"]?.stringValue == "permissionDenied"
    }
}

@Suite("access control: a user uses the projects they create or are granted")
struct AccessControlTests {
    let directory = NSTemporaryDirectory() + "swift-track-access-\(UUID().uuidString.prefix(10))"

    func setUp() throws -> (RPCDispatcher, UserStore, String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let users = try UserStore(parsing: [
            UserRecord(name: "alice", password: "pw", iterations: 1000).line,
            UserRecord(name: "bob", password: "pw", iterations: 1000).line,
            UserRecord(name: "carol", password: "pw", iterations: 1000, grants: ["vision"]).line,
            UserRecord(name: "admin", password: "pw", iterations: 1000, grants: ["*"]).line,
        ].joined(separator: "\n"))
        let owners = directory + "/users.owners"
        let dispatcher = RPCDispatcher(backend: MemoryBackend(), credentials: users, access: try ProjectAccess(users: users, ownersPath: owners))
        return (dispatcher, users, owners)
    }

    @Test("another user's project, its groups and trials can be neither read nor changed")
    func isolation() throws {
        let (dispatcher, _, _) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let alice = Connection(dispatcher, user: "alice")
        let bob = Connection(dispatcher, user: "bob")
        _ = alice.ok("new_project", ["project": "vision"])
        let group = TrialGroup(name: "g", projectID: "vision").trackJSON
        let groupUID = alice.ok("new_trial_group", ["group": group])["uid"]?.stringValue ?? ""
        let trial = alice.ok("new_trial", ["trial": try Trial(name: "t", projectID: "vision", groupID: groupUID).trackJSON])
        let uid = try #require(trial["uid"]?.stringValue)
        _ = alice.ok("log_trial_metrics", ["trial": .string(uid), "step": 1, "loss": 0.5])

        #expect(bob.denied("get_project", ["project": "vision"]))
        #expect(bob.denied("new_project", ["project": "vision"]))
        #expect(bob.denied("get_trial_group", ["group": .string(groupUID)]))
        #expect(bob.denied("set_group_metadata", ["group": .string(groupUID), "k": 1]))
        #expect(bob.denied("new_trial_group", ["group": TrialGroup(name: "h", projectID: "vision").trackJSON]))
        #expect(bob.denied("new_trial", ["trial": try Trial(name: "mine", projectID: "vision").trackJSON]))
        for rpc in ["log_trial_start", "log_trial_finish", "log_trial_arguments", "log_trial_metadata", "add_trial_tags"] {
            #expect(bob.denied(rpc, ["trial": .string(uid)]), "\(rpc)")
        }
        #expect(bob.denied("log_trial_metrics", ["trial": .string(uid), "step": 2, "loss": 9.0]))
        #expect(bob.denied("set_trial_status", ["trial": .string(uid), "status": ["name": "completed", "value": 302]]))
        #expect(bob.denied("log_trial_chrono_start", ["trial": .string(uid), "name": "x"]))
        #expect(bob.denied("add_group_trial", ["group": .string(groupUID), "trial": .string(uid)]))
        #expect(bob.denied("log_trial_chrono_finish", ["trial": .string(uid), "name": "x"]))
        #expect(bob.denied("add_project_trial", ["project": "vision", "trial": .string(uid)]))
        // Queries see only bob's own objects; a fetch-and-update cannot reach alice's trial.
        #expect(bob.ok("fetch_projects", ["query": [:]]).arrayValue?.isEmpty == true)
        #expect(bob.ok("fetch_groups", ["query": [:]]).arrayValue?.isEmpty == true)
        #expect(bob.ok("fetch_trials", ["query": [:]]).arrayValue?.isEmpty == true)
        #expect(bob.ok("get_trial", ["trial": .string(uid)]) == .null)
        let update = bob.call("fetch_and_update_trial", ["query": ["name": "t"], "attr": "log_trial_metadata", "stolen": true])
        #expect(update["status"]?.intValue == 1 && update["code"]?.stringValue == "itemNotFound")
        // Nothing of bob's reached alice's data.
        let after = alice.ok("get_trial", ["trial": .string(uid)]).arrayValue?.first
        #expect(after?["metrics"]?["loss"]?.objectValue?.count == 1)
        #expect(after?["metadata"]?["stolen"] == nil)
        #expect(alice.ok("get_trial_group", ["group": .string(groupUID)])["metadata"]?["k"] == nil)
        // Bob's own project works, and alice does not see it.
        _ = bob.ok("new_project", ["project": "audio"])
        // (Trial uids are global in track's model: the hash covers name, version and parameters.)
        _ = bob.ok("new_trial", ["trial": try Trial(name: "t-audio", projectID: "audio").trackJSON])
        #expect(bob.ok("fetch_trials", ["query": [:]]).arrayValue?.count == 1)
        #expect(alice.ok("fetch_projects", ["query": [:]]).arrayValue?.map { $0["name"]?.stringValue } == ["vision"])
        // A trial without a project belongs to its creator.
        let loose = alice.ok("new_trial", ["trial": try Trial(name: "loose").trackJSON])
        #expect(bob.denied("log_trial_metadata", ["trial": loose["uid"] ?? .null, "x": 1]))
        #expect(bob.ok("get_trial", ["trial": loose["uid"] ?? .null]) == .null)
        // AnotherUsersGroupIsRefused: a new trial of bob's own project, or of none, cannot join
        // alice's group (new_trial used to check only the project).
        _ = bob.ok("new_project", ["project": "bobs"])
        #expect(bob.denied("new_trial", ["trial": try Trial(name: "sneak", projectID: "bobs", groupID: groupUID).trackJSON]))
        #expect(bob.denied("new_trial", ["trial": try Trial(name: "sneak2", groupID: groupUID).trackJSON]))
        #expect(bob.denied("new_trial", ["trial": try Trial(name: "sneak3", projectID: "bobs", groupID: groupUID).trackJSON, "auto_increment": true]))
        let own = bob.ok("new_trial", ["trial": try Trial(name: "own", projectID: "bobs").trackJSON])
        #expect(bob.denied("add_group_trial", ["group": .string(groupUID), "trial": own["uid"] ?? .null]))
        #expect(bob.denied("add_project_trial", ["project": "vision", "trial": own["uid"] ?? .null]))
        let groupUpdate = bob.call("fetch_and_update_group", ["query": ["name": "g"], "attr": "set_group_metadata", "k": 2])
        #expect(groupUpdate["status"]?.intValue == 1)
        #expect(alice.ok("get_trial_group", ["group": .string(groupUID)])["trials"]?.arrayValue?.count == 1, "bob's trials never joined alice's group")
    }

    @Test("grants in the users file, '*' for every project; claims survive a restart")
    func grantsAndOwners() throws {
        let (dispatcher, users, owners) = try setUp()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let alice = Connection(dispatcher, user: "alice")
        _ = alice.ok("new_project", ["project": "vision"])
        let uid = alice.ok("new_trial", ["trial": try Trial(name: "t", projectID: "vision").trackJSON])["uid"] ?? .null
        let carol = Connection(dispatcher, user: "carol")
        _ = carol.ok("log_trial_metrics", ["trial": uid, "step": 1, "acc": 0.9])
        #expect(carol.ok("fetch_projects", ["query": [:]]).arrayValue?.count == 1)
        let admin = Connection(dispatcher, user: "admin")
        _ = admin.ok("new_project", ["project": "admin-only"])
        #expect(admin.ok("fetch_projects", ["query": [:]]).arrayValue?.count == 2)
        #expect(carol.denied("get_project", ["project": "admin-only"]))
        #expect(alice.ok("get_project", ["project": "does-not-exist"]) == .null)

        // A restarted server (a new policy over the same owners file) remembers who created what,
        // and a torn last line from a crash costs only that line.
        let handle = try #require(FileHandle(forWritingAtPath: owners))
        handle.seekToEndOfFile()
        handle.write(Data("{\"project\": \"half".utf8))
        handle.closeFile()
        let again = try ProjectAccess(users: users, ownersPath: owners)
        #expect(again.projects(of: "alice") == ["vision"])
        #expect(again.projects(of: "bob") == [])
        #expect(again.projects(of: "carol") == ["vision"])
        #expect(again.projects(of: "admin") == nil)
        #expect(try again.claim(project: "vision", for: "bob") == false)
        #expect(try again.claim(project: "fresh", for: "bob") == true)
        #expect(try ProjectAccess(users: users, ownersPath: owners).projects(of: "bob") == ["fresh"])
    }

    @Test("users file lines carry grants; a bad line is named")
    func usersFile() throws {
        let record = UserRecord(name: "carol", password: "secret", iterations: 1000, grants: ["a", "b"])
        let store = try UserStore(parsing: "# comment\n" + record.line + "\n")
        #expect(store.grants(of: "carol") == ["a", "b"])
        #expect(store.check(user: "carol", password: "secret"))
        #expect(!store.check(user: "carol", password: "wrong"))
        #expect { try UserStore(parsing: "ok\ncarol:md5:1:00:00", path: "u.txt") } throws: {
            ($0 as? ServerError)?.message.contains("u.txt line 1") == true
        }
    }
}
