#if canImport(Glibc)
import Glibc
#endif
import TrackModel

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

func appendFixedString(_ s: String, _ b: EncodeBuffer) {
    let utf8 = Array(s.utf8)
    b.appendFixed(UInt32(utf8.count))
    utf8.withUnsafeBytes { b.append($0) }
}

func readFixedString(_ r: inout ByteReader) throws(LogError) -> String {
    let n = Int(try r.fixed(UInt32.self))
    guard n <= r.remaining else { throw r.malformed("string runs past the end") }
    let s = String(decoding: UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<r.position + n]), as: UTF8.self)
    r.position += n
    return s
}

/// A snapshot file (docs/FORMAT.md, "Snapshots"): the whole `Projection`, metric columns
/// bit-packed for their shape, the rest in the event value encoding, all in LZ4 chunks.
///
/// ```
/// header (32 bytes): magic "TKSNAP01" (8), format version u16, reserved u16, chunk count u32,
///                    generation u64, raw body bytes u64
/// chunks:            per chunk: raw bytes u32, stored bytes u32, flags u32 (bit 0: LZ4), stored bytes
/// trailer:           CRC32C u32 of everything before it
/// ```
public enum Snapshot {
    /// The first eight bytes of a snapshot file.
    public static let magic: UInt64 = 0x3130_5041_4E53_4B54  // "TKSNAP01"
    /// The snapshot format this build writes (2: with accepted losses); it also reads version 1.
    public static let formatVersion: UInt16 = 2
    static let chunkBytes = 16 << 20

    /// The file's bytes for `projection`.
    public static func encode(_ projection: Projection, generation: UInt64) -> [UInt8] {
        let body = EncodeBuffer(capacity: 1 << 20)
        ProjectionCodec.encode(projection, into: body)
        let out = EncodeBuffer(capacity: body.count / 2 + 64)
        out.appendFixed(magic)
        out.appendFixed(formatVersion)
        out.appendFixed(UInt16(0))
        let chunkCount = (body.count + chunkBytes - 1) / chunkBytes
        out.appendFixed(UInt32(chunkCount))
        out.appendFixed(generation)
        out.appendFixed(UInt64(body.count))
        var start = 0
        while start < body.count {
            let end = min(body.count, start + chunkBytes)
            let raw = UnsafeRawBufferPointer(rebasing: body.bytes[start..<end])
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

    /// Reads a snapshot file's projection.
    public static func decode(_ bytes: [UInt8], path: String) throws(LogError) -> Projection {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(LogError) in try decode(raw, path: path) } }
        return try result.get()
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, path: String) throws(LogError) -> Projection {
        func fail(_ why: String) -> LogError { LogError(.corruptFile, "snapshot unusable: \(why)", path: path) }
        let opened = try ChecksummedFile.open(raw, what: "snapshot", path: path, minimumBytes: 36, magic: magic, versions: 1...formatVersion)
        var r = opened.reader
        let version = opened.version
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
            let decoded = body.withUnsafeBytes { b in Result { () throws(LogError) in
                var reader = ByteReader(b)
                let projection = try ProjectionCodec.decode(&reader, version: version)
                guard reader.isAtEnd else { throw reader.malformed("trailing bytes") }
                return projection
            } }
            return try decoded.get()
        } catch {
            let e = (error as? LogError) ?? LogError(.corruptFile, "\(error)")
            if e.code == .corruptFile { throw e }
            throw fail(e.message)
        }
    }
}

/// The binary form of a `Projection` inside a snapshot body.
enum ProjectionCodec {
    static func encode(_ p: Projection, into b: EncodeBuffer) {
        b.appendVarint(UInt64(p.eventCount))
        b.appendVarint(UInt64(p.pointCount))
        b.appendVarint(p.maxHLC.rawValue)
        for map in [p.projects, p.groups] {
            b.appendVarint(UInt64(map.count))
            for (uid, c) in map.sorted(by: { $0.key < $1.key }) {
                b.appendString(uid)
                encodeContainer(c, into: b)
            }
        }
        b.appendVarint(UInt64(p.trials.count))
        for (uid, t) in p.trials.sorted(by: { $0.key < $1.key }) {
            b.appendString(uid)
            encodeTrial(t, into: b)
        }
        let timers = p.openTimerEntries
        b.appendVarint(UInt64(timers.count))
        for (key, hlc) in timers.sorted(by: { $0.key < $1.key }) { b.appendString(key); b.appendVarint(hlc.rawValue) }
        let order = p.trialOrderEntries
        b.appendVarint(UInt64(order.count))
        for (uid, hlc) in order.sorted(by: { $0.key < $1.key }) { b.appendString(uid); b.appendVarint(hlc.rawValue) }
        // Format version 2: accepted losses.
        b.appendVarint(UInt64(p.acceptedLosses.count))
        for loss in p.acceptedLosses { b.appendVarint(loss.hlc.rawValue); b.appendString(loss.text) }
    }

