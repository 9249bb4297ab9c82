/// Where a frame is: its header and the byte offset of the header in its segment.
public struct FrameLocation: Sendable, Equatable {
    /// The frame's header.
    public var header: FrameHeader
    /// Offset of the header in the segment file.
    public var offset: Int64
    /// Offset just past the frame.
    public var endOffset: Int64 { offset + Int64(header.frameBytes) }
}

/// Bytes of a segment that are not valid frames and are not its tail: damage that is reported,
/// never skipped silently.
public struct Damage: Sendable, Equatable, CustomStringConvertible {
    /// The segment file.
    public var path: String
    /// Where the bad bytes start.
    public var offset: Int64
    /// How many bytes are unreadable (up to the next valid frame).
    public var length: Int64
    /// What was wrong.
    public var reason: String
    public var description: String { "damaged bytes in \(path) at offset \(offset) (\(length) bytes up to the next valid frame): \(reason)" }
}

/// The result of reading a segment frame by frame.
public struct SegmentScan: Sendable {
    /// The segment header, or the error that made it unreadable.
    public var header: Result<SegmentHeader, LogError>
    /// The valid frames, in order.
    public var frames: [FrameLocation]
    /// Damage before the tail.
    public var damage: [Damage]
    /// Where the valid data ends (after the last valid frame, or after the header).
    public var validEnd: Int64
    /// The file's size.
    public var fileSize: Int64
    /// Why the tail after `validEnd` is invalid, if it is non-empty.
    public var tailReason: String?

    /// Bytes after the last valid frame that are not frames: a torn write.
    public var tornTailBytes: Int64 { fileSize - validEnd }
}

/// Reads a segment's bytes frame by frame, telling a torn tail from damage before the tail.
///
/// Recovery cases (each has a test):
/// 1. A frame whose length runs past the end of the file, with no valid frame after it: torn tail.
/// 2. A frame failing its CRC with no valid frame after it: torn tail (a write cut short).
/// 3. A frame header or CRC failing with a valid frame somewhere after it: damage before the
///    tail, reported with its offset; scanning resumes at the next valid frame.
/// 4. A damaged segment header: reported; frames after it are still read.
/// 5. Fewer bytes than a frame header at the end: torn tail.
public enum SegmentScanner {
    /// Scans `bytes`, the whole content of the segment at `path`.
    public static func scan(_ bytes: UnsafeRawBufferPointer, path: String) -> SegmentScan {
        let size = Int64(bytes.count)
        var header = SegmentHeader.decode(bytes)
        if case .failure(var e) = header { e.path = path; e.offset = 0; header = .failure(e) }
        var result = SegmentScan(header: header, frames: [], damage: [], validEnd: min(size, Int64(SegmentHeader.sizeBytes)), fileSize: size, tailReason: nil)
        var offset = SegmentHeader.sizeBytes
        if bytes.count < SegmentHeader.sizeBytes {
            result.validEnd = 0
            result.tailReason = bytes.isEmpty ? nil : "the segment header is incomplete"
            return result
        }
        while offset < bytes.count {
            switch check(bytes, at: offset) {
            case .success(let frameHeader):
                result.frames.append(FrameLocation(header: frameHeader, offset: Int64(offset)))
                offset += frameHeader.frameBytes
                result.validEnd = Int64(offset)
            case .failure(let problem):
                let reason = problem.reason
                if let next = nextValidFrame(bytes, after: offset) {
                    result.damage.append(Damage(path: path, offset: Int64(offset), length: Int64(next - offset), reason: reason))
                    offset = next
                } else {
                    result.tailReason = reason
                    return result
                }
            }
        }
        return result
    }

    /// Checks the frame at `offset`: a plausible header, all bytes present, the CRC matching.
    static func check(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Result<FrameHeader, ScanProblem> {
        guard bytes.count - offset >= FrameHeader.sizeBytes else {
            return .failure(ScanProblem(reason: "\(bytes.count - offset) bytes, fewer than a frame header"))
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + FrameHeader.sizeBytes])
        let header: FrameHeader
        switch FrameHeader.decode(headerBytes) {
        case .success(let h): header = h
        case .failure(let p): return .failure(ScanProblem(reason: "not a frame header (\(p.problem))"))
        }
        guard bytes.count - offset >= header.frameBytes else {
            return .failure(ScanProblem(reason: "frame of \(header.frameBytes) bytes runs past the end of the file"))
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[offset + FrameHeader.sizeBytes..<offset + header.frameBytes])
        guard FrameHeader.checksumMatches(header: headerBytes, payload: payload) else {
            return .failure(ScanProblem(reason: "frame fails its CRC32C check"))
        }
        return .success(header)
    }

    /// The offset of the next valid frame after `offset`, if any.
    static func nextValidFrame(_ bytes: UnsafeRawBufferPointer, after offset: Int) -> Int? {
        let magic = FrameHeader.magic
        var candidate = offset + 1
        while candidate + FrameHeader.sizeBytes <= bytes.count {
            if bytes.loadUnaligned(fromByteOffset: candidate, as: UInt32.self) == magic.littleEndian,
               case .success = check(bytes, at: candidate) {
                return candidate
            }
            candidate += 1
        }
        return nil
    }
}

/// Why bytes at an offset are not a valid frame.
struct ScanProblem: Error {
    var reason: String
}
