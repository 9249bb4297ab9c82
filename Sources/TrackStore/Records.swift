import TrackLog
import TrackModel

/// A state-changing operation as the event log records it (one per `TrackProtocol` write).
/// Scalar metric points have their own compact encoding (`DecodedEvent.Kind.point`).
public enum LogRecord: Sendable, Equatable {
    case projectCreated(Project)
    case groupCreated(TrialGroup)
    /// The trial as stored, its revision already chosen; `autoIncrement` tells how it was asked.
    case trialCreated(Trial, autoIncrement: Bool)
    case trialAddedToProject(trial: String, project: String)
    case trialAddedToGroup(trial: String, group: String)
    case trialStarted(trial: String)
    case trialFinished(trial: String)
    case chronoStarted(trial: String, name: String)
    case chronoFinished(trial: String, name: String)
    case argumentsLogged(trial: String, ValueObject)
    case metadataLogged(trial: String, ValueObject)
    case tagsAdded(trial: String, ValueObject)
    case statusSet(trial: String, Status, error: String?)
    case groupMetadataSet(group: String, ValueObject)
    /// Metrics whose values are not all doubles (ints, lists, ...), as `logTrialMetrics`.
    case metricsLogged(trial: String, step: MetricStep?, ValueObject)
    /// A project brought in whole by an import (its trial and group lists in order).
    case projectImported(Project)
    /// A group brought in whole by an import.
    case groupImported(TrialGroup)
    /// A trial brought in whole by an import: metrics, chronos, errors and revision tag included.
    case trialImported(Trial)
    /// Damage a compaction was told to fold over (`--accept-loss`): what was lost, in words
    /// (each damaged file, offset and missing range). Kept in every later snapshot.
    case lossAccepted(String)

    /// The trial the record concerns, if any.
    public var trialUID: String? {
        switch self {
        case .trialCreated(let t, _), .trialImported(let t): return t.uid
        case .trialAddedToProject(let t, _), .trialAddedToGroup(let t, _), .trialStarted(let t), .trialFinished(let t),
             .chronoStarted(let t, _), .chronoFinished(let t, _), .argumentsLogged(let t, _), .metadataLogged(let t, _),
             .tagsAdded(let t, _), .statusSet(let t, _, _), .metricsLogged(let t, _, _):
            return t
        case .projectCreated, .groupCreated, .groupMetadataSet, .projectImported, .groupImported, .lossAccepted:
            return nil
        }
    }

    /// The record of applying `update` to `trial` (a fetch-and-update), as every store logs it.
    public static func trialUpdated(_ trial: Trial, by update: TrialUpdate) throws(ModelError) -> LogRecord {
        switch update {
        case .setStatus(let status, let error): return .statusSet(trial: trial.uid, status, error: error)
        case .logMetadata, .incrementMetadata: return .metadataLogged(trial: trial.uid, try update.metadataValues(for: trial) ?? [:])
        case .addTags(let tags): return .tagsAdded(trial: trial.uid, tags)
        case .logArguments(let arguments): return .argumentsLogged(trial: trial.uid, arguments)
        }
    }

    /// Every `kindName`, in declaration order (what `track-replay tail --type` takes).
    public static let kindNames = ["project_created", "group_created", "trial_created", "trial_added_to_project",
                                   "trial_added_to_group", "trial_started", "trial_finished", "chrono_started", "chrono_finished",
                                   "arguments_logged", "metadata_logged", "tags_added", "status_set", "group_metadata_set",
                                   "metrics_logged", "project_imported", "group_imported", "trial_imported", "loss_accepted"]

    /// A short name of the record's kind, for listings.
    public var kindName: String {
        switch self {
        case .projectCreated: return "project_created"
        case .groupCreated: return "group_created"
        case .trialCreated: return "trial_created"
        case .trialAddedToProject: return "trial_added_to_project"
        case .trialAddedToGroup: return "trial_added_to_group"
        case .trialStarted: return "trial_started"
        case .trialFinished: return "trial_finished"
        case .chronoStarted: return "chrono_started"
        case .chronoFinished: return "chrono_finished"
        case .argumentsLogged: return "arguments_logged"
        case .metadataLogged: return "metadata_logged"
        case .tagsAdded: return "tags_added"
        case .statusSet: return "status_set"
        case .groupMetadataSet: return "group_metadata_set"
        case .metricsLogged: return "metrics_logged"
        case .projectImported: return "project_imported"
        case .groupImported: return "group_imported"
        case .trialImported: return "trial_imported"
        case .lossAccepted: return "loss_accepted"
        }
    }
}