    static func decode(_ r: inout ByteReader, version: UInt16 = Snapshot.formatVersion) throws(LogError) -> Projection {
        let p = Projection()
        let events = try r.count(max: Int.max, "event count"), points = try r.count(max: Int.max, "point count"), maxHLC = try r.varint()
        p.restoreCounts(events: events, points: points, maxHLC: HLC(rawValue: maxHLC))
        for kind in 0..<2 {
            let n = try r.count(max: r.remaining, "container count")
            for _ in 0..<n {
                let uid = try r.string()
                let c = try decodeContainer(&r)
                if kind == 0 { p.projects[uid] = c } else { p.groups[uid] = c }
            }
        }
        let n = try r.count(max: r.remaining, "trial count")
        for _ in 0..<n {
            let uid = try r.string()
            let t = try decodeTrial(&r)
            p.trials[uid] = t
            if let created = t.creation?.value { p.revisions[created.hash, default: []].insert(created.revision) }
        }
        var timers: [String: HLC] = [:]
        for _ in 0..<(try r.count(max: r.remaining, "timer count")) { let k = try r.string(); timers[k] = HLC(rawValue: try r.varint()) }
        var order: [String: HLC] = [:]
        for _ in 0..<(try r.count(max: r.remaining, "order count")) { let k = try r.string(); order[k] = HLC(rawValue: try r.varint()) }
        p.restoreTimers(timers, order: order)
        if version >= 2 {
            for _ in 0..<(try r.count(max: r.remaining, "loss count")) {
                let hlc = HLC(rawValue: try r.varint())
                p.acceptedLosses.append((hlc, try r.string()))
            }
        }
        return p
    }

    // MARK: Pieces

    static func optionalString(_ s: String?, _ b: EncodeBuffer) {
        if let s { b.append(1); b.appendString(s) } else { b.append(0) }
    }

    static func optionalString(_ r: inout ByteReader) throws(LogError) -> String? {
        switch try r.byte() {
        case 0: return nil
        case 1: return try r.string()
        case let x: throw r.malformed("bad optional marker \(x)")
        }
    }

    static func encodeMembers(_ m: [String: FirstSeen], _ b: EncodeBuffer) {
        b.appendVarint(UInt64(m.count))
        for (uid, seen) in m.sorted(by: { $0.key < $1.key }) {
            b.appendString(uid)
            b.appendVarint(seen.hlc.rawValue)
            b.appendVarint(UInt64(seen.position))
        }
    }

    static func decodeMembers(_ r: inout ByteReader) throws(LogError) -> [String: FirstSeen] {
        var m: [String: FirstSeen] = [:]
        for _ in 0..<(try r.count(max: r.remaining, "member count")) {
            let k = try r.string()
            let hlc = HLC(rawValue: try r.varint())
            m[k] = FirstSeen(hlc: hlc, position: try r.count(max: Int(Int32.max), "member position"))
        }
        return m
    }

    static func encodeMap(_ m: StampedMap, _ b: EncodeBuffer) {
        b.appendVarint(UInt64(m.entries.count))
        for (key, e) in m.entries.sorted(by: { $0.key < $1.key }) {
            b.appendString(key)
            ValueCodec.encode(e.value, into: b)
            b.appendVarint(e.hlc.rawValue)
            b.appendVarint(e.first.hlc.rawValue)
            b.appendVarint(UInt64(e.first.position))
        }
    }

    static func decodeMap(_ r: inout ByteReader) throws(LogError) -> StampedMap {
        var m = StampedMap()
        for _ in 0..<(try r.count(max: r.remaining, "map size")) {
            let key = try r.string()
            let value = try ValueCodec.decode(&r)
            let hlc = HLC(rawValue: try r.varint())
            let first = FirstSeen(hlc: HLC(rawValue: try r.varint()), position: Int(try r.count(max: Int(Int32.max), "position")))
            m.restore(key, value, hlc: hlc, first: first)
        }
        return m
    }

    static func encodeContainer(_ c: ContainerState, into b: EncodeBuffer) {
        b.appendVarint(c.creation?.rawValue ?? 0)
        if let p = c.project {
            b.append(1); b.appendString(p.name); optionalString(p.description, b)
        } else if let g = c.group {
            b.append(2); b.appendString(g.uid); b.appendString(g.name); b.appendString(g.projectID); optionalString(g.description, b)
        } else {
            b.append(0)
        }
        encodeMap(c.metadata, b)
        encodeMembers(c.trials, b)
        encodeMembers(c.groups, b)
        b.appendVarint(UInt64(c.updateCount))
    }

