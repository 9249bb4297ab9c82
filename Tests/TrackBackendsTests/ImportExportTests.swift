import Foundation
import Testing
import TrackBackends
import TrackLog
import TrackModel

/// `../shared/data/track-json/<name>`, parsed.
func sharedTrackJSON(_ name: String) throws -> Value {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = ProcessInfo.processInfo.environment["TRACK_SHARED_DATA"].map { URL(fileURLWithPath: $0) }
        ?? root.deletingLastPathComponent().appendingPathComponent("shared/data")
    return try JSON.decode(Array(try Data(contentsOf: dir.appendingPathComponent("track-json/\(name)"))))
}

@Suite("Import and export of track FileProtocol databases")
struct ImportExportTests {
    @Test("every reference file imports, matches its summary made by track, and exports back unchanged",
          arguments: ["small", "medium"])
    func importMatchesSummary(_ name: String) throws {
        let original = try sharedTrackJSON("\(name).json")
        let summary = try sharedTrackJSON("\(name).summary.json")
        let dir = ScratchDirectory()
        let backend = try EventLogBackend(path: dir.path + "/db")
        try backend.importDatabase(try TrackFileDatabase(trackJSON: original))
        try backend.close()
        let reopened = try EventLogBackend(path: dir.path + "/db")
        try checkSummary(reopened, summary)
        // Round trip: export gives back the file, value for value.
        var unplaced: [String] = []
        let exported = try reopened.exportDatabase().trackJSON(unplaced: &unplaced)
        #expect(unplaced.isEmpty)
        if exported != original, let a = exported.arrayValue, let b = original.arrayValue {
            for (x, y) in zip(a, b) where x != y {
                for key in ["uid", "name", "description", "metadata", "groups"] where x[key] != y[key] { print("EXPORT DIFF \(key): \(x[key]!) vs \(y[key]!)") }
                for (tx, ty) in zip(x["trials"]?.arrayValue ?? [], y["trials"]?.arrayValue ?? []) where tx != ty {
                    for (k, v) in ty.objectValue ?? [:] where tx[k] != v { print("EXPORT DIFF trial \(ty["uid"]!) \(k): \(tx[k] ?? .null) vs \(v)") }
                }
            }
        }
        #expect(exported == original, "export of \(name) differs from the imported file")
        // And after compaction too.
        try reopened.compact()
        let compacted = try EventLogBackend(path: dir.path + "/db")
        #expect(try compacted.exportDatabase().trackJSON(unplaced: &unplaced) == original)
        try compacted.close()
        try reopened.close()
    }

    @Test("importing over existing objects is refused and writes nothing")
    func importClash() throws {
        let original = try TrackFileDatabase(trackJSON: try sharedTrackJSON("small.json"))
        let dir = ScratchDirectory()
        let backend = try EventLogBackend(path: dir.path + "/db")
        try backend.importDatabase(original)
        let before = try StateDump(backend)
        #expect { try backend.importDatabase(original) } throws: { ($0 as? TrackError)?.message.contains("already holds") == true }
        #expect(try StateDump(backend) == before)
        try backend.close()
    }
}

