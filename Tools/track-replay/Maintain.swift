import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackStore
import Synchronization

/// `track-replay verify DB`.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every frame's checksum, every index against its segment, and the MANIFEST.",
        discussion: "Prints what is damaged, where (file and offset) and what is lost, and exits with status 1 when anything is damaged. A torn tail in the last segment of a stream (a write a crash cut short) is reported but is not damage: the next writer cuts it.")

    @Argument(help: "The database directory.")
    var database: String

    func run() throws {
        let layout = DatabaseLayout(root: database)
        do { try layout.validate() } catch { throw ToolError("\(error)") }
        let bar = ProgressBar("verifying", total: (try? Compactor.diskBytes(layout)) ?? 1)
        let report: DatabaseCheckReport
        do {
            report = try DatabaseCheck.run(database: database) { done, _ in bar.update(done) }
        } catch {
            bar.finish()
            throw ToolError("\(error)")
        }
        bar.finish()
        for line in report.lines {
            switch line.kind {
            case .damaged: print("DAMAGED " + line.text)
            case .note: print("note: " + line.text)
            case .lossAccepted: print("LOSS ACCEPTED at \(isoTime(line.at ?? 0)): \(line.text)")
            }
        }
        let damaged = report.damageCount
        print("\(report.streams) streams: \(report.segments) segments, \(report.frames) frames checked; \(damaged == 0 ? "no damage" : "\(damaged) problems")")
        if damaged > 0 { throw ExitCode(1) }
    }

}

/// `track-replay compact DB`.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a snapshot, publish it in MANIFEST and delete the segments it covers.",
        discussion: """
            Safe while training processes keep writing, and from any process. A cockroach:// or \
            postgres:// buffer (a database holding SHIP.lock) is compacted only up to what it has \
            shipped (SHIP.position): its unshipped events stay in the log.
            """)

    @Argument(help: "The database directory.")
    var database: String

    @Flag(help: "Compact even though the database is damaged: record what was lost (verify, stats and summary show it) and fold what reads. Without it, damage refuses the compaction.")
    var acceptLoss = false

    @Flag(help: "Write a snapshot even when no segment could be deleted, now or by a later compaction (every event is still in the active segment of its stream): it then only adds the snapshot, which speeds up opening.")
    var force = false

    func run() throws {
        let report: Compactor.Report
        let layout = DatabaseLayout(root: database)
        do { try layout.validate() } catch { throw ToolError("\(error)") }
        if !force, let reason = nothingToFold() {
            print("nothing to compact in \(database): \(reason)")
            return
        }
        var limits: [String: (base: UInt64, offset: Int64)]?
        if ConsumerPosition.isPinned(database) {
            limits = ConsumerPosition.read(database)
            print("\(database) is a SQL backend's buffer: compacting up to what it has shipped (\(limits?.count ?? 0) streams in \(ConsumerPosition.fileName))")
        }
        let bar = ProgressBar("compacting", total: (try? Compactor.diskBytes(layout)) ?? 1)
        do {
            report = try Compactor.compact(database: database, upTo: limits, acceptLoss: acceptLoss, reporter: { warn("warning: \($0)") },
                                           progress: { done, _ in bar.update(done) })
        } catch {
            bar.finish()
            throw ToolError("\(error)")
        }
        bar.finish()
        let change: String
        if report.bytesAfter > report.bytesBefore {
            // The first snapshot is kept next to the segments it covers: they are deleted only by
            // the next compaction (the previous generation stays readable until then).
            change = "\(byteCount(report.bytesAfter - report.bytesBefore)) more: the snapshot is written next to the segments it covers, which the next compaction deletes"
        } else {
            let saved = report.bytesBefore > 0 ? 100 - Double(report.bytesAfter) * 100 / Double(report.bytesBefore) : 0
            change = "\(String(format: "%.0f", saved))% smaller"
        }
        print("compacted \(database): \(byteCount(report.bytesBefore)) before, \(byteCount(report.bytesAfter)) after (\(change))")
        print("snapshot generation \(report.generation): \(report.events) events, \(report.points) metric points, \(byteCount(report.snapshotBytes)); \(report.segmentsDeleted) segments deleted")
    }

    /// Why compacting now would only add a snapshot, or nil when it can fold something: every
    /// stream still has a single (active) segment, so no segment can be deleted now or later.
    private func nothingToFold() -> String? {
        let layout = DatabaseLayout(root: database)
        let streams = layout.streamNames()
        guard !streams.isEmpty, streams.allSatisfy({ layout.segmentBases($0).count <= 1 }) else { return nil }
        let size = (try? Compactor.diskBytes(layout)) ?? 0
        return "every event is still in the active segment of its stream (\(byteCount(size)) in all), and compaction deletes sealed segments (\(byteCount(Limits.segmentBytesDefault)) each by default), so it would only add a snapshot and grow the database. --force writes one anyway (it speeds up opening)."
    }
}

