import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackStore

/// `track-replay summary DB`.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rebuild the state and print projects, groups and trials as tables.",
                                                    discussion: damageHelp)

    @Argument(help: "The database directory.")
    var database: String

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        printSummary(replayed.projection)
        if let line = replayed.damageLine { print(line) }
        try replayed.finish()
    }
}

/// `track-replay show DB TRIAL`.
struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print one trial as JSON in track's serialization (dtype \"trial\").",
                                                    discussion: damageHelp)

    @Argument(help: "The database directory.")
    var database: String

    @Argument(help: "The trial: its uid, a unique uid prefix, PREFIX_REVISION as summary prints it (2e1b2597e896_0), or a unique name.")
    var trial: String

    @OptionGroup var reading: ReadingOptions

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let trial = try resolveTrial(self.trial, in: replayed.projection)
        print(JSON.encode(trial.trackJSON, pretty: true))
        try replayed.finish()
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
                object[name] = .array(trial.metrics[name]!.points.map { .object(["step": $0.step?.value ?? .null, "value": $0.value]) })
            }
            print(JSON.encode(.object(object), pretty: true))
        }
        try replayed.finish()
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

/// `track-replay tail DB [--follow]`.
struct Tail: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print events as they land, one line each.",
                                                    discussion: "Without --follow, prints every event in the log and exits. With --follow, keeps printing new events until interrupted.")

    @Argument(help: "The database directory.")
    var database: String

    @Flag(help: "Keep waiting for new events.")
    var follow = false

    @Option(help: "With --follow: milliseconds between looks at the log.")
    var intervalMilliseconds = 200

    @Option(help: "Stop after printing this many events.")
    var maxEvents: Int?

    func run() throws {
        let tailer: LogTailer
        do { tailer = try LogTailer(database: database, records: .track, reporter: { warn("warning: \($0)") }) } catch { throw ToolError("\(error)") }
        var printed = 0
        repeat {
            let frames: [LocatedFrame]
            do { frames = try tailer.poll() } catch { throw ToolError("\(error)") }
            var out = ""
            for position in LogReader.mergedByHLC(frames) {
                let located = frames[position.frame]
                let event = located.frame.events[position.event]
                out += line(event, located) + "\n"
                printed += 1
                if let maxEvents, printed >= maxEvents {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    return
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            if follow { usleep(UInt32(max(10, intervalMilliseconds)) * 1000) }
        } while follow
    }

    private func line(_ event: DecodedEvent, _ located: LocatedFrame) -> String {
        let head = "\(isoTime(event.hlc.seconds)) \(located.stream) #\(event.sequence)"
        switch event.kind {
        case .point(let series, let step, let value):
            let names = located.frame.seriesNames(series)
            return "\(head) metric \(names.subject) \(names.name) step=\(step.map(String.init) ?? "-") value=\(JSON.formatDouble(value))"
        case .record(let any):
            guard let record = any as? LogRecord else { return "\(head) \(type(of: any))" }
            return "\(head) \(record.kindName) \(describe(record))"
        }
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
