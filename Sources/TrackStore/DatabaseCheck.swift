#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import TrackLog

/// What `DatabaseCheck.run` found, line by line in the order it checked.
public struct DatabaseCheckReport: Sendable {
    /// One finding.
    public struct Line: Sendable, Equatable {
        /// What kind of finding.
        public enum Kind: Sendable, Equatable {
            /// Damage: something unreadable, missing or inconsistent, with what is lost.
            case damaged
            /// Worth knowing, not damage (a torn tail past the durable prefix, a missing index, a
            /// torn sync marker).
            case note
            /// A loss a compaction was told to accept (`--accept-loss`), kept for ever.
            case lossAccepted
        }
        /// What kind of finding.
        public var kind: Kind
        /// The finding, with its file and offset.
        public var text: String
        /// For an accepted loss, when it was accepted (seconds since 1970).
        public var at: Double?

        /// A finding.
        public init(kind: Kind, text: String, at: Double? = nil) {
            self.kind = kind
            self.text = text
            self.at = at
        }
    }
    /// Every finding, in order.
    public var lines: [Line] = []
    /// Streams, segments and frames checked.
    public var streams = 0, segments = 0, frames = 0
    /// How many findings are damage.
    public var damageCount: Int { lines.filter { $0.kind == .damaged }.count }

    /// An empty report.
    public init() {}
}