/// Checks a backend's state against a `.summary.json` made by Python track.
func checkSummary(_ backend: any TrackProtocol, _ summary: Value) throws {
    let projects = try backend.fetchProjects(.all)
    let groups = try backend.fetchGroups(.all)
    let trials = try backend.fetchTrials(.all)
    #expect(projects.count == Int(summary["counts"]?["projects"]?.intValue ?? -1))
    #expect(groups.count == Int(summary["counts"]?["groups"]?.intValue ?? -1))
    #expect(trials.count == Int(summary["counts"]?["trials"]?.intValue ?? -1))
    for p in summary["projects"]?.arrayValue ?? [] {
        let project = try #require(projects.first { $0.uid == p["uid"]?.stringValue })
        #expect(project.description == p["description"]?.stringValue)
        #expect(.object(project.metadata) == p["metadata"])
        #expect(Set(project.trials) == Set((p["trials"]?.arrayValue ?? []).compactMap(\.stringValue)))
        #expect(Set(project.groups) == Set((p["groups"]?.arrayValue ?? []).compactMap(\.stringValue)))
    }
    for g in summary["groups"]?.arrayValue ?? [] {
        let group = try #require(groups.first { $0.uid == g["uid"]?.stringValue })
        #expect(group.name == g["name"]?.stringValue && group.projectID == g["project_id"]?.stringValue)
        #expect(Set(group.trials) == Set((g["trials"]?.arrayValue ?? []).compactMap(\.stringValue)))
    }
    var points = 0
    for s in summary["trials"]?.arrayValue ?? [] {
        let uid = try #require(s["uid"]?.stringValue)
        let t = try #require(trials.first { $0.uid == uid }, "trial \(uid)")
        #expect(t.hash == s["hash"]?.stringValue && Int64(t.revision) == s["revision"]?.intValue)
        #expect(t.name == s["name"]?.stringValue && t.description == s["description"]?.stringValue)
        #expect((t.version ?? .null) == s["version"])
        #expect(t.projectID == s["project_id"]?.stringValue && t.groupID == s["group_id"]?.stringValue)
        #expect(t.status.trackJSON["name"] == s["status"]?["name"] && t.status.trackJSON["value"] == s["status"]?["value"], "\(uid) status")
        #expect(.array(t.errors.map(Value.string)) == s["errors"], "\(uid) errors")
        #expect(.object(t.parameters) == s["parameters"], "\(uid) parameters")
        #expect(.object(t.tags) == s["tags"], "\(uid) tags")
        let metadataKeys = Set((t.trackJSON["metadata"]?.objectValue ?? [:]).keys)
        #expect(metadataKeys == Set((s["metadata_keys"]?.arrayValue ?? []).compactMap(\.stringValue)), "\(uid) metadata keys")
        #expect(Int64(t.updateCount) == s["update_count"]?.intValue, "\(uid) update count")
        for (name, m) in s["metrics"]?.objectValue ?? [:] {
            let series = try #require(t.metrics[name], "\(uid) metric \(name)")
            #expect(Int64(series.count) == m["len"]?.intValue, "\(uid) \(name) length")
            let type = series.trackJSON.objectValue != nil ? "object" : "list"
            #expect(type == m["type"]?.stringValue, "\(uid) \(name) type")
            points += series.count
        }
        #expect(t.metrics.count == (s["metrics"]?.objectValue?.count ?? 0))
        for (name, c) in s["chronos"]?.objectValue ?? [:] {
            let chrono = try #require(t.chronos[name], "\(uid) chrono \(name)")
            switch c["type"]?.stringValue {
            case "statstream":
                guard case .stat(let stat) = chrono else { Issue.record("\(uid) \(name) is not a stat stream"); continue }
                #expect(Int64(stat.observationCount) == c["current_count"]?.intValue)
                #expect(Value.double(stat.min) == summaryNumber(c["min"]) && Value.double(stat.max) == summaryNumber(c["max"]), "\(uid) \(name) min/max")
            case "float":
                #expect(chrono.trackJSON == c["value"], "\(uid) \(name)")
            default:
                #expect(chrono.trackJSON == .null, "\(uid) \(name)")
            }
        }
    }
    #expect(Int64(points) == summary["metric_points_total"]?.intValue)
    var statusCounts: [String: Int] = [:]
    for t in trials { statusCounts[t.status.name, default: 0] += 1 }
    for (name, count) in summary["status_counts"]?.objectValue ?? [:] { #expect(Int64(statusCounts[name] ?? 0) == count.intValue, "status \(name)") }
}

/// A number of a summary, where Python wrote infinities and NaN as strings.
func summaryNumber(_ v: Value?) -> Value? {
    switch v?.stringValue {
    case "inf"?: return .double(.infinity)
    case "-inf"?: return .double(-.infinity)
    case "nan"?: return .double(.nan)
    default: return v
    }
}