/// The tag bytes of track's records (docs/FORMAT.md, "Events"); the engine's own tags
/// (dictionary, clock, points) are `FrameTag`'s.
enum RecordTag {
    // Records.
    static let projectCreated: UInt8 = 0x10
    static let groupCreated: UInt8 = 0x11
    static let trialCreated: UInt8 = 0x12
    static let trialAddedToProject: UInt8 = 0x13
    static let trialAddedToGroup: UInt8 = 0x14
    static let trialStarted: UInt8 = 0x15
    static let trialFinished: UInt8 = 0x16
    static let chronoStarted: UInt8 = 0x17
    static let chronoFinished: UInt8 = 0x18
    static let argumentsLogged: UInt8 = 0x19
    static let metadataLogged: UInt8 = 0x1A
    static let tagsAdded: UInt8 = 0x1B
    static let statusSet: UInt8 = 0x1C
    static let groupMetadataSet: UInt8 = 0x1D
    static let metricsLogged: UInt8 = 0x1E
    // Imports: the object in track's serialization, as a value.
    static let projectImported: UInt8 = 0x50
    static let groupImported: UInt8 = 0x51
    static let trialImported: UInt8 = 0x52
    // Maintenance.
    static let lossAccepted: UInt8 = 0x60
}


extension LogRecord: Record {
    /// The record's tag byte.
    var tag: UInt8 {
        switch self {
        case .projectCreated: return RecordTag.projectCreated
        case .groupCreated: return RecordTag.groupCreated
        case .trialCreated: return RecordTag.trialCreated
        case .trialAddedToProject: return RecordTag.trialAddedToProject
        case .trialAddedToGroup: return RecordTag.trialAddedToGroup
        case .trialStarted: return RecordTag.trialStarted
        case .trialFinished: return RecordTag.trialFinished
        case .chronoStarted: return RecordTag.chronoStarted
        case .chronoFinished: return RecordTag.chronoFinished
        case .argumentsLogged: return RecordTag.argumentsLogged
        case .metadataLogged: return RecordTag.metadataLogged
        case .tagsAdded: return RecordTag.tagsAdded
        case .statusSet: return RecordTag.statusSet
        case .groupMetadataSet: return RecordTag.groupMetadataSet
        case .metricsLogged: return RecordTag.metricsLogged
        case .projectImported: return RecordTag.projectImported
        case .groupImported: return RecordTag.groupImported
        case .trialImported: return RecordTag.trialImported
        case .lossAccepted: return RecordTag.lossAccepted
        }
    }

