// The constants of every file layout of the event log. The layouts themselves, with their
// reasoning, are written down in docs/FORMAT.md; keep the two in step.

/// The fixed 64-byte header before each frame's payload (docs/FORMAT.md, "Frames").
///
/// ```
/// offset size field
///  0     4    magic "TKFR"
///  4     2    format version (1)
///  6     2    flags (bit 0: payload is one LZ4 block; otherwise stored raw)
///  8     4    raw payload bytes
/// 12     4    stored payload bytes (what follows the header)
/// 16     8    first sequence number
/// 24     4    event count
/// 28     4    reserved, zero
/// 32     8    min HLC
/// 40     8    max HLC
/// 48     12   reserved, zero
/// 60     4    CRC32C of bytes 0..<60 then of the stored payload
/// ```
public struct FrameHeader: Sendable, Equatable {
    /// Bytes of the header.
    public static let sizeBytes = 64
    /// The first four bytes of every frame.
    public static let magic: UInt32 = 0x5246_4B54  // "TKFR" little-endian
    /// The frame format this build writes and reads.
    public static let formatVersion: UInt16 = 1
    /// The payload is one LZ4 block.
    public static let flagLZ4: UInt16 = 1
    /// Every event of the frame is a scalar metric point: readers that need only the other
    /// state (what a record refers to) may leave such frames for later.
    public static let flagPointsOnly: UInt16 = 2
    static let crcOffset = 60

    /// Format version of the frame.
    public var version: UInt16 = FrameHeader.formatVersion
    /// Flags (`flagLZ4`).
    public var flags: UInt16
    /// Bytes of the payload once decompressed.
    public var rawBytes: UInt32
    /// Bytes of the payload as stored.
    public var storedBytes: UInt32
    /// Sequence number of the first event.
    public var firstSequence: UInt64
    /// Number of events (operations) in the frame.
    public var eventCount: UInt32
    /// Timestamp of the first event.
    public var minHLC: HLC
    /// Timestamp of the last event.
    public var maxHLC: HLC
    /// The stored checksum.
    public var crc: UInt32 = 0

    /// A header for a frame of these properties; the checksum is computed by `encode(payload:)`.
    public init(flags: UInt16, rawBytes: UInt32, storedBytes: UInt32, firstSequence: UInt64, eventCount: UInt32, minHLC: HLC, maxHLC: HLC) {
        self.flags = flags
        self.rawBytes = rawBytes
        self.storedBytes = storedBytes
        self.firstSequence = firstSequence
        self.eventCount = eventCount
        self.minHLC = minHLC
        self.maxHLC = maxHLC
    }

    /// The sequence number after the frame's last event.
    public var endSequence: UInt64 { firstSequence + UInt64(eventCount) }

    /// Header plus payload bytes.
    public var frameBytes: Int { FrameHeader.sizeBytes + Int(storedBytes) }

