import Foundation
import Synchronization
import TrackLog
import TrackModel
import TrackStore

/// The last, smallest and largest value of one metric, kept up to date by reading only the
/// points added since the last look.
struct SeriesSummary: Sendable {
    /// Points read so far.
    var count = 0
    /// The last point's value (any JSON value) and step.
    var last: Value = .null
    var lastStep: MetricStep?
    /// Over the numeric, finite values; nil when there is none.
    var min: Double?
    var max: Double?
    /// Every step an integer above the one before (a training loop's metric): the curve can be
    /// cut into slices by binary search. Kept up to date with the rest.
    var stepsIncrease = true

    /// Reads the points of `columns` past `count`.
    mutating func update(from columns: MetricColumns) {
        if columns.count < count { self = SeriesSummary() }
        guard columns.count > count else { return }
        var lo = min ?? .infinity, hi = max ?? -.infinity
        columns.values.withUnsafeBufferPointer { values in
            for i in count..<values.count where values[i].isFinite {
                lo = Swift.min(lo, values[i])
                hi = Swift.max(hi, values[i])
            }
        }
        if lo <= hi { min = lo; max = hi }
        if stepsIncrease {
            stepsIncrease = columns.labels.isEmpty && columns.steps.withUnsafeBufferPointer { steps in
                var ok = count > 0 || steps[0] != MetricColumns.noStep
                var i = Swift.max(1, count)
                while i < steps.count { ok = ok && steps[i - 1] < steps[i]; i += 1 }
                return ok
            }
        }
        count = columns.count
        last = columns.value(at: count - 1)
        lastStep = columns.step(at: count - 1)
    }

    var json: Value {
        ["count": .int(Int64(count)), "last": last.nonFiniteAsStrings, "step": lastStep?.value ?? .null,
         "min": min.map(Value.double) ?? .null, "max": max.map(Value.double) ?? .null]
    }
}

/// What changed in one refresh: pushed to the pages as a server-sent event.
struct StoreUpdate: Sendable {
    var version: UInt64
    var trials: [String]
    var series: [ChangedSeries]

    var json: String {
        JSON.encode(["version": .int(Int64(version)), "trials": .array(trials.map(Value.string)),
                     "series": .array(series.map { ["trial": .string($0.trial), "metric": .string($0.metric), "count": .int(Int64($0.count))] })])
    }
}

/// The x axis of a curve.
enum XAxis: String, Sendable { case step, time }

/// A database as the web view reads it: a materializer kept current by `refresh()` (which
/// reads only the frames appended since the previous call), summaries of every metric kept
/// incrementally, and the pages following it over server-sent events. Thread-safe.
final class RunStore: Sendable {
    private struct State: ~Copyable {
        let materializer: Materializer
        var version: UInt64 = 1
        var cursor: ChangeCursor?
        var summaries: [String: [String: SeriesSummary]] = [:]

        /// The summary of a trial's metric, brought up to date with the points added since the
        /// last look.
        mutating func summary(_ uid: String, _ metric: String, _ columns: MetricColumns) -> SeriesSummary {
            var summary = summaries[uid]?[metric] ?? SeriesSummary()
            summary.update(from: columns)
            summaries[uid, default: [:]][metric] = summary
            return summary
        }

        /// Every metric of a trial with its summary, in the order the metrics appeared.
        mutating func metricSummaries(_ uid: String) -> [(name: String, summary: SeriesSummary)] {
            let p = materializer.projection
            return p.metricNames(trial: uid).compactMap { name in
                p.columns(trial: uid, metric: name).map { (name, summary(uid, name, $0)) }
            }
        }
    }

    /// The database directory.
    let database: String
    private let state: Mutex<State>
    private let subscribers = Mutex<[UInt64: AsyncStream<String>.Continuation]>([:])
    private let nextSubscriber = Atomic<UInt64>(0)

    /// Opens the database at `path` and replays it.
    init(database path: String) throws {
        database = path
        let materializer = try Materializer(database: path, reporter: { _ in })
        try materializer.smartReload()
        let cursor = materializer.projection.changes(since: nil).cursor
        state = Mutex(State(materializer: materializer, cursor: cursor))
    }