    /// Writes the record (docs/FORMAT.md, "Events"): the trial it concerns is the frame's subject.
    public func encode(into encoder: inout RecordEncoder) {
        // Define the dictionary entries first, so the event's own bytes follow its tag.
        var trial: Int32 = 0
        var key: Int32 = 0
        if let uid = trialUID { trial = encoder.subject(uid) }
        switch self {
        case .chronoStarted(_, let name), .chronoFinished(_, let name): key = encoder.key(name)
        default: break
        }
        let b = encoder.begin(tag: tag)
        switch self {
        case .projectCreated(let p):
            b.appendString(p.name)
            Self.appendOptional(b, p.description)
            ValueCodec.encodeObject(p.metadata, into: b)
        case .groupCreated(let g):
            b.appendString(g.uid)
            b.appendString(g.name)
            b.appendString(g.projectID)
            Self.appendOptional(b, g.description)
            ValueCodec.encodeObject(g.metadata, into: b)
        case .trialCreated(let t, let autoIncrement):
            b.appendVarint(UInt64(trial))
            b.append(autoIncrement ? 1 : 0)
            Self.appendOptional(b, t.name)
            Self.appendOptional(b, t.description)
            ValueCodec.encode(t.version ?? .null, into: b)
            Self.appendOptional(b, t.projectID)
            Self.appendOptional(b, t.groupID)
            ValueCodec.encodeObject(t.tags, into: b)
            ValueCodec.encodeObject(t.parameters, into: b)
            ValueCodec.encodeObject(t.metadata, into: b)
            b.appendSigned(Int64(t.status.value))
            b.appendString(t.status.name)
        case .trialAddedToProject(_, let project):
            b.appendVarint(UInt64(trial)); b.appendString(project)
        case .trialAddedToGroup(_, let group):
            b.appendVarint(UInt64(trial)); b.appendString(group)
        case .trialStarted:
            b.appendVarint(UInt64(trial))
        case .trialFinished:
            b.appendVarint(UInt64(trial))
        case .chronoStarted:
            b.appendVarint(UInt64(trial)); b.appendVarint(UInt64(key))
        case .chronoFinished:
            b.appendVarint(UInt64(trial)); b.appendVarint(UInt64(key))
        case .argumentsLogged(_, let o):
            b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .metadataLogged(_, let o):
            b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .tagsAdded(_, let o):
            b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .statusSet(_, let status, let error):
            b.appendVarint(UInt64(trial))
            b.appendSigned(Int64(status.value))
            b.appendString(status.name)
            Self.appendOptional(b, error)
        case .groupMetadataSet(let group, let o):
            b.appendString(group); ValueCodec.encodeObject(o, into: b)
        case .projectImported(let p):
            ValueCodec.encode(p.trackJSON(), into: b)
        case .groupImported(let g):
            ValueCodec.encode(g.trackJSON, into: b)
        case .trialImported(let t):
            b.appendVarint(UInt64(trial)); ValueCodec.encode(t.trackJSON, into: b)
        case .lossAccepted(let text):
            b.appendString(text)
        case .metricsLogged(_, let step, let o):
            b.appendVarint(UInt64(trial))
            switch step {
            case nil: b.append(0)
            case .int(let i)?: b.append(1); b.appendSigned(i)
            case let other?: b.append(2); ValueCodec.encode(other.value, into: b)
            }
            ValueCodec.encodeObject(o, into: b)
        }
    }


    private static func appendOptional(_ b: EncodeBuffer, _ s: String?) {
        if let s { b.append(1); b.appendString(s) } else { b.append(0) }
    }
}

/// Reads track's records back: the codec every reader, tailer and writer of a track database is
/// handed (`.track`).
public struct TrackRecordCodec: RecordCodec {
    /// The codec.
    public init() {}

    public func decodeRecord(tag: UInt8, from reader: inout ByteReader, names: FrameNames) throws(LogError) -> any Record {
        try Self.decode(tag: tag, from: &reader, names: names)
    }

