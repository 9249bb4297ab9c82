import Testing
import TrackModel

@Suite("Query parsing")
struct QueryTests {
    @Test("unknown operators are errors naming the operator", arguments: ["$regex", "$nin", "$or"])
    func unknownOperator(_ op: String) {
        do {
            _ = try Query(json: #"{"metadata.lr": {"\#(op)": 1}}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidQuery)
            #expect(error.message.contains("'\(op)'"))
            #expect(error.message.contains("metadata.lr"))
        }
    }

    @Test("bad operands and shapes are errors", arguments: [
        #"{"a": {"$in": 3}}"#, #"{"a": {"$exists": 1}}"#, #"{"a": {"$gt": [1]}}"#, #"{"a": {"$gt": 1, "$lt": 3}}"#,
        #"{"": 1}"#, #"{"a..b": 1}"#, "3", #"[["a"]]"#,
    ])
    func badShapes(_ text: String) {
        #expect(throws: ModelError.self) { try Query(json: text) }
    }

    @Test("an object without $-keys is equality to that object")
    func objectEquality() throws {
        let q = try Query(json: #"{"parameters.opt": {"momentum": 0.9}}"#)
        #expect(q.conditions.first?.operator == .equal)
        let trial = try Trial(name: "t", parameters: ["opt": ["momentum": 0.9]])
        #expect(try q.matches(trial))
    }

    @Test("unknown attributes are errors listing the known ones")
    func unknownAttribute() throws {
        let q = try Query(json: #"{"colour": "red"}"#)
        do {
            try q.validate(for: Trial.self)
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("'colour'") && error.message.contains("metadata"))
        }
        #expect(throws: ModelError.self) { try q.matches(Project(name: "p")) }
    }

    @Test("a query prints as track's JSON and parses back")
    func roundTrip() throws {
        let q = try Query(json: #"{"status.name": "Completed", "metadata.lr": {"$lte": 0.1}}"#)
        #expect(try Query(trackJSON: q.trackJSON) == q)
    }
}

@Suite("TrackURI, as track's parse_uri")
struct TrackURITests {
    @Test("full form")
    func full() throws {
        let u = try TrackURI("socket://user:pass@192.168.0.10:8123/db/path?compress=1&strict=false#frag")
        #expect(u.scheme == "socket")
        #expect(u.username == "user" && u.password == "pass")
        #expect(u.host == "192.168.0.10" && u.port == 8123)
        #expect(u.path == "/db/path")
        #expect(u.option("compress") == "1" && u.option("strict") == "false" && u.option("x") == nil)
        #expect(u.fragment == "frag")
        #expect(u.description == "socket://user:***@192.168.0.10:8123/db/path?compress=1&strict=false#frag")
    }

    @Test("file forms", arguments: [
        ("file:relative.json", "relative.json"), ("file://relative.json", "relative.json"),
        ("file:///abs/db", "/abs/db"), ("file://runs/db", "runs/db"), ("runs/db", "runs/db"), ("/abs/x", "/abs/x"),
    ])
    func fileForms(_ pair: (String, String)) throws {
        #expect(try TrackURI(pair.0).filePath == pair.1)
    }

    @Test("schemes without authority, and IPv6 hosts")
    func misc() throws {
        #expect(try TrackURI("ephemeral:").scheme == "ephemeral")
        #expect(try TrackURI("EPHEMERAL://").scheme == "ephemeral")
        let v6 = try TrackURI("socket://[::1]:9000")
        #expect(v6.host == "::1" && v6.port == 9000)
        #expect(try TrackURI("cockroach://root@localhost:26257/track").username == "root")
    }

    @Test("malformed URIs are errors quoting the URI", arguments: [
        "", "://x", "1abc://x", "socket://h:port", "socket://h:70000", "file:x?flag", "with space://x", "socket://[::1",
    ])
    func malformed(_ text: String) {
        do {
            _ = try TrackURI(text)
            Issue.record("expected an error for '\(text)'")
        } catch {
            #expect(error.code == .malformedURI)
            #expect(error.message.contains("'\(text)'"))
        }
    }
}
