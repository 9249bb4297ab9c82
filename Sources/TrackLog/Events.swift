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
    case metricsLogged(trial: String, step: Int64?, ValueObject)
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

/// The tag bytes of the payload encoding (docs/FORMAT.md, "Events").
enum EventTag {
    // Directives: no sequence number, no timestamp.
    static let defineTrial: UInt8 = 0x01
    static let defineKey: UInt8 = 0x02
    static let defineSeries: UInt8 = 0x03
    static let tick: UInt8 = 0x04
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
    // Scalar points: the low nibble (0...8) is how many XOR bytes follow.
    static let pointWithStep: UInt8 = 0x20
    static let pointWithoutStep: UInt8 = 0x30
    static let pointContinued: UInt8 = 0x40
}

/// A (trial, metric name) pair interned in a frame, by dictionary index.
public struct SeriesKey: Hashable, Sendable {
    /// Index into the frame's trial table.
    public var trial: Int32
    /// Index into the frame's key table.
    public var key: Int32
}

/// One event decoded from a frame.
public struct DecodedEvent: Sendable {
    /// What happened.
    public enum Kind: Sendable {
        /// A scalar metric point of series `series` (an index into `DecodedFrame.series`).
        case point(series: Int32, step: Int64?, value: Double)
        /// Any other operation (boxed: records are rare and large, points are many and small).
        indirect case record(LogRecord)
    }
    /// The event's sequence number in its stream. Points logged in one call share it.
    public var sequence: UInt64
    /// The event's timestamp.
    public var hlc: HLC
    /// What happened.
    public var kind: Kind
}

/// A frame's events with the dictionary they refer to.
public struct DecodedFrame: Sendable {
    /// The frame's header.
    public var header: FrameHeader
    /// Trial uids interned in the frame (the trials it touches).
    public var trials: [String]
    /// Metric and chrono names interned in the frame.
    public var keys: [String]
    /// (trial, key) pairs of scalar series.
    public var series: [SeriesKey]
    /// The events, in order.
    public var events: [DecodedEvent]

    /// The trial uid and metric name of a point's series.
    public func seriesNames(_ series: Int32) -> (trial: String, name: String) {
        let key = self.series[Int(series)]
        return (trials[Int(key.trial)], keys[Int(key.key)])
    }

    /// How many operations the frame holds (points logged together count once).
    public var operationCount: Int { Int(header.eventCount) }
}