    /// Decodes one record of track's (its tag already read).
    static func decode(tag: UInt8, from reader: inout ByteReader, names: FrameNames) throws(LogError) -> LogRecord {
            let record: LogRecord
            switch tag {
            case RecordTag.projectCreated:
                let name = try reader.string()
                let description = try Self.optionalString(&reader)
                record = .projectCreated(Project(name: name, description: description, metadata: try ValueCodec.decodeObject(&reader)))
            case RecordTag.groupCreated:
                let uid = try reader.string(), name = try reader.string(), project = try reader.string()
                let description = try Self.optionalString(&reader)
                record = .groupCreated(TrialGroup(name: name, projectID: project, description: description,
                                                  metadata: try ValueCodec.decodeObject(&reader), uid: uid))
            case RecordTag.trialCreated:
                let uid = try names.subject(&reader)
                guard let parts = Trial.splitUID(uid) else { throw reader.malformed("trial uid '\(uid)' is not <hash>_<revision>") }
                let autoIncrement = try reader.byte() != 0
                let name = try Self.optionalString(&reader), description = try Self.optionalString(&reader)
                let version = try ValueCodec.decode(&reader)
                let project = try Self.optionalString(&reader), group = try Self.optionalString(&reader)
                let tags = try ValueCodec.decodeObject(&reader)
                let parameters = try ValueCodec.decodeObject(&reader)
                let metadata = try ValueCodec.decodeObject(&reader)
                let st = try Self.status(&reader)
                record = .trialCreated(Trial(hash: parts.hash, revision: parts.revision, name: name, version: version.isNull ? Optional<Value>.none : version,
                                             parameters: parameters, description: description, tags: tags, projectID: project,
                                             groupID: group, metadata: metadata, status: st), autoIncrement: autoIncrement)
            case RecordTag.trialAddedToProject:
                let t = try names.subject(&reader); record = .trialAddedToProject(trial: t, project: try reader.string())
            case RecordTag.trialAddedToGroup:
                let t = try names.subject(&reader); record = .trialAddedToGroup(trial: t, group: try reader.string())
            case RecordTag.trialStarted: record = .trialStarted(trial: try names.subject(&reader))
            case RecordTag.trialFinished: record = .trialFinished(trial: try names.subject(&reader))
            case RecordTag.chronoStarted:
                let t = try names.subject(&reader); record = .chronoStarted(trial: t, name: try names.key(&reader))
            case RecordTag.chronoFinished:
                let t = try names.subject(&reader); record = .chronoFinished(trial: t, name: try names.key(&reader))
            case RecordTag.argumentsLogged:
                let t = try names.subject(&reader); record = .argumentsLogged(trial: t, try ValueCodec.decodeObject(&reader))
            case RecordTag.metadataLogged:
                let t = try names.subject(&reader); record = .metadataLogged(trial: t, try ValueCodec.decodeObject(&reader))
            case RecordTag.tagsAdded:
                let t = try names.subject(&reader); record = .tagsAdded(trial: t, try ValueCodec.decodeObject(&reader))
            case RecordTag.statusSet:
                let t = try names.subject(&reader)
                let st = try Self.status(&reader)
                record = .statusSet(trial: t, st, error: try Self.optionalString(&reader))
            case RecordTag.groupMetadataSet:
                let g = try reader.string(); record = .groupMetadataSet(group: g, try ValueCodec.decodeObject(&reader))
            case RecordTag.metricsLogged:
                let t = try names.subject(&reader)
                let step: MetricStep?
                switch try reader.byte() {
                case 0: step = nil
                case 1: step = .int(try reader.signed())
                case 2:
                    let value = try ValueCodec.decode(&reader)
                    guard let s = MetricStep(value), s.intValue == nil else { throw reader.malformed("a metric step that is not a float or a string") }
                    step = s
                case let other: throw reader.malformed("bad step marker \(other)")
                }
                record = .metricsLogged(trial: t, step: step, try ValueCodec.decodeObject(&reader))
            case RecordTag.projectImported:
                let v = try ValueCodec.decode(&reader)
                do { record = .projectImported(try Project(trackJSON: v)) } catch { throw reader.malformed("imported project: \(error.message)") }
            case RecordTag.groupImported:
                let v = try ValueCodec.decode(&reader)
                do { record = .groupImported(try TrialGroup(trackJSON: v)) } catch { throw reader.malformed("imported group: \(error.message)") }
            case RecordTag.trialImported:
                let uid = try names.subject(&reader)
                let v = try ValueCodec.decode(&reader)
                let t: Trial
                do { t = try Trial(trackJSON: v) } catch { throw reader.malformed("imported trial: \(error.message)") }
                guard t.uid == uid else { throw reader.malformed("imported trial \(t.uid) is filed under \(uid)") }
                record = .trialImported(t)
            case RecordTag.lossAccepted:
                record = .lossAccepted(try reader.string())
            default:
                throw reader.malformed("unknown event tag 0x\(String(tag, radix: 16))")
            }
            return record
    }

    private static func optionalString(_ reader: inout ByteReader) throws(LogError) -> String? {
        switch try reader.byte() {
        case 0: return nil
        case 1: return try reader.string()
        case let other: throw reader.malformed("bad optional marker \(other)")
        }
    }

