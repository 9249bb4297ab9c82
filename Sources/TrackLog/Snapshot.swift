#if canImport(Glibc)
import Glibc
#endif

/// Where a stream's replay resumes after a snapshot: every event below `sequence` is in the
/// snapshot; the first frame not in it starts at `offset` of segment `base`.
public struct StreamWatermark: Sendable, Equatable {
    /// The stream.
    public var stream: String
    /// Events below this sequence are in the snapshot.
    public var sequence: UInt64
    /// The segment holding the next frame.
    public var base: UInt64
    /// The byte offset of the next frame in that segment.
    public var offset: Int64

    /// A watermark of `stream`.
    public init(stream: String, sequence: UInt64, base: UInt64, offset: Int64) {
        self.stream = stream
        self.sequence = sequence
        self.base = base
        self.offset = offset
    }
}

/// The published state of compaction (docs/FORMAT.md, "MANIFEST"): which snapshot is current
/// and each stream's watermark. Replaced atomically (temporary file, fsync, rename).
///
/// ```
/// magic "TKMANIF1" (8), format version u16, reserved u16, reserved u32, generation u64,
/// snapshot file name (u32 length + UTF-8), stream count u32,
/// per stream: name (u32 length + UTF-8), sequence u64, segment base u64, offset u64,
/// CRC32C u32 of everything before it
/// ```
public struct Manifest: Sendable, Equatable {
    /// The first eight bytes of a MANIFEST.
    public static let magic: UInt64 = 0x3146_494E_414D_4B54  // "TKMANIF1"
    /// The MANIFEST format this build writes and reads.
    public static let formatVersion: UInt16 = 1

    /// Increases with every compaction.
    public var generation: UInt64
    /// The snapshot file's name in `<db>/snapshots/`.
    public var snapshotName: String
    /// Per stream, where replay resumes.
    public var watermarks: [StreamWatermark]

    /// A manifest of `generation`.
    public init(generation: UInt64, snapshotName: String, watermarks: [StreamWatermark]) {
        self.generation = generation
        self.snapshotName = snapshotName
        self.watermarks = watermarks
    }

    /// The file's bytes.
    public func encode() -> [UInt8] {
        let b = EncodeBuffer(capacity: 256)
        b.appendFixed(Manifest.magic)
        b.appendFixed(Manifest.formatVersion)
        b.appendFixed(UInt16(0))
        b.appendFixed(UInt32(0))
        b.appendFixed(generation)
        appendFixedString(snapshotName, b)
        b.appendFixed(UInt32(watermarks.count))
        for w in watermarks {
            appendFixedString(w.stream, b)
            b.appendFixed(w.sequence)
            b.appendFixed(w.base)
            b.appendFixed(UInt64(w.offset))
        }
        b.appendFixed(CRC32C.checksum(b.bytes))
        return b.toArray()
    }

    /// Reads a MANIFEST; the error says what is wrong.
    public static func decode(_ bytes: [UInt8], path: String) throws(LogError) -> Manifest {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(LogError) in try decode(raw, path: path) } }
        return try result.get()
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, path: String) throws(LogError) -> Manifest {
        func fail(_ why: String) -> LogError { LogError(.corruptFile, "MANIFEST unusable: \(why)", path: path) }
        var (r, _) = try ChecksummedFile.open(raw, what: "MANIFEST", path: path, minimumBytes: 32, magic: magic, versions: formatVersion...formatVersion)
        _ = try r.fixed(UInt32.self)
        let generation = try r.fixed(UInt64.self)
        let name = try readFixedString(&r)
        let count = Int(try r.fixed(UInt32.self))
        guard count <= r.remaining / 28 else { throw fail("stream count exceeds the file") }
        var watermarks: [StreamWatermark] = []
        for _ in 0..<count {
            let stream = try readFixedString(&r)
            let sequence = try r.fixed(UInt64.self), base = try r.fixed(UInt64.self), offset = try r.fixed(UInt64.self)
            // Every number read from a file is checked before it is converted: none may trap.
            guard offset <= UInt64(Limits.segmentBytesMax) else { throw fail("stream '\(stream.prefix(80))' has an impossible watermark offset \(offset)") }
            watermarks.append(StreamWatermark(stream: stream, sequence: sequence, base: base, offset: Int64(offset)))
        }
        guard r.isAtEnd else { throw fail("trailing bytes") }
        return Manifest(generation: generation, snapshotName: name, watermarks: watermarks)
    }
}

package func appendFixedString(_ s: String, _ b: EncodeBuffer) {
    let utf8 = Array(s.utf8)
    b.appendFixed(UInt32(utf8.count))
    utf8.withUnsafeBytes { b.append($0) }
}

