import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackModel
import TrackStore

/// `track-replay summary DB`.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rebuild the state and print projects, groups and trials as tables.",
                                                    discussion: damageHelp)

    @Argument(help: "The database directory.")
    var database: String

    @Option(help: ArgumentHelp("Only the trials matching this query, in track's query language (JSON).",
                               discussion: "For example '{\"parameters.lr\": {\"$gt\": 0.01}}' or '{\"status\": \"Completed\"}'."))
    var `where`: String?

    @Option(help: "Sort the trials by a metric's last value or a parameter, by name: --sort loss, --sort lr.")
    var sort: String?

    @Flag(help: "With --sort: largest first.")
    var descending = false

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        var trials: [Trial]?
        if let text = self.where {
            let query: Query
            do { query = try Query(json: text) } catch { throw ToolError("--where: \(error)") }
            do { trials = try replayed.projection.allTrials.filter { try query.matches($0) } } catch { throw ToolError("--where: \(error)") }
        }
        if let sort {
            let key = sort, descending = self.descending
            let all = trials ?? replayed.projection.allTrials
            guard all.contains(where: { $0.metrics[key] != nil || $0.parameters[key] != nil }) else {
                throw ToolError("--sort \(sort): no trial has a metric or parameter named '\(key)'")
            }
            // Trials without the key go last, in either direction.
            func number(_ t: Trial) -> Double? { (t.metrics[key]?.last?.value ?? t.parameters[key])?.doubleValue }
            func text(_ t: Trial) -> String { (t.metrics[key]?.last?.value ?? t.parameters[key]).map(shortText) ?? "" }
            trials = all.sorted { a, b in
                switch (number(a), number(b)) {
                case let (x?, y?): return descending ? x > y : x < y
                case (.some, nil): return true
                case (nil, .some): return false
                case (nil, nil): return descending ? text(a) > text(b) : text(a) < text(b)
                }
            }
        }
        printSummary(replayed.projection, trials: trials)
        if let line = replayed.damageLine { print(line) }
        try replayed.finish()
    }
}

/// `track-replay show DB TRIAL [--points]`.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one trial as JSON in track's serialization (dtype \"trial\"), its series summarized.",
        discussion: "Each metric series is shown as {points, first_step, last_step, last, min, max} (NaN as a string); --points prints every point, which is track's serialization exactly (track.serialization.from_json reads it). `metrics` prints series as CSV or JSON.\n\n" + damageHelp)

    @Flag(help: "Print every point of every series (track's full serialization) instead of a summary of each.")
    var points = false

    @Argument(help: "The database directory.")
    var database: String

    @Argument(help: "The trial: its uid, a unique uid prefix, PREFIX_REVISION as summary prints it (2e1b2597e896_0), or a unique name.")
    var trial: String

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let trial = try resolveTrial(self.trial, in: replayed.projection)
        var json = trial.trackJSON
        if !points, case .object(var object) = json {
            var summaries = ValueObject()
            for (name, series) in trial.metrics { summaries[name] = Show.summary(series) }
            object["metrics"] = .object(summaries)
            json = .object(object)
        }
        print(JSON.encode(json, pretty: true))
        try replayed.finish()
    }

    /// A series in a few numbers: how many points, first and last step, last value, min and max
    /// of the numeric values (non-finite values as strings, so that the output is strict JSON).
    static func summary(_ series: MetricSeries) -> Value {
        let finite = { (v: Value) in v.nonFiniteAsStrings }
        var minimum: Double?, maximum: Double?
        for point in series.points {
            guard let d = point.value.doubleValue, !d.isNaN else { continue }
            minimum = min(minimum ?? d, d)
            maximum = max(maximum ?? d, d)
        }
        return .object(["points": .int(Int64(series.count)),
                        "first_step": series.points.first(where: { $0.step != nil })?.step?.value ?? .null,
                        "last_step": series.lastStep?.value ?? .null,
                        "last": series.last.map { finite($0.value) } ?? .null,
                        "min": minimum.map { finite(.double($0)) } ?? .null,
                        "max": maximum.map { finite(.double($0)) } ?? .null])
    }
}