/// Checks a whole database without changing it: every frame's checksum and decoding, sequence
/// continuity per stream from the generation readers use, the sync markers' durable prefixes,
/// indices against their segments, the MANIFEST (and the previous one, the fallback) and the
/// snapshots they name, and the streams a MANIFEST names. `track-replay verify` prints its report.
public enum DatabaseCheck {
    /// Checks the database at `database`; `progress` gets the bytes read so far and the total.
    /// Throws only when `database` is not a database; damage is in the report.
    public static func run(database: String, progress: ((Int64, Int64) -> Void)? = nil) throws(LogError) -> DatabaseCheckReport {
        let layout = DatabaseLayout(root: database)
        try layout.validate()
        var out = DatabaseCheckReport()
        var logLosses: [(HLC, String)] = []
        func report(_ line: String) { out.lines.append(.init(kind: .damaged, text: line)) }
        func note(_ line: String) { out.lines.append(.init(kind: .note, text: line)) }
        let total = (try? Compactor.diskBytes(layout)) ?? 1
        var done: Int64 = 0
        // Where each stream must start: 0, or the watermark of the generation readers use (the
        // newest that reads back: MANIFEST, else MANIFEST.prev); what lies before it is in the snapshot.
        let fallbackNotices = Notices()
        var generation: Compactor.Generation? = nil
        do {
            generation = try Compactor.loadGeneration(layout, reporter: fallbackNotices.add)
        } catch {
            report("\(error.path ?? layout.manifestPath): \(error.message); no compaction generation reads back, so what the snapshots held is lost")
        }
        let watermarks = Dictionary((generation?.manifest.watermarks ?? []).map { ($0.stream, $0) }, uniquingKeysWith: { a, _ in a })
        for stream in layout.streamNames() {
            // Read before the segments: what the marker calls durable was written before it.
            let markerProblems = Notices()
            let marker = SyncMarker.read(layout: layout, stream: stream, reporter: markerProblems.add)
            // The marker is never fsynced, so a power cut may tear it: not damage to data.
            for notice in markerProblems.all { note("\(notice.path): \(notice.message)") }
            let bases = layout.segmentBases(stream)
            let start = watermarks[stream]
            var expectedSequence: UInt64? = nil
            var expectedPath = "the stream's start"
            var reachedSequence: UInt64 = 0
            if bases.isEmpty, let marker, marker.nextSequence > (start?.sequence ?? 0) {
                report("\(layout.streamDirectory(stream)): no segment left, but the sync marker says events up to sequence \(marker.nextSequence) were durable; events \(start?.sequence ?? 0)..<\(marker.nextSequence) missing")
            }
            for (i, base) in bases.enumerated() {
                out.segments += 1
                let path = layout.segmentPath(stream, base: base)
                let bytes: [UInt8]
                do {
                    let file = try LogFile.open(path, flags: O_RDONLY)
                    bytes = try file.readAll()
                    file.close()
                } catch { report("\(path): cannot be read: \(error)"); continue }
                done += Int64(bytes.count)
                progress?(done, total)
                let scan = bytes.withUnsafeBytes { SegmentScanner.scan($0, path: path) }
                out.frames += scan.frames.count
                let isLast = i == bases.count - 1
                if case .failure(let e) = scan.header { report("\(path) offset 0: segment header: \(e.message)") }
                for d in scan.damage {
                    let next = scan.frames.first { $0.offset >= d.offset + d.length }?.header.firstSequence
                    let previous = scan.frames.last { $0.endOffset <= d.offset }?.header.endSequence ?? base
                    let lost = next.map { "\($0 - min($0, previous)) events lost (sequences \(previous)..<\($0))" } ?? "events lost"
                    if let start, let next, next <= start.sequence {
                        // Events the snapshot already holds: a damaged file, but nothing lost.
                        note("\(path) offset \(d.offset): \(d.reason); \(d.length) bytes unreadable, sequences \(previous)..<\(next), which the snapshot holds (nothing lost; the segment goes at a later compaction)")
                    } else {
                        report("\(path) offset \(d.offset): \(d.reason); \(d.length) bytes unreadable; \(lost)")
                    }
                }
                // The durable-prefix rule: what the sync marker calls fsynced is never a torn tail.
                let durableEnd = isLast ? marker.flatMap { $0.segmentBase == base ? $0.durableBytes : nil } ?? 0 : 0
                if durableEnd > scan.validEnd {
                    report("\(path) offset \(scan.validEnd): bytes up to \(durableEnd) were fsynced (sync marker) but do not read back (\(scan.tailReason ?? "the file is \(scan.fileSize) bytes")); damage to durable data")
                } else if scan.tornTailBytes > 0 {
                    if isLast {
                        note("\(path) offset \(scan.validEnd): torn tail of \(scan.tornTailBytes) bytes (\(scan.tailReason ?? "")) past the durable prefix, an unfinished write the next writer cuts")
                    } else {
                        report("\(path) offset \(scan.validEnd): \(scan.tornTailBytes) unreadable bytes at the end of a sealed segment (\(scan.tailReason ?? ""))")
                    }
                }
                // Every frame decodes, and checks what readers rely on.
                for location in scan.frames {
                    let start = Int(location.offset), end = Int(location.endOffset)
                    let result = bytes.withUnsafeBytes { raw in
                        Result { () throws(LogError) in
                            try Frame.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end]), at: location.offset, path: path, checksumVerified: true, records: .track)
                        }
                    }
                    if case .success(let frame) = result {
                        for event in frame.events { if case .lossAccepted(let text)? = event.record { logLosses.append((event.hlc, text)) } }
                    }
                    if case .failure(let error) = result {
                        report("\(path) offset \(location.offset): the frame passes its checksum but does not decode: \(error.message); sequences \(location.header.firstSequence)..<\(location.header.endSequence) unreadable")
                    }
                }
                // Sequences run on from 0 (or the watermark) without gaps, across segments.
                for location in scan.frames {
                    let first = location.header.firstSequence
                    let startSequence = start?.sequence ?? 0
                    // Frames wholly below the watermark are folded into the snapshot.
                    reachedSequence = max(reachedSequence, location.header.endSequence)
                    if expectedSequence == nil && start != nil && location.header.endSequence <= startSequence { continue }
                    let expected = expectedSequence ?? startSequence
                    if first > expected {
                        report("\(path) offset \(location.offset): stream \(stream) jumps from sequence \(expected) to \(first) after \(expectedPath); events \(expected)..<\(first) missing")
                    } else if first < expected && expectedSequence != nil {
                        report("\(path) offset \(location.offset): stream \(stream) repeats sequences \(first)..<\(expected) (the frame before ends at \(expected))")
                    }
                    expectedSequence = location.header.endSequence
                    expectedPath = "\(path) offset \(location.offset)"
                }
                if scan.frames.isEmpty, expectedSequence == nil, base > (start?.sequence ?? 0) {
                    report("\(path): the stream's first segment starts at sequence \(base), not at \(start?.sequence ?? 0); events \(start?.sequence ?? 0)..<\(base) missing")
                    expectedSequence = base
                } else if scan.frames.isEmpty, let expected = expectedSequence, base > expected {
                    report("\(path): the segment starts at sequence \(base), the one before ended at \(expected); events \(expected)..<\(base) missing")
                    expectedSequence = base
                }
                if isLast, let marker {
                    if marker.segmentBase > base {
                        report("\(layout.segmentPath(stream, base: marker.segmentBase)): missing; the sync marker says it held durable events up to sequence \(marker.nextSequence)")
                    } else if marker.segmentBase == base, marker.nextSequence > max(reachedSequence, base) {
                        report("\(path): the sync marker says events up to sequence \(marker.nextSequence) were durable, the segment ends at \(max(reachedSequence, base)); events \(max(reachedSequence, base))..<\(marker.nextSequence) missing")
                    }
                }
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
                                if !scan.damage.isEmpty {
                                    // It lists the frames as they were before the damage reported above.
                                    note("\(indexPath): lists \(listed.count) frames, \(scan.frames.count) read back (the damage above); derived data, rebuilt on the next read")
                                    continue
                                }
                                report("\(indexPath): does not match its segment (\(listed.count) frames listed, \(scan.frames.count) found); rebuilt on the next read")
                            }
                        }
                    } else {
                        note("\(indexPath) is missing (derived data: rebuilt on the next read)")
                    }
                }
            }
        }
        // Losses accepted by compaction are not damage any more, but they are never forgotten.
        var losses = generation?.projection.acceptedLosses ?? []
        for (hlc, text) in logLosses where !losses.contains(where: { $0.hlc == hlc && $0.text == text }) { losses.append((hlc, text)) }
        for loss in losses.sorted(by: { $0.hlc < $1.hlc }) { out.lines.append(.init(kind: .lossAccepted, text: loss.text, at: loss.hlc.seconds)) }
        if let generation {
            let manifest = generation.manifest
            let used = generation.source == .previous ? layout.previousManifestPath : layout.manifestPath
            if generation.source == .previous {
                // Readers fall back to the previous generation: nothing is lost, but the newest file is damaged.
                let why = fallbackNotices.all.first.map(\.message) ?? "MANIFEST is missing"
                report("\(layout.manifestPath): \(why) (nothing lost: readers use \(layout.previousManifestPath), generation \(manifest.generation), and the log after it)")
            } else if FileSystem.exists(layout.previousManifestPath) {
                // The previous generation is the fallback: it must read too.
                do {
                    let previous = try Manifest.decode(Array(FileManager.default.contents(atPath: layout.previousManifestPath) ?? Data()), path: layout.previousManifestPath)
                    let path = layout.snapshotPath(previous.snapshotName)
                    if let data = FileManager.default.contents(atPath: path) {
                        do { _ = try Snapshot.decode(Array(data), path: path) } catch { report("\(path) (previous generation): \(error)") }
                    } else {
                        report("\(layout.previousManifestPath): names snapshot \(previous.snapshotName), which is missing")
                    }
                } catch {
                    report("\(layout.previousManifestPath): \(error)")
                }
            }
            for w in manifest.watermarks where !FileSystem.isDirectory(layout.streamDirectory(w.stream)) {
                report("\(layout.streamDirectory(w.stream)): stream \(w.stream), which \(used) names, is missing; every event it held from sequence \(w.sequence) on is lost")
            }
        }
        out.streams = layout.streamNames().count
        return out
    }
}

/// Notices a reporter collected.
private final class Notices: Sendable {
    private let list = Mutex<[LogNotice]>([])
    /// The reporter.
    var add: LogReporter { { [self] n in list.withLock { $0.append(n) } } }
    /// What was reported.
    var all: [LogNotice] { list.withLock { $0 } }
}
