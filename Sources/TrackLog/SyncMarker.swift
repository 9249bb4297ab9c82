#if canImport(Glibc)
import Glibc
#endif

/// How far a stream's active segment is known to be durable (docs/FORMAT.md, "Sync marker").
///
/// The writer rewrites `<stream>/SYNCED` in place after every fsync of its active segment, and
/// never before the fsync returned; the marker itself is not fsynced (a power cut may leave an
/// older one, which only understates what is durable). Recovery and readers use it to tell a torn
/// tail (bytes past the marker: a write no caller was told had finished, cut off) from damage to
/// durable data (bytes before the marker that do not read back: reported, never cut).
///
/// ```
/// offset size field
///  0     8    magic "TKSYNCED"
///  8     2    format version (1)
/// 10     2    reserved, zero
/// 12     4    reserved, zero
/// 16     8    base sequence of the active segment
/// 24     8    bytes of that segment known durable (end of the last fsynced frame)
/// 32     8    sequence after the last durable event
/// 40     4    reserved, zero
/// 44     4    CRC32C of bytes 0..<44
/// ```
public struct SyncMarker: Sendable, Equatable {
    /// The file's size.
    public static let sizeBytes = 48
    /// "TKSYNCED" little-endian.
    public static let magic: UInt64 = 0x4445_434E_5953_4B54
    /// The format this build writes and reads.
    public static let formatVersion: UInt16 = 1

    /// The base sequence of the segment the marker is about.
    public var segmentBase: UInt64
    /// Bytes of that segment known durable.
    public var durableBytes: Int64
    /// The sequence after the last durable event.
    public var nextSequence: UInt64

    /// A marker for `durableBytes` of segment `segmentBase`.
    public init(segmentBase: UInt64, durableBytes: Int64, nextSequence: UInt64) {
        self.segmentBase = segmentBase
        self.durableBytes = durableBytes
        self.nextSequence = nextSequence
    }

    /// The file's bytes.
    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: SyncMarker.sizeBytes)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: SyncMarker.magic.littleEndian, toByteOffset: 0, as: UInt64.self)
            b.storeBytes(of: SyncMarker.formatVersion.littleEndian, toByteOffset: 8, as: UInt16.self)
            b.storeBytes(of: segmentBase.littleEndian, toByteOffset: 16, as: UInt64.self)
            b.storeBytes(of: UInt64(durableBytes).littleEndian, toByteOffset: 24, as: UInt64.self)
            b.storeBytes(of: nextSequence.littleEndian, toByteOffset: 32, as: UInt64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<44]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 44, as: UInt32.self)
        }
        return bytes
    }

    /// Reads a marker; nil with the reason when the bytes are not one.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<SyncMarker, LogError> {
        guard bytes.count == sizeBytes else { return .failure(LogError(.corruptFile, "the sync marker has \(bytes.count) bytes, not \(sizeBytes)")) }
        guard UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == magic else {
            return .failure(LogError(.corruptFile, "not a sync marker (bad magic)"))
        }
        guard UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 44, as: UInt32.self)) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<44])) else {
            return .failure(LogError(.corruptFile, "the sync marker fails its checksum"))
        }
        let version = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        guard version == formatVersion else { return .failure(LogError(.corruptFile, "sync marker format version \(version) is not supported")) }
        let durable = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        guard durable <= UInt64(Limits.segmentBytesMax) * 2 else { return .failure(LogError(.corruptFile, "the sync marker names an impossible size \(durable)")) }
        return .success(SyncMarker(segmentBase: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                                   durableBytes: Int64(durable),
                                   nextSequence: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt64.self))))
    }

    /// The stream's marker: nil when there is none. A damaged one is read as none, with a
    /// `syncMarkerUnreadable` notice through `reporter`: the marker is never fsynced, so a power
    /// cut may tear it, and without it the torn-tail rule applies (docs/FORMAT.md, "Sync marker");
    /// it is not damage to data.
    public static func read(layout: DatabaseLayout, stream: String, reporter: LogReporter) -> SyncMarker? {
        let path = layout.syncMarkerPath(stream)
        guard let file = try? LogFile.open(path, flags: O_RDONLY) else { return nil }
        defer { file.close() }
        guard let bytes = try? file.readAll() else { return nil }
        if bytes.isEmpty { return nil }
        switch bytes.withUnsafeBytes({ decode($0) }) {
        case .success(let marker): return marker
        case .failure(let error):
            reporter(LogNotice(kind: .syncMarkerUnreadable, message: "the stream's sync marker is unreadable (\(error.message)); its tail is judged by the torn-tail rule, as without a marker", path: path, offset: 0))
            return nil
        }
    }
}
