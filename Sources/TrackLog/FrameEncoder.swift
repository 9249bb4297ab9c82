import TrackModel

/// Builds one frame's payload: interns trial uids, names and (trial, name) series in the frame's
/// own dictionary, so that every frame decodes on its own, and encodes events compactly.
/// Not thread-safe: the writer calls it under its append lock.
public final class FrameEncoder: @unchecked Sendable {
    /// The payload so far.
    @exclusivity(unchecked) public private(set) var buffer: EncodeBuffer
    @exclusivity(unchecked) private var trialIDs: [String: Int32] = [:]
    @exclusivity(unchecked) private var keyIDs: [String: Int32] = [:]
    @exclusivity(unchecked) private var seriesIDs: [SeriesKey: Int32] = [:]
    @exclusivity(unchecked) private var seriesLastStep: [Int64] = []
    @exclusivity(unchecked) private var seriesLastBits: [UInt64] = []
    /// Bumped on every reset: series ids cached by callers are valid only within one generation.
    @exclusivity(unchecked) public private(set) var generation: UInt64 = 0

    /// Sequence number of the frame's first event.
    @exclusivity(unchecked) public private(set) var firstSequence: UInt64 = 0
    /// Events (operations) in the frame.
    @exclusivity(unchecked) public private(set) var eventCount: UInt32 = 0
    /// Timestamp of the first event.
    @exclusivity(unchecked) public private(set) var minHLC: HLC = .zero
    /// Timestamp of the last event.
    @exclusivity(unchecked) public private(set) var lastHLC: HLC = .zero
    /// The trial uids the frame touches, in first-use order.
    @exclusivity(unchecked) public private(set) var trials: [String] = []
    /// True while every event of the frame is a scalar point.
    @exclusivity(unchecked) public private(set) var pointsOnly = true
    /// True once one of the frame's dictionaries is within one call of its limit
    /// (`Limits.dictionaryEntriesMax`): the writer then seals the frame, so that no frame ever
    /// holds more entries than a reader takes.
    @exclusivity(unchecked) public private(set) var isNearlyFull = false
    /// Entries at which a dictionary counts as nearly full: one call defines at most
    /// `Limits.metricsPerCallMax` series and names, and one trial.
    static let dictionaryEntriesSoftMax = Limits.dictionaryEntriesMax - Limits.metricsPerCallMax - 2

    /// An empty encoder whose first event will get sequence `firstSequence`.
    public init(firstSequence: UInt64, buffer: EncodeBuffer = EncodeBuffer(capacity: Limits.frameRawBytesTarget + 4096)) {
        self.buffer = buffer
        self.firstSequence = firstSequence
    }

    /// True when no event is encoded yet.
    public var isEmpty: Bool { eventCount == 0 }

    /// Starts a new frame in `buffer`, the next event getting `firstSequence`.
    public func reset(firstSequence: UInt64, buffer newBuffer: EncodeBuffer? = nil) {
        if let newBuffer { buffer = newBuffer }
        buffer.reset()
        trialIDs.removeAll(keepingCapacity: true)
        keyIDs.removeAll(keepingCapacity: true)
        seriesIDs.removeAll(keepingCapacity: true)
        seriesLastStep.removeAll(keepingCapacity: true)
        seriesLastBits.removeAll(keepingCapacity: true)
        trials.removeAll(keepingCapacity: true)
        recentSeries.removeAll(keepingCapacity: true)
        pointsOnly = true
        isNearlyFull = false
        self.firstSequence = firstSequence
        eventCount = 0
        generation &+= 1
    }

    // MARK: - Dictionary

    /// The frame-local id of a trial uid, defining it on first use.
    public func trialID(_ uid: String) -> Int32 {
        if let id = trialIDs[uid] { return id }
        let id = Int32(trialIDs.count)
        trialIDs[uid] = id
        if trialIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        trials.append(uid)
        buffer.append(EventTag.defineTrial)
        buffer.appendVarint(UInt64(id))
        buffer.appendString(uid)
        return id
    }

