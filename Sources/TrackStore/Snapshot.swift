import TrackLog
import TrackModel

/// A snapshot of the whole `Projection` (docs/FORMAT.md, "Snapshots"): metric columns
/// bit-packed for their shape, the rest in the event value encoding, in the engine's snapshot
/// file (`SnapshotFile`: LZ4 chunks, CRC32C).
public enum Snapshot {
    /// The first eight bytes of a snapshot file.
    public static let magic = SnapshotFile.magic
    /// The snapshot format this build writes (2: with accepted losses; 3: metric steps that are
    /// not integers); it also reads versions 1 and 2.
    public static let formatVersion: UInt16 = 3

    /// The file's bytes for `projection`.
    public static func encode(_ projection: Projection, generation: UInt64) -> [UInt8] {
        let body = EncodeBuffer(capacity: 1 << 20)
        ProjectionCodec.encode(projection, into: body)
        return SnapshotFile.encode(body: body.bytes, version: formatVersion, generation: generation)
    }

    /// Reads a snapshot file's projection.
    public static func decode(_ bytes: [UInt8], path: String) throws(LogError) -> Projection {
        let file = bytes.withUnsafeBytes { raw in Result { () throws(LogError) in try SnapshotFile.decode(raw, path: path, versions: 1...formatVersion) } }
        let (version, body) = try file.get()
        let decoded = body.withUnsafeBytes { b in Result { () throws(LogError) in
            var reader = ByteReader(b)
            let projection = try ProjectionCodec.decode(&reader, version: version)
            guard reader.isAtEnd else { throw reader.malformed("trailing bytes") }
            return projection
        } }
        switch decoded {
        case .success(let projection): return projection
        case .failure(let error):
            if error.code == .corruptFile { throw error }
            throw LogError(.corruptFile, "snapshot unusable: \(error.message)", path: path)
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
            let t = try decodeTrial(&r, version: version)
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

    static func decodeTrial(_ r: inout ByteReader, version: UInt16 = Snapshot.formatVersion) throws(LogError) -> TrialState {
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
            t.metrics[name] = SeriesState(first: first, columns: try decodeColumns(&r, version: version))
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
    /// steps, values and timestamps (byte length first), then the non-double values by position,
    /// then (version 3) the steps that are not integers by position.
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
        b.appendVarint(UInt64(c.labels.count))
        for (position, step) in c.labels.sorted(by: { $0.key < $1.key }) {
            b.appendVarint(UInt64(position))
            ValueCodec.encode(step.value, into: b)
        }
    }

    static func decodeColumns(_ r: inout ByteReader, version: UInt16 = Snapshot.formatVersion) throws(LogError) -> MetricColumns {
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
        var labels: [Int: MetricStep] = [:]
        if version >= 3 {
            for _ in 0..<(try r.count(max: r.remaining, "step count")) {
                let position = try r.count(max: max(0, count - 1), "step position")
                guard let step = MetricStep(try ValueCodec.decode(&r)), step.intValue == nil, steps[position] == MetricColumns.noStep else {
                    throw r.malformed("a metric step that is not a float or a string, or on a point with an integer step")
                }
                labels[position] = step
            }
        }
        return MetricColumns(steps: steps, values: values, hlcs: hlcs, others: others, labels: labels)
    }
}
