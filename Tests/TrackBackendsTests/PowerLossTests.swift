import Foundation
import Testing
import TrackBackends
import TrackLog
import TrackModel

/// A model of what a power cut can leave of a run's file-system calls (as ALICE and CrashMonkey
/// do): file contents reach the disk only when the file is fsynced, directory entries only when
/// their directory is fsynced; anything not yet synced may or may not be there, writes torn at
/// sector boundaries.
struct CrashDisk {
    /// One change not yet made durable.
    enum Pending {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }
    /// A namespace change of a directory not yet made durable.
    enum Entry {
        case link(name: String, inode: Int)
        case unlink(name: String)
    }

    var durableData: [Int: [UInt8]] = [:]
    var pendingData: [Int: [Pending]] = [:]
    /// Directory path → name → inode (-1: a directory).
    var durableNames: [String: [String: Int]] = [:]
    var volatileNames: [String: [String: Int]] = [:]
    var pendingNames: [String: [Entry]] = [:]
    var nextInode = 0

    init(root: String) {
        durableNames[root] = [:]
        volatileNames[root] = [:]
    }

    static func split(_ path: String) -> (String, String) {
        let i = path.lastIndex(of: "/")!
        return (String(path[..<i]), String(path[path.index(after: i)...]))
    }

    func inode(_ path: String) -> Int? {
        let (dir, name) = Self.split(path)
        return volatileNames[dir]?[name]
    }

    mutating func link(_ path: String, _ inode: Int) {
        let (dir, name) = Self.split(path)
        volatileNames[dir, default: [:]][name] = inode
        pendingNames[dir, default: []].append(.link(name: name, inode: inode))
    }

    mutating func unlink(_ path: String) {
        let (dir, name) = Self.split(path)
        volatileNames[dir]?[name] = nil
        pendingNames[dir, default: []].append(.unlink(name: name))
    }

    /// Applies one recorded call.
    mutating func apply(_ event: IOEvent) {
        switch event.kind {
        case .mkdir:
            link(event.path, -1)
            volatileNames[event.path] = [:]
            if durableNames[event.path] == nil { durableNames[event.path] = [:] }
        case .create:
            if let existing = inode(event.path), existing >= 0 {
                pendingData[existing, default: []].append(.truncate(0))
            } else {
                let id = nextInode
                nextInode += 1
                durableData[id] = []
                link(event.path, id)
            }
        case .write(let offset, let bytes):
            guard let id = inode(event.path) else { return }
            pendingData[id, default: []].append(.write(offset: Int(offset), bytes: bytes))
        case .truncate(let length):
            guard let id = inode(event.path) else { return }
            pendingData[id, default: []].append(.truncate(Int(length)))
        case .fsync:
            if volatileNames[event.path] != nil {
                // A directory: its entries as they are now become durable.
                durableNames[event.path] = volatileNames[event.path]
                pendingNames[event.path] = []
            } else if let id = inode(event.path) {
                for p in pendingData[id] ?? [] { Self.applyData(p, to: &durableData[id, default: []]) }
                pendingData[id] = []
            }
        case .rename(let to):
            guard let id = inode(event.path) else { return }
            unlink(event.path)
            link(to, id)
        case .unlink:
            unlink(event.path)
        }
    }

    static func applyData(_ p: Pending, to data: inout [UInt8]) {
        switch p {
        case .write(let offset, let bytes):
            if data.count < offset + bytes.count { data += [UInt8](repeating: 0, count: offset + bytes.count - data.count) }
            data.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        case .truncate(let length):
            if data.count > length { data.removeSubrange(length...) } else { data += [UInt8](repeating: 0, count: length - data.count) }
        }
    }

    /// A disk a power cut could leave: every durable change, plus a random choice of the others
    /// (a prefix of each directory's entry changes; any subset of each file's writes, each torn
    /// at 512-byte sectors), written out under `target` in place of `root`.
    func materialize(root: String, into target: String, random: inout SeededRandom) throws {
        var names = durableNames
        for (dir, entries) in pendingNames {
            let keep = entries.isEmpty ? 0 : Int(random.next() % UInt64(entries.count + 1))
            for entry in entries.prefix(keep) {
                switch entry {
                case .link(let name, let inode): names[dir, default: [:]][name] = inode
                case .unlink(let name): names[dir]?[name] = nil
                }
            }
        }
        var data = durableData
        for (id, pending) in pendingData {
            for p in pending where random.next() % 2 == 0 {
                if case .write(let offset, let bytes) = p, bytes.count > 512, random.next() % 3 == 0 {
                    // A torn write: only some of its sectors.
                    let sectors = (bytes.count + 511) / 512
                    for s in 0..<sectors where random.next() % 2 == 0 {
                        let start = s * 512, end = min(bytes.count, start + 512)
                        Self.applyData(.write(offset: offset + start, bytes: Array(bytes[start..<end])), to: &data[id, default: []])
                    }
                } else {
                    Self.applyData(p, to: &data[id, default: []])
                }
            }
        }
        // Write out what is reachable from the root.
        func build(_ dir: String, _ out: String) throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (name, inode) in names[dir] ?? [:] {
                if inode < 0 {
                    try build(dir + "/" + name, out + "/" + name)
                } else {
                    FileManager.default.createFile(atPath: out + "/" + name, contents: Data(data[inode] ?? []))
                }
            }
        }
        try build(root, target)
    }
}