    /// The frame-local id of a metric or chrono name, defining it on first use.
    public func keyID(_ name: String) -> Int32 {
        if let id = keyIDs[name] { return id }
        let id = Int32(keyIDs.count)
        keyIDs[name] = id
        if keyIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        buffer.append(EventTag.defineKey)
        buffer.appendVarint(UInt64(id))
        buffer.appendString(name)
        return id
    }

    /// The series looked up most recently: callers logging the same few metrics of the same trial
    /// call after call hit here without hashing strings (equal strings usually share storage, and
    /// comparing those is one word).
    @exclusivity(unchecked) private var recentSeries: [(trial: String, name: String, id: Int32)] = []

    /// The frame-local id of the series (trial, name), defining it (and its parts) on first use.
    public func seriesID(trial: String, name: String) -> Int32 {
        for i in recentSeries.indices where recentSeries[i].trial == trial && recentSeries[i].name == name {
            return recentSeries[i].id
        }
        let id = lookUpSeries(trial: trial, name: name)
        if recentSeries.count == 8 { recentSeries.removeFirst() }
        recentSeries.append((trial, name, id))
        return id
    }

    private func lookUpSeries(trial: String, name: String) -> Int32 {
        let key = SeriesKey(trial: trialID(trial), key: keyID(name))
        if let id = seriesIDs[key] { return id }
        let id = Int32(seriesIDs.count)
        seriesIDs[key] = id
        if seriesIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        seriesLastStep.append(0)
        seriesLastBits.append(0)
        buffer.append(EventTag.defineSeries)
        buffer.appendVarint(UInt64(id))
        buffer.appendVarint(UInt64(key.trial))
        buffer.appendVarint(UInt64(key.key))
        return id
    }

    // MARK: - Events

    /// Accounts for a new event at `hlc` (strictly after the previous one): emits a tick
    /// directive when the clock moved by more than one.
    @inline(__always) private func beginEvent(_ hlc: HLC) {
        if eventCount == 0 {
            minHLC = hlc
        } else {
            let gap = hlc.rawValue &- lastHLC.rawValue
            if gap != 1 {
                unowned(unsafe) let b = buffer
                b.append(EventTag.tick)
                b.appendVarint(gap &- 1)
            }
        }
        lastHLC = hlc
        eventCount += 1
    }

    /// The sequence number the next event will get.
    public var nextSequence: UInt64 { firstSequence + UInt64(eventCount) }

    /// Appends a scalar point of series `series` at `hlc`, as a new event unless `continues`
    /// (then it joins the previous event: same sequence, timestamp and step).
    @inline(__always) public func appendPoint(series: Int32, step: Int64?, value: Double, hlc: HLC, continues: Bool) {
        let index = Int(series)
        let bits = value.bitPattern
        let xor = bits ^ seriesLastBits[index]
        seriesLastBits[index] = bits
        let n = xor == 0 ? 0 : 8 - xor.leadingZeroBitCount / 8
        var tickGap: UInt64 = 0
        if !continues {
            if eventCount == 0 {
                minHLC = hlc
            } else {
                tickGap = hlc.rawValue &- lastHLC.rawValue &- 1
            }
            lastHLC = hlc
            eventCount += 1
        }
        var stepDelta: Int64 = 0
        if let step {
            stepDelta = step &- seriesLastStep[index]
            seriesLastStep[index] = step
        }
        // At most: tick (1 + 10), tag 1, series 10, step 10, value 8.
        buffer.withCursor(maximumBytes: 48) { c in
            if tickGap != 0 {
                c.byte(EventTag.tick)
                c.varint(tickGap)
            }
            if continues {
                c.byte(EventTag.pointContinued | UInt8(n))
                c.varint(UInt64(series))
            } else if step != nil {
                c.byte(EventTag.pointWithStep | UInt8(n))
                c.varint(UInt64(series))
                c.signed(stepDelta)
            } else {
                c.byte(EventTag.pointWithoutStep | UInt8(n))
                c.varint(UInt64(series))
            }
            c.lowBytes(xor, n)
        }
    }