package func readFixedString(_ r: inout ByteReader) throws(LogError) -> String {
    let n = Int(try r.fixed(UInt32.self))
    guard n <= r.remaining else { throw r.malformed("string runs past the end") }
    let s = String(decoding: UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<r.position + n]), as: UTF8.self)
    r.position += n
    return s
}

/// A snapshot file (docs/FORMAT.md, "Snapshots"): a body of bytes in LZ4 chunks, with the
/// generation it belongs to. What the body holds is its writer's business (the store module's
/// projection); the engine only frames, compresses and checks it.
///
/// ```
/// header (32 bytes): magic "TKSNAP01" (8), format version u16, reserved u16, chunk count u32,
///                    generation u64, raw body bytes u64
/// chunks:            per chunk: raw bytes u32, stored bytes u32, flags u32 (bit 0: LZ4), stored bytes
/// trailer:           CRC32C u32 of everything before it
/// ```
public enum SnapshotFile {
    /// The first eight bytes of a snapshot file.
    public static let magic: UInt64 = 0x3130_5041_4E53_4B54  // "TKSNAP01"
    static let chunkBytes = 16 << 20

    /// The file's bytes for `body`, stamped with the body's format `version`.
    public static func encode(body: UnsafeRawBufferPointer, version: UInt16, generation: UInt64) -> [UInt8] {
        let out = EncodeBuffer(capacity: body.count / 2 + 64)
        out.appendFixed(magic)
        out.appendFixed(version)
        out.appendFixed(UInt16(0))
        let chunkCount = (body.count + chunkBytes - 1) / chunkBytes
        out.appendFixed(UInt32(chunkCount))
        out.appendFixed(generation)
        out.appendFixed(UInt64(body.count))
        var start = 0
        while start < body.count {
            let end = min(body.count, start + chunkBytes)
            let raw = UnsafeRawBufferPointer(rebasing: body[start..<end])
            let compressed = LZ4.compress(raw)
            let useLZ4 = compressed.count < raw.count
            out.appendFixed(UInt32(raw.count))
            out.appendFixed(UInt32(useLZ4 ? compressed.count : raw.count))
            out.appendFixed(UInt32(useLZ4 ? 1 : 0))
            if useLZ4 { compressed.withUnsafeBytes { out.append($0) } } else { out.append(raw) }
            start = end
        }
        out.appendFixed(CRC32C.checksum(out.bytes))
        return out.toArray()
    }

    /// The body of a snapshot file and its format version, after checking its checksum, magic,
    /// a version within `versions`, and that its chunks add up; `corruptFile` naming `path`
    /// otherwise.
    public static func decode(_ raw: UnsafeRawBufferPointer, path: String, versions: ClosedRange<UInt16>) throws(LogError) -> (version: UInt16, body: [UInt8]) {
        func fail(_ why: String) -> LogError { LogError(.corruptFile, "snapshot unusable: \(why)", path: path) }
        let opened = try ChecksummedFile.open(raw, what: "snapshot", path: path, minimumBytes: 36, magic: magic, versions: versions)
        var r = opened.reader
        do {
            let chunks = Int(try r.fixed(UInt32.self))
            _ = try r.fixed(UInt64.self)
            let rawSize = try r.fixed(UInt64.self)
            guard rawSize <= 1 << 40 else { throw fail("implausible size \(rawSize)") }
            let rawBytes = Int(rawSize)
            guard chunks <= r.remaining / 12, rawBytes <= chunks * chunkBytes else { throw fail("chunk count \(chunks) does not fit the file or the size") }
            var body: [UInt8] = []
            body.reserveCapacity(min(rawBytes, raw.count * 256))
            for _ in 0..<chunks {
                let rawCount = Int(try r.fixed(UInt32.self)), storedCount = Int(try r.fixed(UInt32.self)), flags = try r.fixed(UInt32.self)
                guard storedCount <= r.remaining else { throw fail("chunk runs past the end") }
                guard rawCount <= chunkBytes, body.count + rawCount <= rawBytes else { throw fail("a chunk of \(rawCount) bytes does not fit the snapshot's size") }
                let piece = UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<r.position + storedCount])
                r.position += storedCount
                if flags & 1 != 0 {
                    do { body += try LZ4.decompress(piece, rawCount: rawCount) } catch { throw fail("\(error)") }
                } else {
                    guard rawCount == storedCount else { throw fail("stored chunk sizes differ") }
                    body += Array(piece)
                }
            }
            guard body.count == rawBytes, r.isAtEnd else { throw fail("sizes do not add up") }
            return (opened.version, body)
        } catch {
            let e = (error as? LogError) ?? LogError(.corruptFile, "\(error)")
            if e.code == .corruptFile { throw e }
            throw fail(e.message)
        }
    }
}
