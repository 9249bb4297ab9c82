/// Every limit of the event log, named with its unit last, in one place. `Limits.check()`
/// verifies how they relate; the frame and segment layouts are in `docs/FORMAT.md`.
public enum Limits {
    /// The most raw (uncompressed) bytes one frame's payload may hold. Larger batches are split.
    public static let frameRawBytesMax = 4 << 20
    /// Raw bytes at which the writer seals its buffer into a frame (group commit batch size).
    public static let frameRawBytesTarget = 256 << 10
    /// The most events one frame may hold.
    public static let frameEventsMax = 1 << 20
    /// Default size at which a segment is sealed and a new one started.
    public static let segmentBytesDefault: Int64 = 64 << 20
    /// Smallest segment size a writer may be configured with.
    public static let segmentBytesMin: Int64 = 4 << 10
    /// Largest segment size (offsets in the index are 64-bit, but keep files manageable).
    public static let segmentBytesMax: Int64 = 4 << 30
    /// The longest string (uid, metric name, text value) an event may carry.
    public static let stringBytesMax = 1 << 20
    /// The most bytes one operation (a record: metadata, tags, an imported object...) may encode
    /// to. A record alone in a frame, with its frame's dictionary entries (a subject and a name,
    /// each at most `stringBytesMax`), must fit `frameRawBytesMax`; larger ones are refused
    /// before anything is written.
    public static let recordBytesMax = frameRawBytesMax - 2 * stringBytesMax - 4096
    /// How deep a value nested in an event may be.
    public static let valueDepthMax = 64
    /// The most metrics one call (`appendMetrics`, `appendPoints`) may log at once.
    public static let metricsPerCallMax = 1 << 12
    /// The largest batch size a writer may be configured with: a batch of the smallest events
    /// (2 bytes) must stay within `frameEventsMax` events.
    public static let frameRawBytesTargetMax = 1 << 20
    /// The most subjects or metric names one frame's dictionary may intern.
    public static let dictionaryEntriesMax = 1 << 16
    /// Default interval after which buffered data is written even if the batch is not full.
    public static let flushIntervalMillisecondsDefault = 50
    /// The most distinct subjects one index entry lists; a frame touching more is listed as touching all.
    public static let indexSubjectsPerFrameMax = 4096

    /// Checks that the limits fit together; a failure is a programming error.
    public static func check() {
        precondition(frameRawBytesTarget < frameRawBytesMax, "a frame's target size must be below its maximum")
        precondition(Int64(FrameHeader.sizeBytes + frameRawBytesMax) + Int64(SegmentHeader.sizeBytes) < segmentBytesMax,
                     "one frame must fit in a segment")
        precondition(segmentBytesMin > Int64(SegmentHeader.sizeBytes + FrameHeader.sizeBytes), "a segment must hold a frame header")
        precondition(frameRawBytesMax <= LZ4.blockInputBytesMax, "a frame's payload must fit one LZ4 block")
        precondition(stringBytesMax < frameRawBytesMax, "a string must fit in a frame")
        precondition((frameRawBytesTargetMax + metricsPerCallMax * 16) / 2 < frameEventsMax, "a batch of the smallest events must stay within a frame's event limit")
        precondition(metricsPerCallMax * 4 < dictionaryEntriesMax, "one call must fit a frame's dictionary")
        precondition(stringBytesMax <= recordBytesMax, "a record must be able to hold one longest string")
        precondition(recordBytesMax + 2 * (stringBytesMax + 11) + 64 <= frameRawBytesMax,
                     "a record alone in a frame, with its dictionary entries, must fit the frame")
    }
}
