import Testing
import TrackModel

@Suite("compute_hash matches Python track byte for byte")
struct TrialHashTests {
    static let vectors: [Value] = (try? SharedData.load("hash_vectors.json").arrayValue) ?? []

    static var trialVectors: [Value] { vectors.filter { $0["kind"]?.stringValue == "trial" } }
    static var groupVectors: [Value] { vectors.filter { $0["kind"]?.stringValue == "group" } }

    @Test("the vector file is there and complete")
    func vectorsLoaded() {
        #expect(Self.vectors.count == 75, "expected 75 vectors in \(SharedData.directory.path)/hash_vectors.json")
    }

    static func hash(_ v: Value) throws(ModelError) -> String {
        try TrialHash.trial(name: v["name"]?.stringValue, version: v["version"].flatMap { $0.isNull ? nil : $0 },
                            parameters: v["parameters"]?.objectValue ?? [:])
    }

    @Test("trial vectors", arguments: trialVectors)
    func trialVector(_ v: Value) throws {
        let id = v["id"]?.stringValue ?? "?"
        if let expected = v["expected_hash"]?.stringValue {
            let hash = try Self.hash(v)
            #expect(hash == expected, "vector \(id)")
            let revision = Int(v["revision"]?.intValue ?? 0)
            let trial = try Trial(name: v["name"]?.stringValue, version: v["version"].flatMap { $0.isNull ? nil : $0 },
                                  parameters: v["parameters"]?.objectValue ?? [:], revision: revision)
            #expect(trial.uid == v["expected_uid"]?.stringValue, "uid of vector \(id)")
        } else {
            let pythonError = v["expected_error"]?.stringValue ?? ""
            do {
                _ = try Self.hash(v)
                Issue.record("vector \(id): Python raises \(pythonError), Swift hashed it")
            } catch {
                #expect(error.code == .unhashableParameter)
                let key = v["parameters"]?.objectValue?.keys.first ?? ""
                #expect(error.message.contains("parameter '\(key)'"), "the error names the parameter: \(error.message)")
            }
        }
    }

    @Test("group vectors", arguments: groupVectors)
    func groupVector(_ v: Value) throws {
        let name = try #require(v["name"]?.stringValue)
        let project = try #require(v["project_id"]?.stringValue)
        #expect(TrialHash.group(name: name, projectID: project) == v["expected_group_uid"]?.stringValue)
        #expect(TrialGroup(name: name, projectID: project).uid == v["expected_group_uid"]?.stringValue)
    }

    @Test("project vectors: the uid is the name")
    func projectVectors() {
        for v in Self.vectors where v["kind"]?.stringValue == "project" {
            #expect(Project(name: v["name"]!.stringValue!).uid == v["expected_project_uid"]?.stringValue)
        }
    }

    @Test("same_as pairs")
    func sameAs() throws {
        let byID = Dictionary(uniqueKeysWithValues: Self.trialVectors.map { ($0["id"]!.stringValue!, $0) })
        let pairs = Self.vectors.filter { $0["kind"]?.stringValue == "same_as" }
        #expect(!pairs.isEmpty)
        for pair in pairs {
            let a = try Self.hash(try #require(byID[pair["a"]!.stringValue!]))
            let b = try Self.hash(try #require(byID[pair["b"]!.stringValue!]))
            if pair["different"]?.boolValue == true { #expect(a != b, "\(pair["id"]!)") } else { #expect(a == b, "\(pair["id"]!)") }
        }
    }

    @Test("SHA-256 of known inputs")
    func sha256() {
        var h = SHA256()
        #expect(h.hexDigest() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        h.update("abc".utf8)
        #expect(h.hexDigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        long.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(long.hexDigest() == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        million.update([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
        #expect(million.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