    static func decodeContainer(_ r: inout ByteReader) throws(LogError) -> ContainerState {
        let c = ContainerState()
        let creation = try r.varint()
        c.creation = creation == 0 ? nil : HLC(rawValue: creation)
        switch try r.byte() {
        case 0: break
        case 1:
            let name = try r.string()
            c.project = Project(name: name, description: try optionalString(&r))
        case 2:
            let uid = try r.string(), name = try r.string(), project = try r.string()
            c.group = TrialGroup(name: name, projectID: project, description: try optionalString(&r), uid: uid)
        case let x: throw r.malformed("bad container kind \(x)")
        }
        c.metadata = try decodeMap(&r)
        c.trials = try decodeMembers(&r)
        c.groups = try decodeMembers(&r)
        c.updateCount = Int(try r.count(max: Int(Int32.max), "update count"))
        return c
    }

    static func encodeTrial(_ t: TrialState, into b: EncodeBuffer) {
        if let c = t.creation {
            b.append(1)
            b.appendVarint(c.hlc.rawValue)
            let trial = c.value
            b.appendString(trial.hash)
            b.appendVarint(UInt64(trial.revision))
            optionalString(trial.name, b)
            optionalString(trial.description, b)
            ValueCodec.encode(trial.version ?? .null, into: b)
            optionalString(trial.projectID, b)
            optionalString(trial.groupID, b)
            b.appendSigned(Int64(trial.status.value))
            b.appendString(trial.status.name)
        } else {
            b.append(0)
        }
        if let s = t.status { b.append(1); b.appendVarint(s.hlc.rawValue); b.appendSigned(Int64(s.value.value)); b.appendString(s.value.name) } else { b.append(0) }
        for stamped in [t.projectID, t.groupID] {
            if let s = stamped { b.append(1); b.appendVarint(s.hlc.rawValue); optionalString(s.value, b) } else { b.append(0) }
        }
        encodeMap(t.parameters, b)
        encodeMap(t.metadata, b)
        encodeMap(t.tags, b)
        b.appendVarint(UInt64(t.errors.count))
        for e in t.errors { b.appendVarint(e.hlc.rawValue); b.appendString(e.text) }
        b.appendVarint(UInt64(t.metrics.count))
        for (name, entry) in t.metrics.sorted(by: { $0.key < $1.key }) {
            b.appendString(name)
            b.appendVarint(entry.first.hlc.rawValue)
            b.appendVarint(UInt64(entry.first.position))
            encodeColumns(entry.columns, b)
        }
        if let rt = t.runtime {
            b.append(1); b.appendVarint(rt.hlc.rawValue)
            if let v = rt.value { b.append(1); b.appendFixed(v.bitPattern) } else { b.append(0) }
        } else {
            b.append(0)
        }
        b.appendVarint(UInt64(t.chronoDurations.count))
        for (name, entry) in t.chronoDurations.sorted(by: { $0.key < $1.key }) {
            b.appendString(name)
            b.appendVarint(entry.first.rawValue)
            b.appendVarint(UInt64(entry.durations.count))
            for d in entry.durations { b.appendVarint(d.hlc.rawValue); b.appendFixed(d.seconds.bitPattern) }
        }
        b.appendVarint(UInt64(t.chronoBase.count))
        for (name, aggregator) in t.chronoBase {
            b.appendString(name)
            ValueCodec.encode(aggregator.trackJSON, into: b)
        }
        b.appendVarint(UInt64(t.updateCount))
        b.appendVarint(t.lastChange.rawValue)
        if let exact = t.lastChangeExact { b.append(1); b.appendVarint(exact.hlc.rawValue); b.appendFixed(exact.seconds.bitPattern) } else { b.append(0) }
    }

