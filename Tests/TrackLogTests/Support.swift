import Foundation
import Synchronization
import TrackLog
@testable import TrackStore
import TrackModel

/// A fresh temporary directory for one test, removed afterwards.
final class TemporaryDirectory {
    let path: String
    init(_ name: String = #function) {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "swift-track-tests/\(safe)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    var db: String { path + "/db" }
}

/// Collects notices instead of printing them.
final class NoticeCollector: Sendable {
    private let notices = Mutex<[LogNotice]>([])
    var reporter: LogReporter { { [self] n in notices.withLock { $0.append(n) } } }
    var all: [LogNotice] { notices.withLock { $0 } }
    func of(_ kind: LogNotice.Kind) -> [LogNotice] { all.filter { $0.kind == kind } }
}

func writerOptions(_ collector: NoticeCollector, segmentBytes: Int64 = Limits.segmentBytesDefault, durability: Durability = .buffered,
                   frameBytes: Int = Limits.frameRawBytesTarget) -> WriterOptions {
    var o = WriterOptions()
    o.reporter = collector.reporter
    o.segmentBytes = segmentBytes
    o.durability = durability
    o.frameRawBytesTarget = frameBytes
    o.verifyFrames = true
    return o
}

/// Every scalar point of `frames` as (trial, name, step, value), in stream order.
func points(_ frames: [LocatedFrame]) -> [(String, String, Int64?, Double)] {
    var out: [(String, String, Int64?, Double)] = []
    for f in frames {
        for e in f.frame.events {
            if case .point(let series, let step, let value) = e.kind {
                let names = f.frame.seriesNames(series)
                out.append((names.subject, names.name, step, value))
            }
        }
    }
    return out
}

/// All event sequence numbers of `frames` (points of one call share one).
func sequences(_ frames: [LocatedFrame]) -> [UInt64] {
    var out: [UInt64] = []
    for f in frames { for e in f.frame.events where out.last != e.sequence { out.append(e.sequence) } }
    return out
}

/// Path of the built `track-replay` tool, next to the test bundle.
func trackReplayPath() -> String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    while url.path != "/" {
        let candidate = url.deletingLastPathComponent().appendingPathComponent("track-replay")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
        url = url.deletingLastPathComponent()
    }
    return ".build/debug/track-replay"
}

func readFile(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }
func writeFile(_ path: String, _ bytes: [UInt8]) { FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

/// Some records of every kind.
func sampleRecords() throws -> [LogRecord] {
    let trial = try Trial(name: "t", version: "1.0", parameters: ["lr": 0.1, "layers": [64, 128]], description: "d",
                          tags: ["k": "v"], projectID: "p", groupID: "g")
    return [
        .projectCreated(Project(name: "p", description: "proj", metadata: ["owner": "alice", "nested": ["a": [1, 2.5, nil, true]]])),
        .groupCreated(TrialGroup(name: "g", projectID: "p", description: nil, metadata: ["x": 1])),
        .trialCreated(trial, autoIncrement: true),
        .trialAddedToProject(trial: trial.uid, project: "p"),
        .trialAddedToGroup(trial: trial.uid, group: "g"),
        .trialStarted(trial: trial.uid),
        .chronoStarted(trial: trial.uid, name: "epoch"),
        .chronoFinished(trial: trial.uid, name: "epoch"),
        .argumentsLogged(trial: trial.uid, ["epochs": 10]),
        .metadataLogged(trial: trial.uid, ["gpu": "V100", "nan": .double(.nan)]),
        .tagsAdded(trial: trial.uid, ["best": true]),
        .statusSet(trial: trial.uid, Status(name: "Queued", value: 42), error: "héllo 🚀"),
        .statusSet(trial: trial.uid, .completed, error: nil),
        .groupMetadataSet(group: "g", ["budget": -4]),
        .metricsLogged(trial: trial.uid, step: -3, ["conf": [1, 2], "count": 7]),
        .metricsLogged(trial: trial.uid, step: nil, ["text": "x"]),
        .trialFinished(trial: trial.uid),
    ]
}

/// True when `s` is 0, 1, 2, ... without gap.
func isContiguous(_ s: [UInt64]) -> Bool {
    s.enumerated().allSatisfy { $0.element == UInt64($0.offset) }
}