    private static func status(_ reader: inout ByteReader) throws(LogError) -> Status {
        let value = try reader.signed()
        let name = try reader.string()
        guard let v = Int(exactly: value) else { throw reader.malformed("status value out of range") }
        return Status(name: name, value: v)
    }
}

extension RecordCodec where Self == TrackRecordCodec {
    /// track's records.
    public static var track: TrackRecordCodec { TrackRecordCodec() }
}

extension DecodedEvent {
    /// The event's record when it is one of track's (every record of a track database is).
    public var record: LogRecord? {
        if case .record(let r) = kind { return r as? LogRecord }
        return nil
    }
}

extension LogWriter {
    /// Appends `logTrialMetrics(trial, step, metrics)` as one operation: as scalar points when
    /// every value is a double (the engine's compact path), otherwise as one `metricsLogged`
    /// record, checked as points are either way.
    @discardableResult
    public func appendMetrics(trial: String, step: MetricStep?, _ metrics: ValueObject) throws(LogError) -> UInt64 {
        let keys = metrics.keys, values = metrics.values
        let count = keys.count
        let intStep: Int64?
        var scalars = true
        switch step {
        case nil: intStep = nil
        case .int(let i)?: intStep = i
        case .some: intStep = nil; scalars = false  // a float or text step (`step=1.5`, `step="warmup"`)
        }
        // Names and values in buffers on the stack, handed to the engine in one call.
        let result = withUnsafeTemporaryAllocation(of: String.self, capacity: count) { names in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { doubles in
                _ = names.initialize(from: keys)
                defer { names.deinitialize() }
                for i in 0..<count {
                    guard case .double(let v) = values[i] else { scalars = false; break }
                    doubles[i] = v
                }
                return Result { () throws(LogError) -> UInt64 in
                    let n = UnsafeBufferPointer(names)
                    guard scalars else {
                        // Not all doubles, or a step that is not an integer: one record, checked as points are.
                        try checkPoints(subject: trial, step: intStep, names: n)
                        return try append(LogRecord.metricsLogged(trial: trial, step: step, metrics)).sequence
                    }
                    return try appendPoints(subject: trial, step: intStep, names: n, values: UnsafeBufferPointer(doubles))
                }
            }
        }
        return try result.get()
    }
}

// MARK: - The engine's types over a track database (records read by `TrackRecordCodec`)

extension LogWriter {
    /// Opens a writer on the track database at `path` (see `open(database:records:options:)`).
    public static func open(database path: String, options: WriterOptions = WriterOptions()) throws(LogError) -> LogWriter {
        try open(database: path, records: .track, options: options)
    }

    /// Appends one of track's records. Returns its sequence number and timestamp.
    @discardableResult
    public func append(_ record: LogRecord) throws(LogError) -> (sequence: UInt64, hlc: HLC) {
        try append(record: record)
    }

    /// Opens a writer on a new, unpublished stream of the track database at `path`.
    public static func openUnpublished(database path: String, options: WriterOptions = WriterOptions()) throws(LogError) -> LogWriter {
        try openUnpublished(database: path, records: .track, options: options)
    }
}

extension LogReader {
    /// A reader of the track database at `path`.
    public convenience init(database path: String, damagePolicy: DamagePolicy = .fail,
                            reporter: @escaping LogReporter = standardErrorReporter) throws(LogError) {
        try self.init(database: path, records: .track, damagePolicy: damagePolicy, reporter: reporter)
    }
}

extension LogTailer {
    /// A tailer of the track database at `path`.
    public convenience init(database path: String, start: [StreamWatermark] = [],
                            reporter: @escaping LogReporter = standardErrorReporter) throws(LogError) {
        try self.init(database: path, records: .track, start: start, reporter: reporter)
    }
}

extension Frame {
    /// Decodes a frame of a track database (see `decode(_:at:path:checksumVerified:records:)`).
    public static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int64, path: String,
                              checksumVerified: Bool = false) throws(LogError) -> DecodedFrame {
        try decode(bytes, at: offset, path: path, checksumVerified: checksumVerified, records: .track)
    }
}
