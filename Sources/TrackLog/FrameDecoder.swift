/// Decodes a frame's payload into events: the engine's own (dictionary, clock, metric points)
/// here, records through the store's `RecordCodec`. Every malformed input throws `LogError.malformedEvent`;
/// nothing is read outside the payload and no id is trusted before it is checked.
public enum FrameDecoder {
    /// Decodes `payload` (already decompressed) of a frame with `header`.
    public static func decode(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec) throws(LogError) -> DecodedFrame {
        var events = EventList()
        events.events.reserveCapacity(Int(min(header.eventCount, 1 << 20)))
        let names = try walk(payload, header: header, records: records, into: &events)
        return DecodedFrame(header: header, subjects: names.subjects, keys: names.keys, series: names.series, events: events.events)
    }

    /// Checks `payload` as `decode` would, without keeping its events: what the writer runs on
    /// every frame before writing it (`WriterOptions.verifyFrames`), at a fraction of the cost.
    public static func validate(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec) throws(LogError) {
        var none = NoEvents()
        _ = try walk(payload, header: header, records: records, into: &none)
    }

    /// Where the one decoding loop puts each event.
    private protocol EventSink {
        mutating func point(sequence: UInt64, hlc: UInt64, series: Int32, step: Int64?, value: Double)
        mutating func record(sequence: UInt64, hlc: UInt64, _ record: any Record)
    }

    private struct EventList: EventSink {
        var events: [DecodedEvent] = []
        @inline(__always) mutating func point(sequence: UInt64, hlc: UInt64, series: Int32, step: Int64?, value: Double) {
            events.append(DecodedEvent(sequence: sequence, hlc: HLC(rawValue: hlc), kind: .point(series: series, step: step, value: value)))
        }
        @inline(__always) mutating func record(sequence: UInt64, hlc: UInt64, _ record: any Record) {
            events.append(DecodedEvent(sequence: sequence, hlc: HLC(rawValue: hlc), kind: .record(record)))
        }
    }

    private struct NoEvents: EventSink {
        @inline(__always) mutating func point(sequence: UInt64, hlc: UInt64, series: Int32, step: Int64?, value: Double) {}
        @inline(__always) mutating func record(sequence: UInt64, hlc: UInt64, _ record: any Record) {}
    }