@Suite("simulated power loss", .serialized)
struct PowerLossTests {
    @Test("PowerCutAtAnyPointLosesNothingCommitted: hundreds of cut points of a logging and compacting run recover with every committed point, nothing invented")
    func powerCuts() throws {
        let dir = ScratchDirectory()
        let root = dir.path + "/disk"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let db = root + "/db"
        // The run, recorded: after each commit, how many points are committed, and at which call.
        IOFaults.startRecording(pathPrefix: root)
        var commits: [(event: Int, points: Int)] = []
        var recorded: [IOEvent] = []
        do {
            let backend = try EventLogBackend(path: db, durability: .buffered, segmentBytes: 4096, reporter: { _ in })
            _ = try backend.newProject(Project(name: "p"))
            let trial = try #require(try backend.newTrial(Trial(name: "t", projectID: "p")))
            try backend.commit()
            var logged = 0
            for round in 0..<12 {
                for _ in 0..<40 {
                    try backend.logTrialMetric(trial.uid, name: "loss", step: Int64(logged), value: Double(logged) * 0.5)
                    logged += 1
                }
                try backend.commit()
                commits.append((IOFaults.recordedCount, logged))
                if round % 4 == 3 {
                    try backend.compact()
                    commits.append((IOFaults.recordedCount, logged))
                }
            }
            try backend.close()
            recorded = IOFaults.stopRecording()
        } catch {
            _ = IOFaults.stopRecording()
            throw error
        }
        try #require(recorded.count > 50)
        let trialUID = try #require(try Trial(name: "t", projectID: "p").uid as String?)

        var random = SeededRandom(seed: 7)
        let cuts = 300 * crashScalePowerLoss
        var checked = 0
        for c in 0..<cuts {
            let cut = c == 0 ? recorded.count : Int(random.next() % UInt64(recorded.count + 1))
            var disk = CrashDisk(root: dir.path)
            disk.volatileNames[dir.path] = ["disk": -1]
            disk.durableNames[dir.path] = ["disk": -1]
            disk.volatileNames[root] = [:]
            disk.durableNames[root] = [:]
            for event in recorded.prefix(cut) { disk.apply(event) }
            let image = dir.path + "/image\(c)"
            let imageRoot = image
            try disk.materialize(root: root, into: imageRoot, random: &random)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let committedPoints = commits.last { $0.event <= cut }?.points ?? -1
            let imageDB = imageRoot + "/db"
            guard FileManager.default.fileExists(atPath: imageDB + "/FORMAT") else {
                #expect(committedPoints < 0, "cut \(cut): the database vanished after \(committedPoints) points were committed")
                continue
            }
            // It opens (recovering as a writer does) and holds every committed point, each once,
            // each with the value logged: nothing invented.
            let notices = Notices()
            let backend: EventLogBackend
            do {
                backend = try EventLogBackend(path: imageDB, reporter: notices.reporter)
            } catch {
                Issue.record("cut \(cut) of \(recorded.count): the database does not open: \(error)")
                continue
            }
            let trial = try backend.getTrial(uid: trialUID)
            if committedPoints >= 0 {
                #expect(trial != nil, "cut \(cut): the committed trial is gone")
            }
            let points = trial?.metrics["loss"]?.points ?? []
            let steps = points.compactMap(\.step?.intValue)
            #expect(Set(steps).count == steps.count, "cut \(cut): a point twice")
            for p in points { #expect(p.value == .double(Double(p.step?.intValue ?? -1) * 0.5), "cut \(cut): a point that was never logged: \(p)") }
            if committedPoints > 0 {
                let present = Set(steps)
                let missing = (0..<committedPoints).filter { !present.contains(Int64($0)) }
                #expect(missing.isEmpty, "cut \(cut) of \(recorded.count): \(missing.count) of \(committedPoints) committed points lost; notices \(notices.all)")
            }
            #expect(!notices.all.contains { $0.kind == .damage }, "cut \(cut): damage reported after a power cut: \(notices.all)")
            try backend.close()
            checked += 1
        }
        #expect(checked > cuts / 2)
    }
}

/// How many times more cut points `make crash` asks for (CRASH_SCALE).
let crashScalePowerLoss = max(1, Int(ProcessInfo.processInfo.environment["CRASH_SCALE"] ?? "1") ?? 1)
