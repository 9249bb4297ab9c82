import Foundation
import Testing
import TrackBackends
import TrackLog
import TrackStore
import TrackModel


/// The state without wall-clock times (the event log's come from its clock, the memory
/// backend's from the call).
func comparable(_ backend: any TrackProtocol) throws -> StateDump {
    var dump = try StateDump(backend)
    dump.trials = dump.trials.map { var t = $0; t.lastChange = nil; return t }
    return dump
}

@Suite("Random operation sequences on file:// match the in-memory backend", .serialized)
struct PropertyTests {
    @Test("several writers, random compactions and reopenings", arguments: Array(1...12) as [UInt64])
    func randomSequences(_ seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let memory = MemoryBackend(strict: true)
        var writers = try (0..<3).map { _ in try EventLogBackend(path: db, segmentBytes: 4 << 10) }
        var current = 0
        var trialUIDs: [String] = []
        var groupUIDs: [String] = []
        let projects = ["p0", "p1"]

        /// Runs an operation on both backends; both must agree on success or failure.
        func both<T>(_ what: String, _ body: (any TrackProtocol) throws -> T) throws -> (T?, T?) {
            var a: T?, b: T?
            var errorA: (any Error)?, errorB: (any Error)?
            do { a = try body(writers[current]) } catch { errorA = error }
            do { b = try body(memory) } catch { errorB = error }
            #expect((errorA == nil) == (errorB == nil), "seed \(seed) \(what): file \(String(describing: errorA)), memory \(String(describing: errorB))")
            return (a, b)
        }

        for step in 0..<250 {
            // Switch writer now and then; the new one first sees what the others wrote.
            if Int.random(in: 0..<8, using: &rng) == 0 {
                try writers[current].commit()
                current = Int.random(in: 0..<writers.count, using: &rng)
                _ = try writers[current].smartReload()
            }
            let name = "step \(step)"
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<4:
                let p = projects.randomElement(using: &rng)!
                _ = try both(name) { try $0.newProject(Project(name: p, metadata: ["n": .int(Int64(step))])) }
            case 4..<8 where !projects.isEmpty:
                let g = TrialGroup(name: "g\(Int.random(in: 0..<3, using: &rng))", projectID: projects.randomElement(using: &rng)!)
                let (a, _) = try both(name) { try $0.newTrialGroup(g) }
                if let a, !groupUIDs.contains(a.uid) { groupUIDs.append(a.uid) }
            case 8..<16:
                let trial = try Trial(name: "t\(Int.random(in: 0..<4, using: &rng))", parameters: ["lr": .double(Double(Int.random(in: 1...3, using: &rng)) / 10)],
                                      projectID: projects.randomElement(using: &rng)!, groupID: Bool.random(using: &rng) ? groupUIDs.randomElement(using: &rng) : nil)
                let auto = Bool.random(using: &rng)
                let (a, b) = try both(name) { try $0.newTrial(trial, autoIncrement: auto) }
                #expect(a??.uid == b??.uid, "seed \(seed) \(name): newTrial")
                if let uid = a??.uid, !trialUIDs.contains(uid) { trialUIDs.append(uid) }
            case 16..<50 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let metric = ["loss", "acc"].randomElement(using: &rng)!
                let stepValue: Int64? = Int.random(in: 0..<5, using: &rng) == 0 ? nil : Int64(Int.random(in: 0..<40, using: &rng))
                let value = Double(Int.random(in: 0..<1000, using: &rng)) / 7
                _ = try both(name) { try $0.logTrialMetric(uid, name: metric, step: stepValue, value: value) }
            case 50..<58 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let metrics: ValueObject = Bool.random(using: &rng) ? ["loss": .double(Double(step)), "acc": .double(0.5)] : ["count": .int(Int64(step)), "loss": .double(1)]
                let s = Int64(Int.random(in: 0..<40, using: &rng))
                _ = try both(name) { try $0.logTrialMetrics(uid, step: .int(s), metrics) }
            case 58..<66 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let key = ["gpu", "host", "seed"].randomElement(using: &rng)!
                _ = try both(name) { try $0.logTrialMetadata(uid, [key: .int(Int64(step))]) }
            case 66..<70 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                _ = try both(name) { try $0.addTrialTags(uid, ["tag\(step % 3)": .bool(step % 2 == 0)]) }
            case 70..<74 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                _ = try both(name) { try $0.logTrialArguments(uid, ["epochs": .int(Int64(step))]) }
            case 74..<80 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let status = [Status.running, .completed, .interrupted, Status(name: "Queued", value: 42)].randomElement(using: &rng)!
                let error: String? = Bool.random(using: &rng) ? "error \(step)" : nil
                _ = try both(name) { try $0.setTrialStatus(uid, status, error: error) }
            case 80..<84 where !trialUIDs.isEmpty:
                let query = Query([.init("name", .equal, .string("t\(Int.random(in: 0..<4, using: &rng))"))])
                _ = try both(name) { try $0.fetchAndUpdateTrial(query, .incrementMetadata(key: "count", by: 1)) }
            case 84..<88 where !groupUIDs.isEmpty:
                let g = groupUIDs.randomElement(using: &rng)!
                _ = try both(name) { try $0.setGroupMetadata(g, ["budget": .int(Int64(step))]) }
            case 88..<91 where !trialUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let p = projects.randomElement(using: &rng)!
                _ = try both(name) { try $0.addProjectTrial(project: p, trial: uid) }
            case 91..<94 where !trialUIDs.isEmpty && !groupUIDs.isEmpty:
                let uid = trialUIDs.randomElement(using: &rng)!
                let g = groupUIDs.randomElement(using: &rng)!
                _ = try both(name) { try $0.addGroupTrial(group: g, trial: uid) }
            case 94..<97:
                try writers[current].compact()
            case 97..<100:
                // Reopen a writer: close it and open another on the same database.
                try writers[current].close()
                writers[current] = try EventLogBackend(path: db, segmentBytes: 4 << 10)
                _ = try writers[current].smartReload()
            default:
                break
            }
        }
        for w in writers { try w.commit() }
        for w in writers { try w.close() }
        let fresh = try EventLogBackend(path: db)
        let expected = try comparable(memory)
        let actual = try comparable(fresh)
        for (a, e) in zip(actual.projects, expected.projects) {
            if a != e { print("DIFF seed \(seed) project \(e.name): trials \(a.trials.map { $0.prefix(6) }) vs \(e.trials.map { $0.prefix(6) }) groups \(a.groups == e.groups) tag \(a.updateCount) vs \(e.updateCount)") }
            #expect(a == e, "seed \(seed): project \(e.name): trials \(a.trials == e.trials) groups \(a.groups == e.groups) tag \(a.updateCount) vs \(e.updateCount) meta \(a.metadata) vs \(e.metadata)")
        }
        for (a, e) in zip(actual.groups, expected.groups) where a != e {
            print("DIFF seed \(seed) group \(e.name): \(a.metadata) vs \(e.metadata); \(a.description ?? "-") vs \(e.description ?? "-"); \(a.uid == e.uid) \(a.projectID == e.projectID)")
        }
        for (a, e) in zip(actual.groups, expected.groups) {
            #expect(a == e, "seed \(seed): group \(e.name): trials \(a.trials) vs \(e.trials) tag \(a.updateCount) vs \(e.updateCount) meta \(a.metadata) vs \(e.metadata)")
        }
        #expect(actual.trials.count == expected.trials.count, "seed \(seed): trial count")
        for (a, e) in zip(actual.trials, expected.trials) {
            if a != e { print("DIFF seed \(seed) trial \(e.uid.prefix(8)): \(difference(a, e))") }
            #expect(a == e, "seed \(seed): trial \(e.uid)")
        }
        try fresh.close()
    }
}