    /// Appends any other operation at `hlc`.
    public func appendRecord(_ record: LogRecord, hlc: HLC) {
        pointsOnly = false
        // Define the dictionary entries first, so the event's own bytes follow its tag.
        var trial: Int32 = 0
        var key: Int32 = 0
        if let uid = record.trialUID { trial = trialID(uid) }
        switch record {
        case .chronoStarted(_, let name), .chronoFinished(_, let name): key = keyID(name)
        default: break
        }
        beginEvent(hlc)
        let b = buffer
        switch record {
        case .projectCreated(let p):
            b.append(EventTag.projectCreated)
            b.appendString(p.name)
            appendOptional(p.description)
            ValueCodec.encodeObject(p.metadata, into: b)
        case .groupCreated(let g):
            b.append(EventTag.groupCreated)
            b.appendString(g.uid)
            b.appendString(g.name)
            b.appendString(g.projectID)
            appendOptional(g.description)
            ValueCodec.encodeObject(g.metadata, into: b)
        case .trialCreated(let t, let autoIncrement):
            b.append(EventTag.trialCreated)
            b.appendVarint(UInt64(trial))
            b.append(autoIncrement ? 1 : 0)
            appendOptional(t.name)
            appendOptional(t.description)
            ValueCodec.encode(t.version ?? .null, into: b)
            appendOptional(t.projectID)
            appendOptional(t.groupID)
            ValueCodec.encodeObject(t.tags, into: b)
            ValueCodec.encodeObject(t.parameters, into: b)
            ValueCodec.encodeObject(t.metadata, into: b)
            b.appendSigned(Int64(t.status.value))
            b.appendString(t.status.name)
        case .trialAddedToProject(_, let project):
            b.append(EventTag.trialAddedToProject); b.appendVarint(UInt64(trial)); b.appendString(project)
        case .trialAddedToGroup(_, let group):
            b.append(EventTag.trialAddedToGroup); b.appendVarint(UInt64(trial)); b.appendString(group)
        case .trialStarted:
            b.append(EventTag.trialStarted); b.appendVarint(UInt64(trial))
        case .trialFinished:
            b.append(EventTag.trialFinished); b.appendVarint(UInt64(trial))
        case .chronoStarted:
            b.append(EventTag.chronoStarted); b.appendVarint(UInt64(trial)); b.appendVarint(UInt64(key))
        case .chronoFinished:
            b.append(EventTag.chronoFinished); b.appendVarint(UInt64(trial)); b.appendVarint(UInt64(key))
        case .argumentsLogged(_, let o):
            b.append(EventTag.argumentsLogged); b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .metadataLogged(_, let o):
            b.append(EventTag.metadataLogged); b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .tagsAdded(_, let o):
            b.append(EventTag.tagsAdded); b.appendVarint(UInt64(trial)); ValueCodec.encodeObject(o, into: b)
        case .statusSet(_, let status, let error):
            b.append(EventTag.statusSet)
            b.appendVarint(UInt64(trial))
            b.appendSigned(Int64(status.value))
            b.appendString(status.name)
            appendOptional(error)
        case .groupMetadataSet(let group, let o):
            b.append(EventTag.groupMetadataSet); b.appendString(group); ValueCodec.encodeObject(o, into: b)
        case .projectImported(let p):
            b.append(EventTag.projectImported); ValueCodec.encode(p.trackJSON(), into: b)
        case .groupImported(let g):
            b.append(EventTag.groupImported); ValueCodec.encode(g.trackJSON, into: b)
        case .trialImported(let t):
            b.append(EventTag.trialImported); b.appendVarint(UInt64(trial)); ValueCodec.encode(t.trackJSON, into: b)
        case .lossAccepted(let text):
            b.append(EventTag.lossAccepted); b.appendString(text)
        case .metricsLogged(_, let step, let o):
            b.append(EventTag.metricsLogged)
            b.appendVarint(UInt64(trial))
            if let step { b.append(1); b.appendSigned(step) } else { b.append(0) }
            ValueCodec.encodeObject(o, into: b)
        }
    }

    private func appendOptional(_ s: String?) {
        if let s { buffer.append(1); buffer.appendString(s) } else { buffer.append(0) }
    }
}
