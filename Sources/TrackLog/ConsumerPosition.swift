#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A consumer's position in the log (`SHIP.position`, docs/FORMAT.md section 16): per stream,
/// the segment base and byte offset before which a process that passes the log on (the SQL
/// backend's shipper) has read every frame and handed every event on. While the consumer's lock
/// file (`SHIP.lock`) exists the database is pinned: compaction folds nothing past the position
/// (`Compactor.compact` reads it itself), or events not yet passed on would be folded into a
/// snapshot without their sequence numbers. The event log knows nothing of what the consumer
/// does with the events.
public enum ConsumerPosition {
    /// The position file's name inside the database folder.
    public static let fileName = "SHIP.position"
    /// The consumer's lock file's name (one consuming process per database).
    public static let lockName = "SHIP.lock"

    /// Whether a consumer pins the database at `database` (a SQL backend's buffer).
    public static func isPinned(_ database: String) -> Bool { FileSystem.exists(database + "/" + lockName) }

    /// The saved position; empty when there is none or it cannot be read (it is a hint: a
    /// consumer then rereads the log, and a compaction folds nothing).
    public static func read(_ database: String) -> [String: (base: UInt64, offset: Int64)] {
        guard let file = try? LogFile.open(database + "/" + fileName, flags: O_RDONLY), let bytes = try? file.readAll() else { return [:] }
        file.close()
        guard let file = try? JSONDecoder().decode(PositionFile.self, from: Data(bytes)) else { return [:] }
        var positions: [String: (base: UInt64, offset: Int64)] = [:]
        for s in file.streams {
            guard let stream = s.stream, let base = s.base, let offset = s.offset,
                  base >= 0, offset >= Int64(SegmentHeader.sizeBytes) else { continue }
            positions[stream] = (UInt64(base), offset)
        }
        return positions
    }

    /// Saves `positions` (a temporary file, synced, then renamed over the old one).
    public static func write(_ positions: [String: (base: UInt64, offset: Int64)], to database: String) throws(LogError) {
        let streams = positions.sorted { $0.key < $1.key }.map {
            PositionFile.Entry(stream: $0.key, base: Int64(bitPattern: $0.value.base), offset: $0.value.offset)
        }
        let text: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            text = try encoder.encode(PositionFile(streams: streams))
        } catch {
            throw LogError(.invalidArgument, "consumer position does not encode: \(error)", path: database + "/" + fileName)
        }
        let path = database + "/" + fileName
        let file = try LogFile.open(path + ".tmp", flags: O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try file.write(Array(text) + [0x0A], at: 0)
            try file.sync()
        } catch {
            file.close()
            throw error
        }
        file.close()
        try FileSystem.rename(path + ".tmp", to: path)
    }
}

/// `SHIP.position`'s JSON: `{"streams": [{"base": …, "offset": …, "stream": "…"}, …]}`. An entry
/// with a missing or mistyped field is skipped on reading, not the whole file.
private struct PositionFile: Codable {
    struct Entry: Codable {
        var stream: String?
        var base: Int64?
        var offset: Int64?

        init(stream: String, base: Int64, offset: Int64) {
            self.stream = stream
            self.base = base
            self.offset = offset
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            stream = try? c.decode(String.self, forKey: .stream)
            base = try? c.decode(Int64.self, forKey: .base)
            offset = try? c.decode(Int64.self, forKey: .offset)
        }
    }
    var streams: [Entry]
}