    /// Damage met while reading (frames skipped), for the page's header.
    var damage: [LogNotice] { state.withLock { $0.materializer.damage } }

    /// Reads what was appended since the last call; tells every subscriber what changed.
    @discardableResult
    func refresh() throws -> StoreUpdate? {
        let update = try state.withLock { state throws -> StoreUpdate? in
            try state.materializer.smartReload()
            let changes = state.materializer.projection.changes(since: state.cursor)
            state.cursor = changes.cursor
            let trials = changes.objects.filter { $0.kind == .trial }.map(\.uid)
            guard !changes.objects.isEmpty || !changes.series.isEmpty else { return nil }
            state.version += 1
            return StoreUpdate(version: state.version, trials: trials, series: changes.series)
        }
        if let update { publish(update.json) }
        return update
    }

    /// The version the pages last heard of.
    var version: UInt64 { state.withLock { $0.version } }

    // MARK: - Server-sent events

    /// A stream of the JSON texts of updates (and empty heartbeats), until the page leaves or
    /// `unsubscribe(id)` ends it.
    func subscribe() -> (id: UInt64, events: AsyncStream<String>) {
        let id = nextSubscriber.wrappingAdd(1, ordering: .relaxed).newValue
        let events = AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            subscribers.withLock { $0[id] = continuation }
            continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        }
        return (id, events)
    }

    /// Ends the stream of subscriber `id` (the server is shutting down).
    func unsubscribe(_ id: UInt64) {
        subscribers.withLock { $0.removeValue(forKey: id) }?.finish()
    }

    /// Pages following now.
    var subscriberCount: Int { subscribers.withLock { $0.count } }

    /// Sends `text` to every page following.
    func publish(_ text: String) {
        for continuation in subscribers.withLock({ Array($0.values) }) { continuation.yield(text) }
    }

    // MARK: - Reading

    /// Projects and groups.
    func projects(visible: (String) -> Bool) -> Value {
        state.withLock { state in
            let p = state.materializer.projection
            let projects = p.allProjects.filter { visible($0.uid) }
            let groups = p.allGroups.filter { visible($0.projectID) }
            return ["projects": .array(projects.map { ["uid": .string($0.uid), "name": .string($0.name), "description": $0.description.map(Value.string) ?? .null,
                                                      "trials": .int(Int64($0.trials.count)), "groups": .int(Int64($0.groups.count))] }),
                    "groups": .array(groups.map { ["uid": .string($0.uid), "name": .string($0.name), "project": .string($0.projectID),
                                                  "trials": .int(Int64($0.trials.count))] })]
        }
    }

    /// The runs table: every trial matching `query` (track's query language) with its status,
    /// parameters, tags and each metric's summary; the parameters that differ between them.
    func runs(query: Query?, project: String?, group: String?, visible: (String) -> Bool) throws -> Value {
        try state.withLock { state throws -> Value in
            let p = state.materializer.projection
            // A query on metrics needs the points; any other reads the trial without them.
            let needsMetrics = query?.conditions.contains(where: { $0.path.first == "metrics" }) ?? false
            var rows: [Value] = []
            var selected: [Trial] = []
            var metricNames: [String] = []
            var seenMetric = Set<String>()
            let uids = p.trialUIDs
            for uid in uids {
                guard let t = needsMetrics ? p.trial(uid) : p.trialOverview(uid) else { continue }
                guard visible(t.projectID ?? ""), project == nil || t.projectID == project, group == nil || t.groupID == group else { continue }
                if let query, try !query.matches(t) { continue }
                selected.append(t)
                var metrics = ValueObject()
                for (name, summary) in state.metricSummaries(uid) {
                    metrics[name] = summary.json
                    if seenMetric.insert(name).inserted { metricNames.append(name) }
                }
                rows.append(["uid": .string(uid), "short": .string(t.shortID), "name": t.name.map(Value.string) ?? .null,
                             "project": t.projectID.map(Value.string) ?? .null, "group": t.groupID.map(Value.string) ?? .null,
                             "status": .string(t.status.name), "parameters": Value.object(t.parameters).nonFiniteAsStrings, "tags": Value.object(t.tags).nonFiniteAsStrings,
                             "lastChange": t.lastChange.map(Value.double) ?? .null, "metrics": .object(metrics)])
            }
            return ["version": .int(Int64(state.version)), "differing": .array(Trial.differingParameters(selected).map(Value.string)),
                    "metrics": .array(metricNames.map(Value.string)), "runs": .array(rows), "total": .int(Int64(uids.count))]
        }
    }

    /// One run without its points: everything else, and its metrics' summaries.
    func run(_ uid: String, visible: (String) -> Bool) -> Value? {
        state.withLock { state -> Value? in
            let p = state.materializer.projection
            guard let t = p.trialOverview(uid), visible(t.projectID ?? "") else { return nil }
            var metrics = ValueObject()
            for (name, summary) in state.metricSummaries(uid) { metrics[name] = summary.json }
            guard case .object(var json) = t.trackJSON else { return nil }
            json["metrics"] = nil
            return ["uid": .string(uid), "short": .string(t.shortID), "trial": Value.object(json).nonFiniteAsStrings, "metrics": .object(metrics),
                    "status": .string(t.status.name), "version": .int(Int64(state.version))]
        }
    }

    /// One metric of one run as a curve of at most about `width` × 2 points: each of `width`
    /// slices of the x range keeps its smallest and largest value (so no spike is lost), and
    /// the last point is always kept. nil when the run or the metric is unknown.
    func series(trial uid: String, metric: String, x: XAxis, width: Int, visible: (String) -> Bool) -> String? {
        state.withLock { state -> String? in
            let p = state.materializer.projection
            guard let t = p.trialOverview(uid), visible(t.projectID ?? ""), let columns = p.columns(trial: uid, metric: metric) else { return nil }
            let curve: Curve
            switch x {
            case .time:
                curve = columns.hlcs.withUnsafeBufferPointer { hlcs in
                    columns.values.withUnsafeBufferPointer { values in
                        downsample(hlcs, values, width: width) { HLC(rawValue: $0).seconds }
                    }
                }
            case .step:
                if state.summary(uid, metric, columns).stepsIncrease {
                    // A training loop's metric: the columns as they are, no copy, cut into
                    // slices by binary search.
                    curve = columns.steps.withUnsafeBufferPointer { steps in
                        columns.values.withUnsafeBufferPointer { values in downsample(increasing: steps, values, width: width) }
                    }
                } else {
                    // Steps that go back, text steps or none: in step order as Python's dict
                    // keeps them, placed by position where there is no number.
                    let points = columns.series.sortedByStep
                    let xs = points.enumerated().map { i, point -> Double in
                        switch point.step {
                        case .int(let s)?: return Double(s)
                        case .number(let d)?: return d
                        default: return Double(i)
                        }
                    }
                    let ys = points.map { $0.value.doubleValue ?? .nan }
                    curve = xs.withUnsafeBufferPointer { xs in ys.withUnsafeBufferPointer { ys in downsample(xs, ys, width: width) { $0 } } }
                }
            }
            return curve.json(trial: uid, metric: metric, x: x, version: state.version)
        }
    }
}

