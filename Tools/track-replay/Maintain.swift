import ArgumentParser
import Foundation
import Track
import TrackLog

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
        var damaged = 0
        var frames = 0, segments = 0
        func report(_ line: String) { print("DAMAGED " + line); damaged += 1 }
        let bar = ProgressBar("verifying", total: (try? Compactor.diskBytes(layout)) ?? 1)
        var done: Int64 = 0
        for stream in layout.streamNames() {
            let bases = layout.segmentBases(stream)
            var expectedSequence: UInt64? = nil
            for (i, base) in bases.enumerated() {
                segments += 1
                let path = layout.segmentPath(stream, base: base)
                let bytes: [UInt8]
                do {
                    let file = try LogFile.open(path, flags: O_RDONLY)
                    bytes = try file.readAll()
                    file.close()
                } catch { report("\(path): cannot be read: \(error)"); continue }
                done += Int64(bytes.count)
                bar.update(done)
                let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: path) }
                frames += scan.frames.count
                if case .failure(let e) = scan.header { report("\(path) offset 0: segment header: \(e.message)") }
                for d in scan.damage {
                    let next = scan.frames.first { $0.offset >= d.offset + d.length }?.header.firstSequence
                    let previous = scan.frames.last { $0.endOffset <= d.offset }?.header.endSequence ?? base
                    let lost = next.map { "\($0 - previous) events lost (sequences \(previous)..<\($0))" } ?? "events lost"
                    report("\(path) offset \(d.offset): \(d.reason); \(d.length) bytes unreadable; \(lost)")
                }
                if scan.tornTailBytes > 0 {
                    if i == bases.count - 1 {
                        print("note: \(path) offset \(scan.validEnd): torn tail of \(scan.tornTailBytes) bytes (\(scan.tailReason ?? "")), an unfinished write the next writer cuts")
                    } else {
                        report("\(path) offset \(scan.validEnd): \(scan.tornTailBytes) unreadable bytes at the end of a sealed segment (\(scan.tailReason ?? ""))")
                    }
                }
                // Sequences run on without gaps between segments.
                if let first = scan.frames.first?.header.firstSequence, let expected = expectedSequence, first != expected, scan.damage.isEmpty {
                    report("\(path): sequences jump from \(expected) to \(first); \(first > expected ? first - expected : 0) events missing")
                }
                if let last = scan.frames.last?.header.endSequence { expectedSequence = last }
                // A sealed segment's index must match it.
                if i < bases.count - 1 {
                    let indexPath = layout.indexPath(stream, base: base)
                    if let data = FileManager.default.contents(atPath: indexPath) {
                        switch Array(data).withUnsafeBytes({ SegmentIndex.decode($0, path: indexPath) }) {
                        case .failure(let e):
                            report("\(indexPath): \(e.message) (derived data: rebuilt from the segment on the next read)")
                        case .success(let index):
                            let listed = index.entries.map(\.location)
                            if listed != scan.frames || index.segmentBytes != Int64(bytes.count) {
                                report("\(indexPath): does not match its segment (\(listed.count) frames listed, \(scan.frames.count) found); rebuilt on the next read")
                            }
                        }
                    } else {
                        print("note: \(indexPath) is missing (derived data: rebuilt on the next read)")
                    }
                }
            }
        }
        bar.finish()
        do {
            if let manifest = try Compactor.readManifest(layout) {
                let path = layout.snapshotPath(manifest.snapshotName)
                if let data = FileManager.default.contents(atPath: path) {
                    do { _ = try Snapshot.decode(Array(data), path: path) } catch { report("\(path): \(error)") }
                } else {
                    report("\(layout.manifestPath): names snapshot \(manifest.snapshotName), which is missing")
                }
                for w in manifest.watermarks where !FileSystem.isDirectory(layout.streamDirectory(w.stream)) {
                    report("\(layout.manifestPath): stream \(w.stream) is missing")
                }
            }
        } catch {
            report("\(layout.manifestPath): \(error)")
        }
        print("\(streamsLine(layout)): \(segments) segments, \(frames) frames checked; \(damaged == 0 ? "no damage" : "\(damaged) problems")")
        if damaged > 0 { throw ExitCode(1) }
    }

    private func streamsLine(_ layout: DatabaseLayout) -> String { "\(layout.streamNames().count) streams" }
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

    func run() throws {
        let report: Compactor.Report
        let layout = DatabaseLayout(root: database)
        do { try layout.validate() } catch { throw ToolError("\(error)") }
        var limits: [String: (base: UInt64, offset: Int64)]?
        if ShipPosition.isBuffer(database) {
            limits = ShipPosition.read(database)
            print("\(database) is a SQL backend's buffer: compacting up to what it has shipped (\(limits?.count ?? 0) streams in \(ShipPosition.fileName))")
        }
        let bar = ProgressBar("compacting", total: (try? Compactor.diskBytes(layout)) ?? 1)
        do {
            report = try Compactor.compact(database: database, upTo: limits, reporter: { warn("warning: \($0)") }, progress: { done, _ in bar.update(done) })
        } catch {
            bar.finish()
            throw ToolError("\(error)")
        }
        bar.finish()
        let saved = report.bytesBefore > 0 ? 100 - Double(report.bytesAfter) * 100 / Double(report.bytesBefore) : 0
        print("compacted \(database): \(byteCount(report.bytesBefore)) before, \(byteCount(report.bytesAfter)) after (\(String(format: "%.0f", saved))% smaller)")
        print("snapshot generation \(report.generation): \(report.events) events, \(report.points) metric points, \(byteCount(report.snapshotBytes)); \(report.segmentsDeleted) segments deleted")
    }
}