    /// The 64 header bytes, with the CRC32C of the header and `payload`.
    public func encode(payload: UnsafeRawBufferPointer) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: FrameHeader.sizeBytes)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: FrameHeader.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: version.littleEndian, toByteOffset: 4, as: UInt16.self)
            b.storeBytes(of: flags.littleEndian, toByteOffset: 6, as: UInt16.self)
            b.storeBytes(of: rawBytes.littleEndian, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: storedBytes.littleEndian, toByteOffset: 12, as: UInt32.self)
            b.storeBytes(of: firstSequence.littleEndian, toByteOffset: 16, as: UInt64.self)
            b.storeBytes(of: eventCount.littleEndian, toByteOffset: 24, as: UInt32.self)
            b.storeBytes(of: minHLC.rawValue.littleEndian, toByteOffset: 32, as: UInt64.self)
            b.storeBytes(of: maxHLC.rawValue.littleEndian, toByteOffset: 40, as: UInt64.self)
            let crc = CRC32C.checksum(payload, continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<FrameHeader.crcOffset])))
            b.storeBytes(of: crc.littleEndian, toByteOffset: FrameHeader.crcOffset, as: UInt32.self)
        }
        return bytes
    }

    /// Why a header was refused.
    public enum Problem: Sendable, Equatable {
        case badMagic, unknownVersion(UInt16), badLengths, badFlags
    }

    /// Reads a header from the first 64 of `bytes`; nil with the reason when it is not a
    /// plausible frame header (the checksum is checked separately, with the payload).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<FrameHeader, FrameHeaderProblem> {
        guard bytes.count >= sizeBytes else { return .failure(FrameHeaderProblem(problem: .badLengths)) }
        func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
        guard u32(0) == magic else { return .failure(FrameHeaderProblem(problem: .badMagic)) }
        let version = u16(4)
        guard version == formatVersion else { return .failure(FrameHeaderProblem(problem: .unknownVersion(version))) }
        let flags = u16(6)
        guard flags & ~(flagLZ4 | flagPointsOnly) == 0 else { return .failure(FrameHeaderProblem(problem: .badFlags)) }
        var header = FrameHeader(flags: flags, rawBytes: u32(8), storedBytes: u32(12), firstSequence: u64(16), eventCount: u32(24),
                                 minHLC: HLC(rawValue: u64(32)), maxHLC: HLC(rawValue: u64(40)))
        header.crc = u32(crcOffset)
        guard Int(header.rawBytes) <= Limits.frameRawBytesMax, Int(header.storedBytes) <= LZ4.compressedBytesBound(Limits.frameRawBytesMax),
              header.eventCount <= UInt32(Limits.frameEventsMax), header.minHLC <= header.maxHLC,
              flags & flagLZ4 != 0 || header.rawBytes == header.storedBytes, u32(28) == 0
        else { return .failure(FrameHeaderProblem(problem: .badLengths)) }
        return .success(header)
    }

    /// True when the stored checksum matches the header bytes and `payload`.
    public static func checksumMatches(header bytes: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) -> Bool {
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: crcOffset, as: UInt32.self))
        let computed = CRC32C.checksum(payload, continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<crcOffset])))
        return stored == computed
    }
}

/// Why bytes are not a frame header.
public struct FrameHeaderProblem: Error, Sendable, Equatable {
    /// The reason.
    public var problem: FrameHeader.Problem
}

/// The 32-byte header at the start of every segment file (docs/FORMAT.md, "Segments").
///
/// ```
/// offset size field
///  0     8    magic "TKSEGMNT"
///  8     2    format version (1)
/// 10     2    reserved, zero
/// 12     4    reserved, zero
/// 16     8    base sequence (the first sequence the segment may hold; also its file name)
/// 24     4    reserved, zero
/// 28     4    CRC32C of bytes 0..<28
/// ```
public struct SegmentHeader: Sendable, Equatable {
    /// Bytes of the header.
    public static let sizeBytes = 32
    /// The first eight bytes of every segment.
    public static let magic: UInt64 = 0x544E_4D47_4553_4B54  // "TKSEGMNT" little-endian
    /// The segment format this build writes and reads.
    public static let formatVersion: UInt16 = 1

    /// The first sequence number the segment may hold.
    public var baseSequence: UInt64

    /// A header for a segment starting at `baseSequence`.
    public init(baseSequence: UInt64) { self.baseSequence = baseSequence }

    /// The 32 bytes.
    public func encode() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: SegmentHeader.sizeBytes)
        bytes.withUnsafeMutableBytes { b in
            b.storeBytes(of: SegmentHeader.magic.littleEndian, toByteOffset: 0, as: UInt64.self)
            b.storeBytes(of: SegmentHeader.formatVersion.littleEndian, toByteOffset: 8, as: UInt16.self)
            b.storeBytes(of: baseSequence.littleEndian, toByteOffset: 16, as: UInt64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<28]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 28, as: UInt32.self)
        }
        return bytes
    }

    /// Reads and checks a segment header; the error says what is wrong.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<SegmentHeader, LogError> {
        guard bytes.count >= sizeBytes else { return .failure(LogError(.corruptFile, "the segment is shorter than its \(sizeBytes)-byte header")) }
        guard UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == magic else {
            return .failure(LogError(.corruptFile, "not a swift-track segment (bad magic)"))
        }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) else {
            return .failure(LogError(.corruptFile, "the segment header fails its checksum"))
        }
        let version = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        guard version == formatVersion else {
            return .failure(LogError(.corruptFile, "segment format version \(version) is not supported (this build reads version \(formatVersion))"))
        }
        return .success(SegmentHeader(baseSequence: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))))
    }
}
