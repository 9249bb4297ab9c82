import TrackModel

/// Decodes a frame's payload into events. Every malformed input throws `LogError.malformedEvent`;
/// nothing is read outside the payload and no id is trusted before it is checked.
public enum FrameDecoder {
    /// Decodes `payload` (already decompressed) of a frame with `header`.
    public static func decode(_ payload: UnsafeRawBufferPointer, header: FrameHeader) throws(LogError) -> DecodedFrame {
        var reader = ByteReader(payload)
        var trials: [String] = []
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

        func trialRef(_ reader: inout ByteReader) throws(LogError) -> String {
            let id = try reader.varint()
            guard id < UInt64(trials.count) else { throw reader.malformed("trial id \(id) is not defined in the frame") }
            return trials[Int(id)]
        }

        func keyRef(_ reader: inout ByteReader) throws(LogError) -> String {
            let id = try reader.varint()
            guard id < UInt64(keys.count) else { throw reader.malformed("name id \(id) is not defined in the frame") }
            return keys[Int(id)]
        }

        func optionalString(_ reader: inout ByteReader) throws(LogError) -> String? {
            switch try reader.byte() {
            case 0: return nil
            case 1: return try reader.string()
            case let other: throw reader.malformed("bad optional marker \(other)")
            }
        }

        func status(_ reader: inout ByteReader) throws(LogError) -> Status {
            let value = try reader.signed()
            let name = try reader.string()
            guard let v = Int(exactly: value) else { throw reader.malformed("status value out of range") }
            return Status(name: name, value: v)
        }

        while !reader.isAtEnd {
            let tag = try reader.byte()
            switch tag {
            case EventTag.defineTrial, EventTag.defineKey:
                let id = try reader.varint()
                let expected = tag == EventTag.defineTrial ? trials.count : keys.count
                guard id == UInt64(expected), expected < Limits.dictionaryEntriesMax else {
                    throw reader.malformed("dictionary id \(id) out of order (expected \(expected))")
                }
                let text = try reader.string()
                if tag == EventTag.defineTrial { trials.append(text) } else { keys.append(text) }
            case EventTag.defineSeries:
                let id = try reader.varint()
                guard id == UInt64(series.count), series.count < Limits.dictionaryEntriesMax else {
                    throw reader.malformed("series id \(id) out of order (expected \(series.count))")
                }
                let trial = try reader.varint(), key = try reader.varint()
                guard trial < UInt64(trials.count), key < UInt64(keys.count) else {
                    throw reader.malformed("series \(id) refers to an undefined trial or name")
                }
                series.append(SeriesKey(trial: Int32(trial), key: Int32(key)))
                seriesLastStep.append(0)
                seriesLastBits.append(0)
            case EventTag.tick:
                let delta = try reader.varint()
                guard delta < (1 << 62) else { throw reader.malformed("clock tick too large") }
                pendingTick &+= delta
            case EventTag.pointWithStep...(EventTag.pointWithStep | 8),
                 EventTag.pointWithoutStep...(EventTag.pointWithoutStep | 8),
                 EventTag.pointContinued...(EventTag.pointContinued | 8):
                let kind = tag & 0xF0
                let n = Int(tag & 0x0F)
                let id = try reader.varint()
                guard id < UInt64(series.count) else { throw reader.malformed("series id \(id) is not defined in the frame") }
                let index = Int(id)
                var step: Int64? = nil
                if kind == EventTag.pointContinued {
                    guard lastWasPoint, !events.isEmpty else { throw reader.malformed("a continued point follows no point") }
                    step = currentStep
                    if let step { seriesLastStep[index] = step }
                } else {
                    try nextEvent()
                    if kind == EventTag.pointWithStep {
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
                try nextEvent()
                let record: LogRecord
                switch tag {
                case EventTag.projectCreated:
                    let name = try reader.string()
                    let description = try optionalString(&reader)
                    record = .projectCreated(Project(name: name, description: description, metadata: try ValueCodec.decodeObject(&reader)))
                case EventTag.groupCreated:
                    let uid = try reader.string(), name = try reader.string(), project = try reader.string()
                    let description = try optionalString(&reader)
                    record = .groupCreated(TrialGroup(name: name, projectID: project, description: description,
                                                      metadata: try ValueCodec.decodeObject(&reader), uid: uid))
                case EventTag.trialCreated:
                    let uid = try trialRef(&reader)
                    guard let parts = Trial.splitUID(uid) else { throw reader.malformed("trial uid '\(uid)' is not <hash>_<revision>") }
                    let autoIncrement = try reader.byte() != 0
                    let name = try optionalString(&reader), description = try optionalString(&reader)
                    let version = try ValueCodec.decode(&reader)
                    let project = try optionalString(&reader), group = try optionalString(&reader)
                    let tags = try ValueCodec.decodeObject(&reader)
                    let parameters = try ValueCodec.decodeObject(&reader)
                    let metadata = try ValueCodec.decodeObject(&reader)
                    let st = try status(&reader)
                    record = .trialCreated(Trial(hash: parts.hash, revision: parts.revision, name: name, version: version.isNull ? Optional<Value>.none : version,
                                                 parameters: parameters, description: description, tags: tags, projectID: project,
                                                 groupID: group, metadata: metadata, status: st), autoIncrement: autoIncrement)
                case EventTag.trialAddedToProject:
                    let t = try trialRef(&reader); record = .trialAddedToProject(trial: t, project: try reader.string())
                case EventTag.trialAddedToGroup:
                    let t = try trialRef(&reader); record = .trialAddedToGroup(trial: t, group: try reader.string())
                case EventTag.trialStarted: record = .trialStarted(trial: try trialRef(&reader))
                case EventTag.trialFinished: record = .trialFinished(trial: try trialRef(&reader))
                case EventTag.chronoStarted:
                    let t = try trialRef(&reader); record = .chronoStarted(trial: t, name: try keyRef(&reader))
                case EventTag.chronoFinished:
                    let t = try trialRef(&reader); record = .chronoFinished(trial: t, name: try keyRef(&reader))
                case EventTag.argumentsLogged:
                    let t = try trialRef(&reader); record = .argumentsLogged(trial: t, try ValueCodec.decodeObject(&reader))
                case EventTag.metadataLogged:
                    let t = try trialRef(&reader); record = .metadataLogged(trial: t, try ValueCodec.decodeObject(&reader))
                case EventTag.tagsAdded:
                    let t = try trialRef(&reader); record = .tagsAdded(trial: t, try ValueCodec.decodeObject(&reader))
                case EventTag.statusSet:
                    let t = try trialRef(&reader)
                    let st = try status(&reader)
                    record = .statusSet(trial: t, st, error: try optionalString(&reader))
                case EventTag.groupMetadataSet:
                    let g = try reader.string(); record = .groupMetadataSet(group: g, try ValueCodec.decodeObject(&reader))
                case EventTag.metricsLogged:
                    let t = try trialRef(&reader)
                    let step: Int64?
                    switch try reader.byte() {
                    case 0: step = nil
                    case 1: step = try reader.signed()
                    case let other: throw reader.malformed("bad step marker \(other)")
                    }
                    record = .metricsLogged(trial: t, step: step, try ValueCodec.decodeObject(&reader))
                case EventTag.projectImported:
                    let v = try ValueCodec.decode(&reader)
                    do { record = .projectImported(try Project(trackJSON: v)) } catch { throw reader.malformed("imported project: \(error.message)") }
                case EventTag.groupImported:
                    let v = try ValueCodec.decode(&reader)
                    do { record = .groupImported(try TrialGroup(trackJSON: v)) } catch { throw reader.malformed("imported group: \(error.message)") }
                case EventTag.trialImported:
                    let uid = try trialRef(&reader)
                    let v = try ValueCodec.decode(&reader)
                    let t: Trial
                    do { t = try Trial(trackJSON: v) } catch { throw reader.malformed("imported trial: \(error.message)") }
                    guard t.uid == uid else { throw reader.malformed("imported trial \(t.uid) is filed under \(uid)") }
                    record = .trialImported(t)
                case EventTag.lossAccepted:
                    record = .lossAccepted(try reader.string())
                default:
                    throw reader.malformed("unknown event tag 0x\(String(tag, radix: 16))")
                }
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
        return DecodedFrame(header: header, trials: trials, keys: keys, series: series, events: events)
    }
}