/// `track-replay metrics DB TRIAL [NAME...] --format csv|json`.
struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the metric series of one trial as CSV or JSON.", discussion: damageHelp)

    enum Format: String, ExpressibleByArgument, CaseIterable { case csv, json }

    @Argument(help: "The database directory.")
    var database: String

    @Argument(help: "The trial: its uid, a unique uid prefix, PREFIX_REVISION as summary prints it (2e1b2597e896_0), or a unique name.")
    var trial: String

    @Argument(help: "The metrics to print (all when none is given).")
    var names: [String] = []

    @Option(help: "csv (metric,step,value) or json ({metric: [{step, value}, ...]}).")
    var format: Format = .csv

    /// How JSON output writes NaN and infinities, which strict JSON has no numbers for.
    enum NonFinite: String, ExpressibleByArgument, CaseIterable { case string, null, bare }

    @Option(help: ArgumentHelp("With --format json: how to write NaN and infinities.",
                               discussion: "string: \"NaN\", \"Infinity\", \"-Infinity\" (strict JSON, and the value is kept); null: null (strict JSON, NaN and infinities look alike); bare: NaN, Infinity, -Infinity as Python's json module writes them (what track's files hold; strict parsers refuse it)."))
    var nonFinite: NonFinite = .string

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let trial = try resolveTrial(self.trial, in: replayed.projection)
        let selected = names.isEmpty ? Array(trial.metrics.keys) : names
        for name in selected where trial.metrics[name] == nil {
            throw ToolError("trial \(trial.uid) has no metric '\(name)'; it has: \(trial.metrics.keys.joined(separator: ", "))")
        }
        switch format {
        case .csv:
            var out = "metric,step,value\n"
            for name in selected {
                for point in trial.metrics[name]!.points {
                    out += "\(csvField(name)),\(point.step?.description ?? ""),\(csvField(csvValue(point.value)))\n"
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        case .json:
            var object = ValueObject()
            for name in selected {
                object[name] = .array(trial.metrics[name]!.points.map { .object(["step": $0.step?.value ?? .null, "value": jsonValue($0.value)]) })
            }
            print(JSON.encode(.object(object), pretty: true))
        }
        try replayed.finish()
    }

    /// A point's value for JSON output, NaN and infinities as `--non-finite` says.
    private func jsonValue(_ v: Value) -> Value {
        guard case .double(let d) = v, !d.isFinite, nonFinite != .bare else { return v }
        return nonFinite == .null ? .null : v.nonFiniteAsStrings
    }

    private func csvValue(_ v: Value) -> String {
        if case .double(let d) = v { return JSON.formatDouble(d) }
        if case .string(let s) = v { return s }
        return JSON.encode(v)
    }

    private func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// `track-replay stats DB`.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print streams, segments, frames, events by type, sizes and the time span of the log.",
                                                    discussion: damageHelp)

    @Argument(help: "The database directory.")
    var database: String

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let reader: LogReader
        let damage = DamageCollector()
        do { reader = try LogReader(database: database, records: .track, damagePolicy: .reportAndSkip, reporter: damage.reporter) } catch { throw ToolError("\(error)") }
        var segments = 0, frames = 0, events = 0, points = 0
        var stored: Int64 = 0, raw: Int64 = 0
        var byKind: [String: Int] = [:]
        var oldest: HLC?, newest: HLC?
        var logLosses: [(HLC, String)] = []
        let streams = reader.streams()
        let bar = ProgressBar("reading", total: (try? Compactor.diskBytes(reader.layout)) ?? 1)
        var done: Int64 = 0
        do {
            try reader.checkNamedStreams()
            for stream in streams {
                segments += reader.segments(stream).count
                try reader.forEachFrame(stream: stream) { located in
                    let f = located.frame
                    frames += 1
                    stored += Int64(f.header.frameBytes)
                    raw += Int64(f.header.rawBytes) + Int64(FrameHeader.sizeBytes)
                    events += Int(f.header.eventCount)
                    if f.header.eventCount > 0 {
                        oldest = min(oldest ?? f.header.minHLC, f.header.minHLC)
                        newest = max(newest ?? f.header.maxHLC, f.header.maxHLC)
                    }
                    for e in f.events {
                        switch e.kind {
                        case .point: points += 1
                        case .record:
                            guard let r = e.record else { continue }
                            byKind[r.kindName, default: 0] += 1
                            if case .lossAccepted(let text) = r { logLosses.append((e.hlc, text)) }
                        }
                    }
                    done += Int64(f.header.frameBytes)
                    bar.update(done)
                }
            }
        } catch { throw ToolError("\(error)") }
        bar.finish()
        if reading.strict, let first = damage.first {
            throw ToolError("the database is damaged: \(describe(first))\(damage.count > 1 ? " and \(damage.count - 1) more places" : ""); run track-replay verify for details, or leave out --strict to see what is intact")
        }
        let layout = DatabaseLayout(root: database)
        print("database: \(database)")
        print("streams: \(streams.count)")
        print("segments: \(segments)")
        print("frames: \(frames)")
        print("events: \(events) (metric points: \(points))")
        print("events by type:")
        if points > 0 { print("  \(column("metric_point", 24)) \(points)") }
        for (kind, count) in byKind.sorted(by: { $0.value > $1.value }) { print("  \(column(kind, 24)) \(count)") }
        print("log bytes: \(byteCount(stored)) (\(events > 0 ? String(format: "%.2f", Double(stored) / Double(events)) : "-") bytes per event)")
        print("compression ratio: \(stored > 0 ? String(format: "%.2f", Double(raw) / Double(stored)) : "-")")
        // Losses accepted by compaction: in the snapshot, or still in the log.
        var losses = ((try? Compactor.loadGeneration(layout, reporter: { _ in }))??.projection.acceptedLosses) ?? []
        for (hlc, text) in logLosses where !losses.contains(where: { $0.hlc == hlc && $0.text == text }) { losses.append((hlc, text)) }
        printLosses(losses.sorted { $0.hlc < $1.hlc })
        if let manifest = try? Compactor.readManifest(layout) {
            print("snapshot: generation \(manifest.generation), \(byteCount((try? FileManager.default.attributesOfItem(atPath: layout.snapshotPath(manifest.snapshotName))[.size] as? Int64) ?? 0))")
        } else {
            print("snapshot: none")
        }
        print("oldest event: \(oldest.map { isoTime($0.seconds) } ?? "-")")
        print("newest event: \(newest.map { isoTime($0.seconds) } ?? "-")")
        if let line = damageSummaryLine(damage.all) { print(line) }
        try finishReading(damage: damage.all)
    }
}