/// The fields where two trials differ.
func difference(_ a: Trial, _ e: Trial) -> String {
    var out: [String] = []
    if a.uid != e.uid { out.append("uid \(a.uid) vs \(e.uid)") }
    if a.tags != e.tags { out.append("tags \(a.tags) vs \(e.tags)") }
    if a.parameters != e.parameters { out.append("parameters \(a.parameters) vs \(e.parameters)") }
    if a.metadata != e.metadata { out.append("metadata \(a.metadata) vs \(e.metadata)") }
    if a.status != e.status { out.append("status \(a.status) vs \(e.status)") }
    if a.errors != e.errors { out.append("errors \(a.errors) vs \(e.errors)") }
    if a.updateCount != e.updateCount { out.append("updateCount \(a.updateCount) vs \(e.updateCount)") }
    if a.projectID != e.projectID || a.groupID != e.groupID { out.append("ids \(String(describing: a.projectID)) \(String(describing: a.groupID)) vs \(String(describing: e.projectID)) \(String(describing: e.groupID))") }
    if Array(a.metrics.keys) != Array(e.metrics.keys) { out.append("metric names \(Array(a.metrics.keys)) vs \(Array(e.metrics.keys))") }
    for (k, s) in e.metrics where a.metrics[k] != s {
        out.append("metric \(k): \(a.metrics[k]?.points.map { "\($0.step.map(String.init) ?? "-"):\($0.value)" } ?? []) vs \(s.points.map { "\($0.step.map(String.init) ?? "-"):\($0.value)" })")
    }
    if a.chronos != e.chronos { out.append("chronos") }
    return out.joined(separator: "; ")
}