    static func decodeTrial(_ r: inout ByteReader) throws(LogError) -> TrialState {
        let t = TrialState()
        func flag(_ r: inout ByteReader) throws(LogError) -> Bool {
            switch try r.byte() { case 0: return false; case 1: return true; case let x: throw r.malformed("bad flag \(x)") }
        }
        if try flag(&r) {
            let hlc = HLC(rawValue: try r.varint())
            let hash = try r.string()
            let revision = Int(try r.count(max: Int(Int32.max), "revision"))
            let name = try optionalString(&r), description = try optionalString(&r)
            let version = try ValueCodec.decode(&r)
            let project = try optionalString(&r), group = try optionalString(&r)
            let value = try r.signed()
            let statusName = try r.string()
            let trial = Trial(hash: hash, revision: revision, name: name, version: version.isNull ? Optional<Value>.none : version, description: description,
                              projectID: project, groupID: group, status: Status(name: statusName, value: Int(truncatingIfNeeded: value)))
            t.creation = Stamped(value: trial, hlc: hlc)
        }
        if try flag(&r) {
            let hlc = HLC(rawValue: try r.varint())
            let value = try r.signed()
            t.status = Stamped(value: Status(name: try r.string(), value: Int(truncatingIfNeeded: value)), hlc: hlc)
        }
        for i in 0..<2 {
            if try flag(&r) {
                let hlc = HLC(rawValue: try r.varint())
                let s = Stamped(value: try optionalString(&r), hlc: hlc)
                if i == 0 { t.projectID = s } else { t.groupID = s }
            }
        }
        t.parameters = try decodeMap(&r)
        t.metadata = try decodeMap(&r)
        t.tags = try decodeMap(&r)
        for _ in 0..<(try r.count(max: r.remaining, "error count")) {
            let hlc = HLC(rawValue: try r.varint())
            t.errors.append((hlc, try r.string()))
        }
        for _ in 0..<(try r.count(max: r.remaining, "metric count")) {
            let name = try r.string()
            let first = FirstSeen(hlc: HLC(rawValue: try r.varint()), position: Int(try r.count(max: Int(Int32.max), "position")))
            t.metrics[name] = (first, try decodeColumns(&r))
        }
        if try flag(&r) {
            let hlc = HLC(rawValue: try r.varint())
            let value: Double? = try flag(&r) ? Double(bitPattern: try r.fixed(UInt64.self)) : nil
            t.runtime = Stamped(value: value, hlc: hlc)
        }
        for _ in 0..<(try r.count(max: r.remaining, "chrono count")) {
            let name = try r.string()
            let first = HLC(rawValue: try r.varint())
            var durations: [(hlc: HLC, seconds: Double)] = []
            for _ in 0..<(try r.count(max: r.remaining, "duration count")) {
                let hlc = HLC(rawValue: try r.varint())
                durations.append((hlc, Double(bitPattern: try r.fixed(UInt64.self))))
            }
            t.chronoDurations[name] = (first, durations)
        }
        for _ in 0..<(try r.count(max: r.remaining, "chrono base count")) {
            let name = try r.string()
            let value = try ValueCodec.decode(&r)
            guard let aggregator = try? Aggregator(trackJSON: value) else { throw r.malformed("bad chrono '\(name)'") }
            t.chronoBase.append((name, aggregator))
        }
        t.updateCount = Int(try r.count(max: Int(Int32.max), "update count"))
        t.lastChange = HLC(rawValue: try r.varint())
        if try flag(&r) {
            let hlc = HLC(rawValue: try r.varint())
            t.lastChangeExact = (hlc, Double(bitPattern: try r.fixed(UInt64.self)))
        }
        return t
    }

    /// Columns: count, value coding (0: 64-bit, 1: every value is a float32), then the bit-packed
    /// steps, values and timestamps (byte length first), then the non-double values by position.
    static func encodeColumns(_ c: MetricColumns, _ b: EncodeBuffer) {
        b.appendVarint(UInt64(c.count))
        let float32 = ColumnCodec.allFloat32(c.values)
        b.append(float32 ? 1 : 0)
        var w = BitWriter()
        ColumnCodec.writeIntegers(c.steps, into: &w)
        if float32 { ColumnCodec.writeFloats(c.values, into: &w) } else { ColumnCodec.writeDoubles(c.values, into: &w) }
        ColumnCodec.writeIntegers(c.hlcs.map { Int64(bitPattern: $0) }, into: &w)
        let bits = w.finish()
        b.appendVarint(UInt64(bits.count))
        bits.withUnsafeBytes { b.append($0) }
        b.appendVarint(UInt64(c.others.count))
        for (position, value) in c.others.sorted(by: { $0.key < $1.key }) {
            b.appendVarint(UInt64(position))
            ValueCodec.encode(value, into: b)
        }
    }

    static func decodeColumns(_ r: inout ByteReader) throws(LogError) -> MetricColumns {
        let count = try r.count(max: r.remaining * 8, "point count")
        let float32: Bool
        switch try r.byte() {
        case 0: float32 = false
        case 1: float32 = true
        case let x: throw r.malformed("bad value coding \(x)")
        }
        let n = try r.count(max: r.remaining, "column bytes")
        let bytes = UnsafeRawBufferPointer(rebasing: r.bytes[r.position..<r.position + n])
        r.position += n
        var bits = BitReader(bytes)
        let steps = try ColumnCodec.readIntegers(count, &bits)
        let values = float32 ? try ColumnCodec.readFloats(count, &bits) : try ColumnCodec.readDoubles(count, &bits)
        let hlcs = try ColumnCodec.readIntegers(count, &bits).map { UInt64(bitPattern: $0) }
        var others: [Int: Value] = [:]
        for _ in 0..<(try r.count(max: r.remaining, "value count")) {
            let position = try r.count(max: max(0, count - 1), "value position")
            others[position] = try ValueCodec.decode(&r)
        }
        return MetricColumns(steps: steps, values: values, hlcs: hlcs, others: others)
    }
}