/// `track-replay tail DB [--follow] [-n N] [--trial T] [--type TYPE]`.
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print events as they land, one line each.",
        discussion: """
        Lines are TIME STREAM #SEQUENCE TYPE DETAILS, merged across streams by time. Without --follow, prints \
        every event in the log (or the last N with -n) and exits. With --follow, prints the last 10 events (or \
        -n N; -n 0 for none) and then each new event until interrupted. Types: \(Tail.eventTypes.joined(separator: ", ")).
        """)

    /// The event types `--type` takes: metric points, then track's records (`LogRecord.kindName`).
    static let eventTypes = ["metric"] + LogRecord.kindNames

    @Argument(help: "The database directory.")
    var database: String

    @Flag(help: "Keep waiting for new events.")
    var follow = false

    @Option(name: [.customShort("n"), .customLong("lines")], help: "Start with the last N events (default: all of them; with --follow, 10).")
    var lines: Int?

    @Option(help: "Only events of this trial: its uid, a uid prefix, or PREFIX_REVISION as summary prints it.")
    var trial: String?

    @Option(help: "Only events of this type (repeatable): metric, status_set, trial_created, ... (see above).")
    var type: [String] = []

    @Option(help: "With --follow: milliseconds between looks at the log.")
    var intervalMilliseconds = 200

    @Option(help: "Stop after printing this many events.")
    var maxEvents: Int?

    func validate() throws {
        if let maxEvents, maxEvents < 0 { throw ValidationError("--max-events must not be negative") }
        if let lines, lines < 0 { throw ValidationError("-n/--lines must not be negative") }
        for t in type where !Tail.eventTypes.contains(t) {
            throw ValidationError("unknown event type '\(t)'; the types are \(Tail.eventTypes.joined(separator: ", "))")
        }
    }

    func run() throws {
        let filter = EventFilter(trial: trial, types: Set(type))
        var out = OutputBuffer()
        var printed = 0
        if maxEvents == 0 { return }
        /// Prints the events of `frames` that pass the filter, merged by time; false once
        /// `--max-events` is reached.
        func emit(_ frames: [LocatedFrame], keepingLast last: Int? = nil) -> Bool {
            var positions = LogReader.mergedByHLC(frames).filter { filter.accepts(frames[$0.frame].frame.events[$0.event], in: frames[$0.frame].frame) }
            if let last, positions.count > last { positions.removeFirst(positions.count - last) }
            var names = SeriesLabels()
            for position in positions {
                let located = frames[position.frame]
                appendLine(located.frame.events[position.event], located, frameIndex: position.frame, names: &names, to: &out)
                printed += 1
                if out.bytes.count >= 1 << 20 { out.flush() }
                if let maxEvents, printed >= maxEvents { out.flush(); return false }
            }
            out.flush()
            return true
        }
        let startWithLast = lines ?? (follow ? 10 : nil)
        var start: [StreamWatermark] = []
        if let startWithLast {
            // The last events only: read each stream backwards from its end, frame by frame,
            // until the newest `startWithLast` events that pass the filter are in hand.
            let reader: LogReader
            do { reader = try LogReader(database: database, records: .track, damagePolicy: .reportAndSkip, reporter: { warn("warning: \($0)") }) } catch { throw ToolError("\(error)") }
            var frames: [LocatedFrame] = []
            do {
                for stream in reader.streams() {
                    let (tail, end) = try lastFrames(of: stream, reader: reader, events: startWithLast, filter: filter)
                    frames += tail
                    if let end { start.append(end) }
                }
            } catch { throw ToolError("\(error)") }
            if startWithLast > 0 && !emit(frames, keepingLast: startWithLast) { return }
            if !follow { return }
        }
        let tailer: LogTailer
        do { tailer = try LogTailer(database: database, records: .track, start: start, reporter: { warn("warning: \($0)") }) } catch { throw ToolError("\(error)") }
        repeat {
            let frames: [LocatedFrame]
            do { frames = try tailer.poll() } catch { throw ToolError("\(error)") }
            if !emit(frames) { return }
            if follow { usleep(UInt32(max(10, intervalMilliseconds)) * 1000) }
        } while follow
    }

    /// The newest frames of `stream` holding at least `events` events that pass `filter` (or all
    /// of them), oldest first, and where the stream ends (for following it from there).
    private func lastFrames(of stream: String, reader: LogReader, events: Int, filter: EventFilter) throws(LogError) -> ([LocatedFrame], StreamWatermark?) {
        var collected: [LocatedFrame] = []
        var matched = 0
        var end: StreamWatermark?
        for segment in reader.segments(stream).reversed() {
            let entries = try reader.entries(segment)
            if end == nil, let last = entries.last {
                end = StreamWatermark(stream: stream, sequence: last.location.header.endSequence, base: segment.base,
                                      offset: last.location.offset + Int64(last.location.header.frameBytes))
            } else if end == nil {
                end = StreamWatermark(stream: stream, sequence: segment.base, base: segment.base, offset: Int64(SegmentHeader.sizeBytes))
            }
            var index = entries.count
            while index > 0 && matched < events {
                // A handful of frames at a time, newest first.
                let from = max(0, index - 8)
                let frames = try reader.read(segment, entries: entries[from..<index])
                for f in frames { matched += f.frame.events.count(where: { filter.accepts($0, in: f.frame) }) }
                collected.insert(contentsOf: frames, at: 0)
                index = from
            }
            if matched >= events { break }
        }
        return (collected, end)
    }

    /// One line for `event`: time, stream, sequence, type and what it says.
    private func appendLine(_ event: DecodedEvent, _ located: LocatedFrame, frameIndex: Int, names: inout SeriesLabels, to out: inout OutputBuffer) {
        out.appendISOTime(microseconds: event.hlc.microseconds)
        out.bytes.append(contentsOf: names.streamLabel(frame: frameIndex, located))
        out.append(unsigned: event.sequence, width: 1)
        switch event.kind {
        case .point(let series, let step, let value):
            out.bytes.append(contentsOf: names.label(frame: frameIndex, series: series, in: located.frame))
            if let step { out.append(step) } else { out.append(UInt8(ascii: "-")) }
            out.append(" value=")
            JSON.appendDouble(value, to: &out.bytes)
        case .record(let any):
            guard let record = any as? LogRecord else { out.append(" \(Swift.type(of: any))"); break }
            out.append(" \(record.kindName) \(describe(record))")
        }
        out.append(UInt8(ascii: "\n"))
    }

    private func describe(_ r: LogRecord) -> String {
        switch r {
        case .projectCreated(let p): return p.name
        case .groupCreated(let g): return "\(g.name) \(g.uid) in \(g.projectID)"
        case .trialCreated(let t, _): return "\(t.uid) \(t.name ?? "") \(JSON.encode(.object(t.parameters)))"
        case .trialAddedToProject(let t, let p): return "\(t) to \(p)"
        case .trialAddedToGroup(let t, let g): return "\(t) to \(g)"
        case .trialStarted(let t), .trialFinished(let t): return t
        case .chronoStarted(let t, let n), .chronoFinished(let t, let n): return "\(t) \(n)"
        case .argumentsLogged(let t, let o), .metadataLogged(let t, let o), .tagsAdded(let t, let o): return "\(t) \(JSON.encode(.object(o)))"
        case .statusSet(let t, let s, let e): return "\(t) \(s.name)(\(s.value))\(e.map { " error=\($0)" } ?? "")"
        case .groupMetadataSet(let g, let o): return "\(g) \(JSON.encode(.object(o)))"
        case .metricsLogged(let t, let step, let o): return "\(t) step=\(step.map(String.init) ?? "-") \(JSON.encode(.object(o)))"
        case .projectImported(let p): return p.name
        case .groupImported(let g): return "\(g.name) \(g.uid)"
        case .trialImported(let t): return "\(t.uid) \(t.name ?? "")"
        case .lossAccepted(let text): return text
        }
    }
}