/// A downsampled curve.
struct Curve {
    var xs: [Double] = []
    var ys: [Double] = []
    /// Points in the series.
    var count = 0

    func json(trial: String, metric: String, x: XAxis, version: UInt64) -> String {
        var out = "{\"trial\":\(JSON.encode(.string(trial))),\"metric\":\(JSON.encode(.string(metric))),\"x\":\"\(x.rawValue)\",\"count\":\(count),\"version\":\(version),\"points\":["
        out.reserveCapacity(out.utf8.count + xs.count * 24)
        for i in xs.indices {
            if i > 0 { out += "," }
            out += "["
            out += number(xs[i])
            out += ","
            out += number(ys[i])
            out += "]"
        }
        return out + "]}"
    }

    private func number(_ d: Double) -> String { d.isFinite ? JSON.formatDouble(d) : "null" }
}

/// Keeps, of the points (`xs[i]`, `ys[i]`), the smallest and largest y of each of `width` equal
/// slices of the x range, and the last point logged: the shape a chart `width` pixels wide can
/// show, spikes included, in x order. The points need not be ordered by x (a metric two processes
/// logged into has timestamps that go back and forth); at most 2 × `width` + 1 points come out
/// whatever the order. Up to 2 × `width` points are kept as they are.
func downsample<X>(_ xs: UnsafeBufferPointer<X>, _ ys: UnsafeBufferPointer<Double>, width: Int, x: (X) -> Double) -> Curve {
    let count = min(xs.count, ys.count)
    var curve = Curve(count: count)
    guard count > 0 else { return curve }
    let width = max(1, width)
    if count <= 2 * width {
        curve.xs = (0..<count).map { x(xs[$0]) }
        curve.ys = Array(ys.prefix(count))
        return curve
    }
    var x0 = Double.infinity, x1 = -Double.infinity
    for i in 0..<count {
        let v = x(xs[i])
        x0 = min(x0, v)
        x1 = max(x1, v)
    }
    let scale = x1 > x0 ? Double(width) / (x1 - x0) : 0
    // Per slice, the index of its smallest and largest value (-1: empty).
    var lows = [Int](repeating: -1, count: width), highs = [Int](repeating: -1, count: width)
    for i in 0..<count {
        let b = min(width - 1, max(0, Int((x(xs[i]) - x0) * scale)))
        let v = ys[i]
        if lows[b] < 0 { lows[b] = i; highs[b] = i; continue }
        // NaN never replaces a number.
        if v < ys[lows[b]] || ys[lows[b]].isNaN { lows[b] = i }
        if v > ys[highs[b]] || ys[highs[b]].isNaN { highs[b] = i }
    }
    var kept: [Int] = []
    kept.reserveCapacity(2 * width + 1)
    for b in 0..<width where lows[b] >= 0 {
        kept.append(lows[b])
        if highs[b] != lows[b] { kept.append(highs[b]) }
    }
    if !kept.contains(count - 1) { kept.append(count - 1) }
    kept.sort { (x(xs[$0]), $0) < (x(xs[$1]), $1) }
    curve.xs = kept.map { x(xs[$0]) }
    curve.ys = kept.map { ys[$0] }
    return curve
}

