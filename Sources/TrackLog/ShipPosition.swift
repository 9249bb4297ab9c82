#if canImport(Glibc)
import Glibc
#endif
import TrackModel

/// A buffer's shipping position (`SHIP.position`, docs/FORMAT.md section 16): per stream, the
/// segment base and byte offset before which a shipper has read every frame and shipped every
/// event to a SQL database. A database holding `SHIP.lock` is such a buffer; it may be compacted
/// only up to this position (`Compactor.compact(database:upTo:)`), or unshipped events would be
/// folded into a snapshot without their sequence numbers.
public enum ShipPosition {
    /// The position file's name inside the database folder.
    public static let fileName = "SHIP.position"
    /// The shipper's lock file's name (one shipping process per buffer).
    public static let lockName = "SHIP.lock"

    /// Whether the database at `database` is a SQL backend's buffer.
    public static func isBuffer(_ database: String) -> Bool { FileSystem.exists(database + "/" + lockName) }

    /// The saved position; empty when there is none or it cannot be read (it is a hint: a
    /// shipper then rereads the buffer, and a compaction folds nothing).
    public static func read(_ database: String) -> [String: (base: UInt64, offset: Int64)] {
        guard let file = try? LogFile.open(database + "/" + fileName, flags: O_RDONLY), let bytes = try? file.readAll() else { return [:] }
        file.close()
        guard let value = try? JSON.decode(String(decoding: bytes, as: UTF8.self)), let streams = value["streams"]?.arrayValue else { return [:] }
        var positions: [String: (base: UInt64, offset: Int64)] = [:]
        for s in streams {
            guard let stream = s["stream"]?.stringValue, let base = s["base"]?.intValue, let offset = s["offset"]?.intValue,
                  base >= 0, offset >= Int64(SegmentHeader.sizeBytes) else { continue }
            positions[stream] = (UInt64(base), offset)
        }
        return positions
    }

    /// Saves `positions` (a temporary file, synced, then renamed over the old one).
    public static func write(_ positions: [String: (base: UInt64, offset: Int64)], to database: String) throws(LogError) {
        let streams = positions.sorted { $0.key < $1.key }.map { entry -> Value in
            .object(["stream": .string(entry.key), "base": .int(Int64(entry.value.base)), "offset": .int(entry.value.offset)])
        }
        let path = database + "/" + fileName
        let file = try LogFile.open(path + ".tmp", flags: O_WRONLY | O_CREAT | O_TRUNC)
        do {
            try file.write(Array((JSON.encode(.object(["streams": .array(streams)])) + "\n").utf8), at: 0)
            try file.sync()
        } catch {
            file.close()
            throw error
        }
        file.close()
        try FileSystem.rename(path + ".tmp", to: path)
    }
}