/// The `--trial` and `--type` filters of `tail`.
struct EventFilter {
    var trial: String?
    var types: Set<String>

    func accepts(_ event: DecodedEvent, in frame: DecodedFrame) -> Bool {
        switch event.kind {
        case .point(let series, _, _):
            if !types.isEmpty && !types.contains("metric") { return false }
            guard let trial else { return true }
            return EventFilter.matches(frame.seriesNames(series).subject, trial)
        case .record(let any):
            guard let record = any as? LogRecord else { return trial == nil && types.isEmpty }
            if !types.isEmpty && !types.contains(record.kindName) { return false }
            guard let trial else { return true }
            return record.trialUID.map { EventFilter.matches($0, trial) } ?? false
        }
    }

    /// True when `uid` is the trial `key` names: a uid, a uid prefix, or PREFIX_REVISION.
    static func matches(_ uid: String, _ key: String) -> Bool {
        if uid.hasPrefix(key) { return true }
        guard let (prefix, revision) = Trial.splitUID(key), let (hash, uidRevision) = Trial.splitUID(uid) else { return false }
        return revision == uidRevision && !prefix.isEmpty && hash.hasPrefix(prefix)
    }
}

/// Per frame, the bytes of " STREAM #" and, per series, of " metric SUBJECT NAME step=": built
/// once per frame and series rather than once per line.
struct SeriesLabels {
    private var frame = -1
    private var labels: [Int32: [UInt8]] = [:]
    private var stream: [UInt8] = []

    mutating func streamLabel(frame index: Int, _ located: LocatedFrame) -> [UInt8] {
        enter(index)
        if stream.isEmpty { stream = Array(" \(located.stream) #".utf8) }
        return stream
    }

    private mutating func enter(_ index: Int) {
        if index != frame { frame = index; labels.removeAll(keepingCapacity: true); stream = []; lastSeries = -1 }
    }

    mutating func label(frame index: Int, series: Int32, in frame: DecodedFrame) -> [UInt8] {
        enter(index)
        // Runs of points of one series are the common case: no lookup for them.
        if series == lastSeries { return lastLabel }
        let label: [UInt8]
        if let known = labels[series] {
            label = known
        } else {
            let names = frame.seriesNames(series)
            label = Array(" metric \(names.subject) \(names.name) step=".utf8)
            labels[series] = label
        }
        lastSeries = series
        lastLabel = label
        return label
    }
    private var lastSeries: Int32 = -1
    private var lastLabel: [UInt8] = []
}
