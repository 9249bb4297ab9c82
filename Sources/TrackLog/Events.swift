/// A record as the engine carries it: any operation of a store other than a scalar metric point.
/// The engine does not know what records mean; the store that writes them encodes them
/// (`encode(into:)`) and reads them back through its `RecordCodec`.
public protocol Record: Sendable {
    /// Throws `invalidArgument` when the record could not be read back once written (a string,
    /// a nesting or the whole record over a limit of `Limits`); returns a bound of its encoded
    /// size otherwise. The writer calls it before the record enters a batch.
    func checkLimits() throws(LogError) -> Int
    /// Writes the record into the frame being built: first the subjects and names it refers to
    /// (`RecordEncoder.subject`, `.key`), then `begin(tag:)` once, then its bytes.
    func encode(into encoder: inout RecordEncoder)
}

/// How a store's records are read back. Handed to everything that decodes frames (reader,
/// tailer, writer recovery, checks): format 1 records carry no length, so finding where one ends
/// takes the store's decoder.
public protocol RecordCodec: Sendable {
    /// Decodes the record whose tag byte (`FrameTag.isRecordTag`) was just read from `reader`,
    /// leaving the reader after it. References to subjects and names resolve through `names`.
    /// Throws `LogError.malformedEvent` (`ByteReader.malformed`) on anything it cannot read.
    func decodeRecord(tag: UInt8, from reader: inout ByteReader, names: FrameNames) throws(LogError) -> any Record
}

/// The frame dictionary a record's references resolve through while it is decoded.
public struct FrameNames {
    /// Subject keys interned in the frame so far.
    public let subjects: [String]
    /// Names interned in the frame so far.
    public let keys: [String]

    /// Reads a subject reference (a varint index) and resolves it.
    public func subject(_ reader: inout ByteReader) throws(LogError) -> String {
        let id = try reader.varint()
        guard id < UInt64(subjects.count) else { throw reader.malformed("subject id \(id) is not defined in the frame") }
        return subjects[Int(id)]
    }

    /// Reads a name reference (a varint index) and resolves it.
    public func key(_ reader: inout ByteReader) throws(LogError) -> String {
        let id = try reader.varint()
        guard id < UInt64(keys.count) else { throw reader.malformed("name id \(id) is not defined in the frame") }
        return keys[Int(id)]
    }
}

/// Writes one record into the frame being built (see `Record.encode(into:)`).
public struct RecordEncoder {
    let frame: FrameEncoder
    let hlc: HLC
    var begun = false

    /// The frame-local id of a subject (for the frame's index), defining it on first use.
    /// Call before `begin(tag:)`.
    public func subject(_ key: String) -> Int32 {
        assert(!begun, "a record defines its subjects before its tag")
        return frame.subjectID(key)
    }

    /// The frame-local id of a name, defining it on first use. Call before `begin(tag:)`.
    public func key(_ name: String) -> Int32 {
        assert(!begun, "a record defines its names before its tag")
        return frame.keyID(name)
    }

    /// Starts the record's event with its tag byte (one of the store's, `FrameTag.isRecordTag`)
    /// and returns the buffer its bytes go to.
    public mutating func begin(tag: UInt8) -> EncodeBuffer {
        precondition(!begun && FrameTag.isRecordTag(tag), "a record begins once, with a record tag")
        begun = true
        return frame.beginRecord(tag: tag, hlc: hlc)
    }
}

/// The tag bytes the engine reads itself (docs/FORMAT.md, "Events"): dictionary directives and
/// scalar metric points. Every other tag is a store's record.
public enum FrameTag {
    // Directives: no sequence number, no timestamp.
    static let defineSubject: UInt8 = 0x01
    static let defineKey: UInt8 = 0x02
    static let defineSeries: UInt8 = 0x03
    static let tick: UInt8 = 0x04
    // Scalar points: the low nibble (0...8) is how many XOR bytes follow.
    static let pointWithStep: UInt8 = 0x20
    static let pointWithoutStep: UInt8 = 0x30
    static let pointContinued: UInt8 = 0x40

    /// True for the tags a store may give its records: 0x10...0x1F and 0x50...0xFF.
    @inline(__always) public static func isRecordTag(_ tag: UInt8) -> Bool {
        (0x10...0x1F).contains(tag) || tag >= 0x50
    }
}

/// A (subject, metric name) pair interned in a frame, by dictionary index.
public struct SeriesKey: Hashable, Sendable {
    /// Index into the frame's subject table.
    public var subject: Int32
    /// Index into the frame's key table.
    public var key: Int32
}

/// One event decoded from a frame.
public struct DecodedEvent: Sendable {
    /// What happened.
    public enum Kind: Sendable {
        /// A scalar metric point of series `series` (an index into `DecodedFrame.series`).
        case point(series: Int32, step: Int64?, value: Double)
        /// Any other operation, as the store's codec decoded it (boxed: records are rare and
        /// large, points are many and small).
        indirect case record(any Record)
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
    /// Subject keys interned in the frame (the subjects it touches).
    public var subjects: [String]
    /// Metric and other names interned in the frame.
    public var keys: [String]
    /// (subject, key) pairs of scalar series.
    public var series: [SeriesKey]
    /// The events, in order.
    public var events: [DecodedEvent]

    /// The subject and metric name of a point's series.
    public func seriesNames(_ series: Int32) -> (subject: String, name: String) {
        let key = self.series[Int(series)]
        return (subjects[Int(key.subject)], keys[Int(key.key)])
    }

    /// How many operations the frame holds (points logged together count once).
    public var operationCount: Int { Int(header.eventCount) }
}