@Suite("The projection does not depend on arrival order")
struct ArrivalOrderTests {
    @Test("streams applied in any interleaving give the same state")
    func interleavings() throws {
        let dir = ScratchDirectory()
        let db = dir.path + "/db"
        let writers = try (0..<3).map { _ in try EventLogBackend(path: db) }
        var rng = SeededRandom(seed: 99)
        _ = try writers[0].newProject(Project(name: "p"))
        var uids: [String] = []
        for i in 0..<4 {
            let w = writers[i % 3]
            _ = try w.smartReload()
            uids.append(try #require(try w.newTrial(Trial(name: "t\(i)", projectID: "p"), autoIncrement: false)).uid)
        }
        for step in 0..<300 {
            let w = writers.randomElement(using: &rng)!
            let uid = uids.randomElement(using: &rng)!
            switch step % 5 {
            case 0: try w.logTrialMetadata(uid, ["k\(step % 4)": .int(Int64(step))])
            case 1: try w.setTrialStatus(uid, .running, error: "e\(step)")
            case 2: try w.logTrialChronoStart(uid, name: "c"); try w.logTrialChronoFinish(uid, name: "c")
            default: try w.logTrialMetric(uid, name: "m\(step % 2)", step: Int64(step % 50), value: Double(step))
            }
            if step % 10 == 0 { try w.commit() }
        }
        for w in writers { try w.close() }
        let reader = try LogReader(database: db)
        let byStream = Dictionary(grouping: try reader.allFrames(), by: \.stream)
        func build(_ order: [LocatedFrame]) -> [Trial] {
            let p = Projection()
            for f in order { p.apply(f.frame, stream: f.stream) }
            return p.allTrials
        }
        let streams = byStream.keys.sorted()
        let reference = build(streams.flatMap { byStream[$0]! })
        // Other stream orders, and random interleavings keeping each stream's own order.
        for _ in 0..<10 {
            var queues = streams.shuffled(using: &rng).map { byStream[$0]! }
            var order: [LocatedFrame] = []
            while queues.contains(where: { !$0.isEmpty }) {
                let i = queues.indices.filter { !queues[$0].isEmpty }.randomElement(using: &rng)!
                order.append(queues[i].removeFirst())
            }
            #expect(build(order) == reference)
        }
    }
}
