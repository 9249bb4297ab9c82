/// Builds one frame's payload: interns subject keys, names and (subject, name) series in the frame's
/// own dictionary, so that every frame decodes on its own, and encodes events compactly.
/// Not thread-safe: the writer calls it under its append lock.
public final class FrameEncoder: @unchecked Sendable {
    /// The payload so far.
    @exclusivity(unchecked) public private(set) var buffer: EncodeBuffer
    @exclusivity(unchecked) private var subjectIDs: [String: Int32] = [:]
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
    /// The subject keys the frame touches, in first-use order.
    @exclusivity(unchecked) public private(set) var subjects: [String] = []
    /// True while every event of the frame is a scalar point.
    @exclusivity(unchecked) public private(set) var pointsOnly = true
    /// True once one of the frame's dictionaries is within one call of its limit
    /// (`Limits.dictionaryEntriesMax`): the writer then seals the frame, so that no frame ever
    /// holds more entries than a reader takes.
    @exclusivity(unchecked) public private(set) var isNearlyFull = false
    /// Entries at which a dictionary counts as nearly full: one call defines at most
    /// `Limits.metricsPerCallMax` series and names, and one subject.
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
        subjectIDs.removeAll(keepingCapacity: true)
        keyIDs.removeAll(keepingCapacity: true)
        seriesIDs.removeAll(keepingCapacity: true)
        seriesLastStep.removeAll(keepingCapacity: true)
        seriesLastBits.removeAll(keepingCapacity: true)
        subjects.removeAll(keepingCapacity: true)
        recentSeries.removeAll(keepingCapacity: true)
        pointsOnly = true
        isNearlyFull = false
        self.firstSequence = firstSequence
        eventCount = 0
        generation &+= 1
    }

    // MARK: - Dictionary

    /// The frame-local id of a subject key, defining it on first use.
    public func subjectID(_ subject: String) -> Int32 {
        if let id = subjectIDs[subject] { return id }
        let id = Int32(subjectIDs.count)
        subjectIDs[subject] = id
        if subjectIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        subjects.append(subject)
        buffer.append(FrameTag.defineSubject)
        buffer.appendVarint(UInt64(id))
        buffer.appendString(subject)
        return id
    }

    /// The frame-local id of a metric or chrono name, defining it on first use.
    public func keyID(_ name: String) -> Int32 {
        if let id = keyIDs[name] { return id }
        let id = Int32(keyIDs.count)
        keyIDs[name] = id
        if keyIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        buffer.append(FrameTag.defineKey)
        buffer.appendVarint(UInt64(id))
        buffer.appendString(name)
        return id
    }

    /// The series looked up most recently: callers logging the same few metrics of the same subject
    /// call after call hit here without hashing strings (equal strings usually share storage, and
    /// comparing those is one word).
    @exclusivity(unchecked) private var recentSeries: [(subject: String, name: String, id: Int32)] = []

    /// The frame-local id of the series (subject, name), defining it (and its parts) on first use.
    public func seriesID(subject: String, name: String) -> Int32 {
        for i in recentSeries.indices where recentSeries[i].subject == subject && recentSeries[i].name == name {
            return recentSeries[i].id
        }
        let id = lookUpSeries(subject: subject, name: name)
        if recentSeries.count == 8 { recentSeries.removeFirst() }
        recentSeries.append((subject, name, id))
        return id
    }

    private func lookUpSeries(subject: String, name: String) -> Int32 {
        let key = SeriesKey(subject: subjectID(subject), key: keyID(name))
        if let id = seriesIDs[key] { return id }
        let id = Int32(seriesIDs.count)
        seriesIDs[key] = id
        if seriesIDs.count >= FrameEncoder.dictionaryEntriesSoftMax { isNearlyFull = true }
        seriesLastStep.append(0)
        seriesLastBits.append(0)
        buffer.append(FrameTag.defineSeries)
        buffer.appendVarint(UInt64(id))
        buffer.appendVarint(UInt64(key.subject))
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
                b.append(FrameTag.tick)
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
                c.byte(FrameTag.tick)
                c.varint(tickGap)
            }
            if continues {
                c.byte(FrameTag.pointContinued | UInt8(n))
                c.varint(UInt64(series))
            } else if step != nil {
                c.byte(FrameTag.pointWithStep | UInt8(n))
                c.varint(UInt64(series))
                c.signed(stepDelta)
            } else {
                c.byte(FrameTag.pointWithoutStep | UInt8(n))
                c.varint(UInt64(series))
            }
            c.lowBytes(xor, n)
        }
    }

    /// Appends `count` points of series `series` (with `steps[i]`, or without steps when `steps`
    /// is nil), each its own event, exactly as that many `appendPoint` calls would, stopping
    /// early once the payload reaches `byteLimit` bytes. Timestamps come from `clock`: read
    /// (`tick()`) when `appendsUntilClockRead` runs out, the next one (`next()`) otherwise, as
    /// `LogWriter` does per point. Returns how many points it appended (at least one).
    @inline(__always)
    func appendPoints(series: Int32, steps: UnsafePointer<Int64>?, values: UnsafePointer<Double>, count: Int, byteLimit: Int,
                      clock: inout HybridClock, appendsUntilClockRead: inout Int, appendsPerClockRead: Int) -> Int {
        let index = Int(series)
        var lastBits = seriesLastBits[index]
        var lastStep = seriesLastStep[index]
        var last = lastHLC
        var events = eventCount
        let first = events == 0
        var firstHLC = minHLC
        var i = 0
        unowned(unsafe) let b = buffer
        // The frame ends at `byteLimit`: room for what is left of it, and one more point.
        let room = max(byteLimit - b.count, 0) + 48
        b.withCursor(maximumBytes: room) { c in
            let end = c.position + (room - 48)
            repeat {
                let hlc: HLC
                if appendsUntilClockRead <= 0 {
                    appendsUntilClockRead = appendsPerClockRead
                    hlc = clock.tick()
                } else {
                    appendsUntilClockRead -= 1
                    hlc = clock.next()
                }
                if i > 0 || !first {
                    let gap = hlc.rawValue &- last.rawValue &- 1
                    if gap != 0 {
                        c.byte(FrameTag.tick)
                        c.varint(gap)
                    }
                } else {
                    firstHLC = hlc
                }
                last = hlc
                events += 1
                let bits = values[i].bitPattern
                let xor = bits ^ lastBits
                lastBits = bits
                let n = xor == 0 ? 0 : 8 - xor.leadingZeroBitCount / 8
                if let steps {
                    let step = steps[i]
                    c.byte(FrameTag.pointWithStep | UInt8(n))
                    c.varint(UInt64(series))
                    c.signed(step &- lastStep)
                    lastStep = step
                } else {
                    c.byte(FrameTag.pointWithoutStep | UInt8(n))
                    c.varint(UInt64(series))
                }
                c.lowBytes(xor, n)
                i += 1
            } while i < count && c.position < end
        }
        minHLC = firstHLC
        seriesLastBits[index] = lastBits
        seriesLastStep[index] = lastStep
        lastHLC = last
        eventCount = events
        return i
    }

    /// Starts a record's event at `hlc` with its tag (after the record defined its subjects and
    /// names) and returns the buffer its bytes go to (`RecordEncoder.begin(tag:)`).
    func beginRecord(tag: UInt8, hlc: HLC) -> EncodeBuffer {
        pointsOnly = false
        beginEvent(hlc)
        buffer.append(tag)
        return buffer
    }

    /// Appends a store's record at `hlc`.
    public func appendRecord(_ record: some Record, hlc: HLC) {
        var encoder = RecordEncoder(frame: self, hlc: hlc)
        record.encode(into: &encoder)
        precondition(encoder.begun, "a record's encode(into:) wrote no tag")
    }
}
