/// One frame as a segment's index lists it.
public struct IndexEntry: Sendable, Equatable {
    /// Where the frame is, with its header.
    public var location: FrameLocation
    /// Indices into the index's subject table of the subjects the frame touches; nil means "unknown,
    /// read the frame" (a frame touching more than `Limits.indexSubjectsPerFrameMax` subjects).
    public var subjects: [Int32]?
}

/// The index of a sealed segment: per frame its first sequence, offset, event count, HLC range and
/// the subjects it touches, so that readers seek by sequence, time or subject without decoding the
/// rest (docs/FORMAT.md, "Index files"). It is derived data: rebuilt from the segment when
/// missing or damaged.
///
/// ```
/// header (32 bytes): magic "TKINDEX1" (8), format version u16, reserved u16, frame count u32,
///                    base sequence u64, segment bytes covered u64
/// subject table:       count u32, then per subject: byte length u32, UTF-8 bytes
/// entries:           per frame: first sequence u64, offset u64, event count u32, stored bytes u32,
///                    raw bytes u32, flags u16, reserved u16, min HLC u64, max HLC u64, frame CRC u32,
///                    subject count u32 (0xFFFFFFFF: unknown), subject table indices u32 each
/// trailer:           CRC32C u32 of everything before it
/// ```
public struct SegmentIndex: Sendable, Equatable {
    /// The first eight bytes of every index file.
    public static let magic: UInt64 = 0x3158_4544_4E49_4B54  // "TKINDEX1" little-endian
    /// The index format this build writes and reads.
    public static let formatVersion: UInt16 = 1
    /// Bytes of the header.
    public static let headerBytes = 32

    /// The segment's base sequence.
    public var baseSequence: UInt64
    /// The segment's size when the index was made; an index is valid only for that size.
    public var segmentBytes: Int64
    /// Subject keys referred to by entries.
    public var subjectTable: [String]
    /// The frames, in order.
    public var entries: [IndexEntry]

    /// Builds the index of a segment from its bytes and scan, decoding each frame for its subjects.
    public static func build(segment bytes: UnsafeRawBufferPointer, scan: SegmentScan, baseSequence: UInt64, path: String,
                             records: any RecordCodec) -> SegmentIndex {
        let subjects: [[String]?] = scan.frames.map { location in
            let frameBytes = UnsafeRawBufferPointer(rebasing: bytes[Int(location.offset)..<Int(location.endOffset)])
            return (try? Frame.decode(frameBytes, at: location.offset, path: path, records: records))?.subjects
        }
        return make(frames: scan.frames, subjects: subjects, baseSequence: baseSequence, segmentBytes: scan.validEnd)
    }

    /// The index of `frames`, each touching the subjects at the same position of `subjects` (nil, or
    /// more than `Limits.indexSubjectsPerFrameMax`: listed as unknown).
    public static func make(frames: [FrameLocation], subjects: [[String]?], baseSequence: UInt64, segmentBytes: Int64) -> SegmentIndex {
        var table: [String] = []
        var positions: [String: Int32] = [:]
        var entries: [IndexEntry] = []
        for (i, location) in frames.enumerated() {
            var list: [Int32]? = nil
            if i < subjects.count, let uids = subjects[i], uids.count <= Limits.indexSubjectsPerFrameMax {
                list = uids.map { uid in
                    if let p = positions[uid] { return p }
                    let p = Int32(table.count)
                    positions[uid] = p
                    table.append(uid)
                    return p
                }
            }
            entries.append(IndexEntry(location: location, subjects: list))
        }
        return SegmentIndex(baseSequence: baseSequence, segmentBytes: segmentBytes, subjectTable: table, entries: entries)
    }

    /// The index file's bytes.
    public func encode() -> [UInt8] {
        let b = EncodeBuffer(capacity: 64 + entries.count * 72)
        b.appendFixed(SegmentIndex.magic)
        b.appendFixed(SegmentIndex.formatVersion)
        b.appendFixed(UInt16(0))
        b.appendFixed(UInt32(entries.count))
        b.appendFixed(baseSequence)
        b.appendFixed(UInt64(segmentBytes))
        b.appendFixed(UInt32(subjectTable.count))
        for uid in subjectTable {
            let utf8 = Array(uid.utf8)
            b.appendFixed(UInt32(utf8.count))
            utf8.withUnsafeBytes { b.append($0) }
        }
        for entry in entries {
            let h = entry.location.header
            b.appendFixed(h.firstSequence)
            b.appendFixed(UInt64(entry.location.offset))
            b.appendFixed(h.eventCount)
            b.appendFixed(h.storedBytes)
            b.appendFixed(h.rawBytes)
            b.appendFixed(h.flags)
            b.appendFixed(UInt16(0))
            b.appendFixed(h.minHLC.rawValue)
            b.appendFixed(h.maxHLC.rawValue)
            b.appendFixed(h.crc)
            if let subjects = entry.subjects {
                b.appendFixed(UInt32(subjects.count))
                for t in subjects { b.appendFixed(UInt32(t)) }
            } else {
                b.appendFixed(UInt32.max)
            }
        }
        b.appendFixed(CRC32C.checksum(b.bytes))
        return b.toArray()
    }

