/// Decodes a frame's payload into events: the engine's own (dictionary, clock, metric points)
/// here, records through the store's `RecordCodec`. Every malformed input throws `LogError.malformedEvent`;
/// nothing is read outside the payload and no id is trusted before it is checked.
public enum FrameDecoder {
    /// Decodes `payload` (already decompressed) of a frame with `header`.
    public static func decode(_ payload: UnsafeRawBufferPointer, header: FrameHeader, records: any RecordCodec) throws(LogError) -> DecodedFrame {
        var reader = ByteReader(payload)
        var subjects: [String] = []
        var keys: [String] = []
        var series: [SeriesKey] = []
        var seriesLastStep: [Int64] = []
        var seriesLastBits: [UInt64] = []
        var events: [DecodedEvent] = []
        events.reserveCapacity(Int(min(header.eventCount, 1 << 20)))
        var sequence = header.firstSequence
        var hlc = header.minHLC.rawValue &- 1
        var pendingTick: UInt64 = 0
        var eventsSeen: UInt32 = 0
        var currentStep: Int64? = nil
        var lastWasPoint = false

        func nextEvent() throws(LogError) {
            guard eventsSeen < header.eventCount else {
                throw reader.malformed("more events than the \(header.eventCount) the frame header declares")
            }
            if eventsSeen > 0 { sequence += 1 }
            eventsSeen += 1
            hlc = hlc &+ 1 &+ pendingTick
            pendingTick = 0
        }

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
                seriesLastStep.append(0)
                seriesLastBits.append(0)
            case FrameTag.tick:
                let delta = try reader.varint()
                guard delta < (1 << 62) else { throw reader.malformed("clock tick too large") }
                pendingTick &+= delta
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
                    guard lastWasPoint, !events.isEmpty else { throw reader.malformed("a continued point follows no point") }
                    step = currentStep
                    if let step { seriesLastStep[index] = step }
                } else {
                    try nextEvent()
                    if kind == FrameTag.pointWithStep {
                        step = seriesLastStep[index] &+ (try reader.signed())
                        seriesLastStep[index] = step!
                    }
                    currentStep = step
                }
                let bits = seriesLastBits[index] ^ (try reader.lowBytes(n))
                seriesLastBits[index] = bits
                events.append(DecodedEvent(sequence: sequence, hlc: HLC(rawValue: hlc),
                                           kind: .point(series: Int32(index), step: step, value: Double(bitPattern: bits))))
                lastWasPoint = true
                continue
            default:
                if header.flags & FrameHeader.flagPointsOnly != 0 {
                    throw reader.malformed("a record in a frame flagged as holding only metric points")
                }
                guard FrameTag.isRecordTag(tag) else { throw reader.malformed("unknown event tag 0x\(String(tag, radix: 16))") }
                try nextEvent()
                let record = try records.decodeRecord(tag: tag, from: &reader, names: FrameNames(subjects: subjects, keys: keys))
                events.append(DecodedEvent(sequence: sequence, hlc: HLC(rawValue: hlc), kind: .record(record)))
                lastWasPoint = false
            }
        }
        guard eventsSeen == header.eventCount else {
            throw reader.malformed("the frame header declares \(header.eventCount) events, the payload holds \(eventsSeen)")
        }
        guard header.eventCount == 0 || hlc == header.maxHLC.rawValue else {
            throw reader.malformed("the events' timestamps end at \(HLC(rawValue: hlc)), the header says \(header.maxHLC)")
        }
        return DecodedFrame(header: header, subjects: subjects, keys: keys, series: series, events: events)
    }
}