/// `downsample` for steps that increase: each slice's end found by binary search, then its
/// values scanned for their smallest and largest in a tight loop (no per-point division).
func downsample(increasing steps: UnsafeBufferPointer<Int64>, _ ys: UnsafeBufferPointer<Double>, width: Int) -> Curve {
    let count = min(steps.count, ys.count)
    let width = max(1, width)
    guard count > 2 * width else { return downsample(steps, ys, width: width) { Double($0) } }
    var curve = Curve(count: count)
    curve.xs.reserveCapacity(2 * width + 2)
    curve.ys.reserveCapacity(2 * width + 2)
    let x0 = Double(steps[0]), span = Double(steps[count - 1]) - x0
    var start = 0
    for b in 0..<width {
        // The first index whose step is at or past the slice's end.
        var end = count
        if b < width - 1 {
            let limit = x0 + span * Double(b + 1) / Double(width)
            var low = start, high = count
            while low < high {
                let middle = (low + high) / 2
                if Double(steps[middle]) < limit { low = middle + 1 } else { high = middle }
            }
            end = low
        }
        guard end > start else { continue }
        var lo = start, hi = start
        var low = ys[start], high = ys[start]
        var i = start + 1
        while i < end {
            let v = ys[i]
            if v < low || low.isNaN { lo = i; low = v }
            if v > high || high.isNaN { hi = i; high = v }
            i += 1
        }
        let first = min(lo, hi), second = max(lo, hi)
        curve.xs.append(Double(steps[first])); curve.ys.append(ys[first])
        if second != first { curve.xs.append(Double(steps[second])); curve.ys.append(ys[second]) }
        start = end
    }
    if curve.xs.last != Double(steps[count - 1]) { curve.xs.append(Double(steps[count - 1])); curve.ys.append(ys[count - 1]) }
    return curve
}