    /// Reads an index file; the error says what is wrong (the caller then rebuilds it).
    public static func decode(_ bytes: UnsafeRawBufferPointer, path: String) -> Result<SegmentIndex, LogError> {
        func fail(_ why: String) -> Result<SegmentIndex, LogError> { .failure(LogError(.corruptFile, "index unusable: \(why)", path: path)) }
        guard bytes.count >= headerBytes + 8 else { return fail("shorter than its header") }
        do {
            var (r, _) = try ChecksummedFile.open(bytes, what: "index", path: path, minimumBytes: headerBytes + 8, magic: magic, versions: formatVersion...formatVersion)
            let frameCount = Int(try r.fixed(UInt32.self))
            let base = try r.fixed(UInt64.self)
            let segmentSize = try r.fixed(UInt64.self)
            // Every number read from a file is checked before it is converted: none may trap.
            guard segmentSize <= UInt64(Limits.segmentBytesMax) * 2 else { return fail("impossible segment size \(segmentSize)") }
            let segmentBytes = Int64(segmentSize)
            let subjectCount = Int(try r.fixed(UInt32.self))
            guard subjectCount <= r.remaining / 4, frameCount <= r.remaining / 60 else { return fail("counts exceed the file") }
            var table: [String] = []
            for _ in 0..<subjectCount {
                let n = Int(try r.fixed(UInt32.self))
                guard n <= r.remaining else { return fail("subject name runs past the end") }
                table.append(String(decoding: UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<r.position + n]), as: UTF8.self))
                r.position += n
            }
            var entries: [IndexEntry] = []
            for _ in 0..<frameCount {
                let first = try r.fixed(UInt64.self), offset = try r.fixed(UInt64.self)
                guard offset <= segmentSize else { return fail("frame offset \(offset) past the segment's \(segmentSize) bytes") }
                let events = try r.fixed(UInt32.self), storedBytes = try r.fixed(UInt32.self), rawBytes = try r.fixed(UInt32.self)
                let flags = try r.fixed(UInt16.self)
                _ = try r.fixed(UInt16.self)
                let minHLC = try r.fixed(UInt64.self), maxHLC = try r.fixed(UInt64.self), crc = try r.fixed(UInt32.self)
                let n = try r.fixed(UInt32.self)
                var subjects: [Int32]? = nil
                if n != UInt32.max {
                    guard Int(n) <= r.remaining / 4 else { return fail("subject list runs past the end") }
                    var list: [Int32] = []
                    for _ in 0..<n {
                        let t = try r.fixed(UInt32.self)
                        guard t < UInt32(table.count) else { return fail("subject index out of range") }
                        list.append(Int32(t))
                    }
                    subjects = list
                }
                var header = FrameHeader(flags: flags, rawBytes: rawBytes, storedBytes: storedBytes, firstSequence: first, eventCount: events,
                                         minHLC: HLC(rawValue: minHLC), maxHLC: HLC(rawValue: maxHLC))
                header.crc = crc
                entries.append(IndexEntry(location: FrameLocation(header: header, offset: Int64(offset)), subjects: subjects))
            }
            guard r.isAtEnd else { return fail("trailing bytes") }
            return .success(SegmentIndex(baseSequence: base, segmentBytes: segmentBytes, subjectTable: table, entries: entries))
        } catch {
            return error.message.hasPrefix("index unusable") ? .failure(error) : fail(error.message)
        }
    }

    /// The entries whose frames may hold sequence numbers in `range`.
    public func entries(sequences range: Range<UInt64>) -> ArraySlice<IndexEntry> {
        // Binary search: first frame ending after range.lowerBound.
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid].location.header.endSequence <= range.lowerBound { low = mid + 1 } else { high = mid }
        }
        var end = low
        while end < entries.count && entries[end].location.header.firstSequence < range.upperBound { end += 1 }
        return entries[low..<end]
    }

    /// The entries whose frames overlap the time range.
    public func entries(hlc range: ClosedRange<HLC>) -> [IndexEntry] {
        entries.filter { $0.location.header.maxHLC >= range.lowerBound && $0.location.header.minHLC <= range.upperBound }
    }

    /// The entries whose frames touch subject `key` (or may: those with an unknown subject list).
    public func entries(subject key: String) -> [IndexEntry] {
        let position = subjectTable.firstIndex(of: key).map(Int32.init)
        return entries.filter { entry in
            guard let subjects = entry.subjects else { return true }
            guard let position else { return false }
            return subjects.contains(position)
        }
    }
}
