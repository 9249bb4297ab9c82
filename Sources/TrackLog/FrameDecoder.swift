/// Decodes a frame's payload into events: the engine's own (dictionary, clock, metric points)
/// here, records through the store's `RecordCodec`. Every malformed input throws `LogError.malformedEvent`;
/// nothing is read outside the payload and no id is trusted before it is checked.
public enum FrameDecoder {
    /// Decodes `payload` (already decompressed) of a frame with `header`.
    public static func decode(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec) throws(LogError) -> DecodedFrame {
        try decode(payload, header: header, records: records, tightLoop: true)
    }

    /// `decode`, with the tight loop for runs of points (`pointRun`) on or off: tests check
    /// that both ways give the same events and the same errors.
    static func decode(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec, tightLoop: Bool) throws(LogError) -> DecodedFrame {
        var events = EventList()
        events.events.reserveCapacity(Int(min(header.eventCount, 1 << 20)))
        let names = try walk(payload, header: header, records: records, tightLoop: tightLoop, into: &events)
        return DecodedFrame(header: header, subjects: names.subjects, keys: names.keys, series: names.series, events: events.events)
    }

    /// Checks `payload` as `decode` would, without keeping its events: what the writer runs on
    /// every frame before writing it (`WriterOptions.verifyFrames`), at a fraction of the cost.
    public static func validate(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec) throws(LogError) {
        var none = NoEvents()
        _ = try walk(payload, header: header, records: records, tightLoop: true, into: &none)
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
                                              tightLoop: Bool, into sink: inout Sink) throws(LogError) -> (subjects: [String], keys: [String], series: [SeriesKey]) {
        var reader = ByteReader(payload)
        var subjects: [String] = []
        var keys: [String] = []
        var series: [SeriesKey] = []
        // Per series: the last step and the last value's bits, in a buffer of our own (no
        // uniqueness or bounds check per point: `index` is checked against `series.count`).
        var seriesLast = SeriesDeltas()
        defer { seriesLast.free() }
        var clock = EventClock(header: header)
        var currentStep: Int64? = nil
        var lastWasPoint = false

        while !reader.isAtEnd {
            // Runs of metric points, the bulk of most frames, go through the tight loop first;
            // whatever it does not take (the first event that is not a plain point, the last
            // bytes of the payload, anything malformed) is read below, with every check.
            if tightLoop && reader.remaining >= pointRunSlack {
                pointRun(&reader, seriesCount: series.count, deltas: seriesLast.base, clock: &clock,
                         currentStep: &currentStep, lastWasPoint: &lastWasPoint, into: &sink)
                if reader.isAtEnd { break }
            }
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

    /// Bytes the tight loop needs left in the payload to read one event (a tick, then a point)
    /// without a bounds check per field: tag and varint 11, tag, two varints and 8 value bytes 29.
    private static let pointRunSlack = 48

    /// Decodes consecutive scalar points (and the ticks between them) as the general loop does,
    /// keeping its state in registers. Returns at the first event it does not take whole, before
    /// consuming any of it: another tag, a malformed varint, a series id out of range, a continued
    /// point after no point, more events than declared, or fewer than `pointRunSlack` bytes left.
    /// The general loop then reads that event and reports any fault.
    @inline(never)
    private static func pointRun<Sink: EventSink>(_ reader: inout ByteReader, seriesCount: Int, deltas: UnsafeMutablePointer<SeriesDeltas.Entry>,
                                                  clock: inout EventClock, currentStep: inout Int64?, lastWasPoint: inout Bool,
                                                  into sink: inout Sink) {
        guard let base = reader.bytes.baseAddress else { return }
        let limit = reader.bytes.count - pointRunSlack
        var position = reader.position
        var c = clock
        var step = currentStep
        var afterPoint = lastWasPoint
        defer {
            reader.position = position
            clock = c
            currentStep = step
            lastWasPoint = afterPoint
        }
        /// A varint of at most 10 bytes at `at` (in bounds: `limit` leaves room), or nil when
        /// longer or over 64 bits (the general loop names the fault).
        @inline(__always) func varint(_ at: inout Int) -> UInt64? {
            var b = base.load(fromByteOffset: at, as: UInt8.self)
            if b < 0x80 { at += 1; return UInt64(b) }
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var p = at
            while true {
                b = base.load(fromByteOffset: p, as: UInt8.self)
                p += 1
                if shift == 63 && b > 1 { return nil }
                result |= UInt64(b & 0x7F) << shift
                if b < 0x80 { at = p; return result }
                shift += 7
                if shift > 63 { return nil }
            }
        }
        while position <= limit {
            var p = position
            var tag = base.load(fromByteOffset: p, as: UInt8.self)
            var tick: UInt64 = 0
            if tag == FrameTag.tick {
                p += 1
                guard let delta = varint(&p), delta < (1 << 62) else { return }
                tick = delta
                tag = base.load(fromByteOffset: p, as: UInt8.self)
            }
            let kind = tag & 0xF0
            let n = Int(tag & 0x0F)
            guard n <= 8, kind >= FrameTag.pointWithStep, kind <= FrameTag.pointContinued else { return }
            p += 1
            guard let id = varint(&p), id < UInt64(seriesCount) else { return }
            let index = Int(id)
            if kind == FrameTag.pointContinued {
                // A tick before a continued point is allowed, and kept for the next event.
                guard afterPoint else { return }
                if let s = step { deltas[index].step = s }
                c.pendingTick &+= tick
            } else {
                guard c.eventsSeen < c.eventCount else { return }
                if kind == FrameTag.pointWithStep {
                    guard let raw = varint(&p) else { return }
                    let s = deltas[index].step &+ Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
                    deltas[index].step = s
                    step = s
                } else {
                    step = nil
                }
                c.pendingTick &+= tick
                _ = c.next()
            }
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: p, as: UInt64.self))
            let low = n >= 8 ? word : word & ((1 &<< UInt64(8 * n)) &- 1)
            let bits = deltas[index].bits ^ low
            deltas[index].bits = bits
            sink.point(sequence: c.sequence, hlc: c.hlc, series: Int32(index), step: step, value: Double(bitPattern: bits))
            afterPoint = true
            position = p + n
        }
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