    /// The decoding loop: checks every byte of the payload and hands each event to `sink`;
    /// returns the frame's dictionary.
    @inline(__always)
    private static func walk<Sink: EventSink>(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec,
                                              into sink: inout Sink) throws(LogError) -> (subjects: [String], keys: [String], series: [SeriesKey]) {
        var reader = ByteReader(payload)
        var subjects: [String] = []
        var keys: [String] = []
        var series: [SeriesKey] = []
        // Per series: the last step and the last value's bits (what points are deltas of).
        // Per series: the last step and the last value's bits, in a buffer of our own (no
        // uniqueness or bounds check per point: `index` is checked against `series.count`).
        var seriesLast = SeriesDeltas()
        defer { seriesLast.free() }
        var clock = EventClock(header: header)
        var currentStep: Int64? = nil
        var lastWasPoint = false

        while !reader.isAtEnd {
            let tag = try reader.byte()
            switch tag {
            case FrameTag.defineSubject, FrameTag.defineKey:
                let id = try reader.varint()
                let expected = tag == FrameTag.defineSubject ? subjects.count : keys.count
                guard id == UInt64(expected), expected < Limits.dictionaryEntriesMax else {
                    throw reader.malformed("dictionary id \(id) out of order (expected \(expected))")
                }
                let text = try reader.string()
                if tag == FrameTag.defineSubject { subjects.append(text) } else { keys.append(text) }
            case FrameTag.defineSeries:
                let id = try reader.varint()
                guard id == UInt64(series.count), series.count < Limits.dictionaryEntriesMax else {
                    throw reader.malformed("series id \(id) out of order (expected \(series.count))")
                }
                let subject = try reader.varint(), key = try reader.varint()
                guard subject < UInt64(subjects.count), key < UInt64(keys.count) else {
                    throw reader.malformed("series \(id) refers to an undefined subject or name")
                }
                series.append(SeriesKey(subject: Int32(subject), key: Int32(key)))
                seriesLast.append()
            case FrameTag.tick:
                let delta = try reader.varint()
                guard delta < (1 << 62) else { throw reader.malformed("clock tick too large") }
                clock.pendingTick &+= delta
            case FrameTag.pointWithStep...(FrameTag.pointWithStep | 8),
                 FrameTag.pointWithoutStep...(FrameTag.pointWithoutStep | 8),
                 FrameTag.pointContinued...(FrameTag.pointContinued | 8):
                let kind = tag & 0xF0
                let n = Int(tag & 0x0F)
                let id = try reader.varint()
                guard id < UInt64(series.count) else { throw reader.malformed("series id \(id) is not defined in the frame") }
                let index = Int(id)
                var step: Int64? = nil
                if kind == FrameTag.pointContinued {
                    guard lastWasPoint else { throw reader.malformed("a continued point follows no point") }
                    step = currentStep
                    if let step { seriesLast.base[index].step = step }
                } else {
                    guard clock.next() else { throw clock.tooMany(reader) }
                    if kind == FrameTag.pointWithStep {
                        let s = seriesLast.base[index].step &+ (try reader.signed())
                        seriesLast.base[index].step = s
                        step = s
                    }
                    currentStep = step
                }
                let bits = seriesLast.base[index].bits ^ (try reader.lowBytes(n))
                seriesLast.base[index].bits = bits
                sink.point(sequence: clock.sequence, hlc: clock.hlc, series: Int32(index), step: step, value: Double(bitPattern: bits))
                lastWasPoint = true
                continue
            default:
                if header.flags & FrameHeader.flagPointsOnly != 0 {
                    throw reader.malformed("a record in a frame flagged as holding only metric points")
                }
                guard FrameTag.isRecordTag(tag) else { throw reader.malformed("unknown event tag 0x\(String(tag, radix: 16))") }
                guard clock.next() else { throw clock.tooMany(reader) }
                let record = try records.decodeRecord(tag: tag, from: &reader, names: FrameNames(subjects: subjects, keys: keys))
                sink.record(sequence: clock.sequence, hlc: clock.hlc, record)
                lastWasPoint = false
            }
        }
        guard clock.eventsSeen == header.eventCount else {
            throw reader.malformed("the frame header declares \(header.eventCount) events, the payload holds \(clock.eventsSeen)")
        }
        guard header.eventCount == 0 || clock.hlc == header.maxHLC.rawValue else {
            throw reader.malformed("the events' timestamps end at \(HLC(rawValue: clock.hlc)), the header says \(header.maxHLC)")
        }
        return (subjects, keys, series)
    }

    /// Each event's sequence number and timestamp: one after the previous, plus the ticks between.
    private struct EventClock {
        let eventCount: UInt32
        var sequence: UInt64
        var hlc: UInt64
        var pendingTick: UInt64 = 0
        var eventsSeen: UInt32 = 0

        init(header: FrameHeader) {
            eventCount = header.eventCount
            sequence = header.firstSequence
            hlc = header.minHLC.rawValue &- 1
        }

        /// Moves to the next event; false when the frame holds more than its header declares.
        @inline(__always) mutating func next() -> Bool {
            guard eventsSeen < eventCount else { return false }
            if eventsSeen > 0 { sequence &+= 1 }
            eventsSeen &+= 1
            hlc = hlc &+ 1 &+ pendingTick
            pendingTick = 0
            return true
        }

        @inline(never) func tooMany(_ reader: ByteReader) -> LogError {
            reader.malformed("more events than the \(eventCount) the frame header declares")
        }
    }

    /// A growable buffer of (last step, last bits) per series, freed by the decoder.
    private struct SeriesDeltas {
        struct Entry { var step: Int64 = 0; var bits: UInt64 = 0 }
        var base = UnsafeMutablePointer<Entry>.allocate(capacity: 16)
        var count = 0
        var capacity = 16

        mutating func append() {
            if count == capacity {
                let grown = UnsafeMutablePointer<Entry>.allocate(capacity: capacity * 2)
                grown.moveInitialize(from: base, count: count)
                base.deallocate()
                base = grown
                capacity *= 2
            }
            (base + count).initialize(to: Entry())
            count += 1
        }

        func free() { base.deallocate() }
    }
}
