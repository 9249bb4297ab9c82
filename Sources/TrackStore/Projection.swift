import OrderedCollections
import TrackLog
import TrackModel

/// A value with the timestamp of the event that set it.
struct Stamped<T: Sendable>: Sendable {
    var value: T
    var hlc: HLC
}

/// A map whose entries are last-writer-wins by timestamp and whose key order is the order in
/// which keys were first set (by timestamp), so the result does not depend on arrival order.
struct StampedMap: Sendable {
    /// Per key: its value, the timestamp that set it, and when it was first set (timestamp, then
    /// position in that event) for ordering.
    private(set) var entries: [String: (value: Value, hlc: HLC, first: FirstSeen)] = [:]

    /// Sets `key` if `hlc` is newer than what set it before; `position` is the key's place in
    /// the event that sets it.
    mutating func set(_ key: String, _ value: Value, at hlc: HLC, position: Int = 0) {
        let seen = FirstSeen(hlc: hlc, position: position)
        if let old = entries[key] {
            let first = min(old.first, seen)
            if hlc >= old.hlc { entries[key] = (value, hlc, first) } else { entries[key]!.first = first }
        } else {
            entries[key] = (value, hlc, seen)
        }
    }

    /// Puts back an entry as a snapshot saved it.
    mutating func restore(_ key: String, _ value: Value, hlc: HLC, first: FirstSeen) {
        entries[key] = (value, hlc, first)
    }

    /// Sets every key of `object` at `hlc`.
    mutating func merge(_ object: ValueObject, at hlc: HLC) {
        for (position, (key, value)) in object.enumerated() { set(key, value, at: hlc, position: position) }
    }

    /// The entries as an object, keys by when they were first set.
    var object: ValueObject {
        var out = ValueObject(minimumCapacity: entries.count)
        for (key, entry) in entries.sorted(by: { ($0.value.first, $0.key) < ($1.value.first, $1.key) }) { out[key] = entry.value }
        return out
    }
}

/// When a key or metric first appeared: the event's timestamp, then its place within the event.
struct FirstSeen: Comparable, Sendable {
    var hlc: HLC
    var position: Int
    static func < (a: FirstSeen, b: FirstSeen) -> Bool { (a.hlc, a.position) < (b.hlc, b.position) }
}

/// One metric of one trial as columns: every point logged (steps, values, timestamps) in
/// timestamp order, points of one timestamp in the order they came. What the metric reads as
/// (Python `track`'s container: a step-keyed dict or a list) is derived from them (`series`), so
/// the result does not depend on the order streams are read in. Values that are not doubles are
/// kept aside by position.
public struct MetricColumns: Sendable {
    /// Step of each point; `noStep` for a point logged without one or at a step that is not an
    /// integer (`labels` holds those).
    public private(set) var steps: [Int64] = []
    /// Value of each point (NaN where `others` holds a non-double value).
    public private(set) var values: [Double] = []
    /// Timestamp of each point.
    public private(set) var hlcs: [UInt64] = []
    /// Non-double values by position.
    public private(set) var others: [Int: Value] = [:]
    /// Steps that are not integers (`step=1.5`, `step="warmup"`) by position.
    public private(set) var labels: [Int: MetricStep] = [:]

    /// The step stored for points logged without one.
    public static let noStep = Int64.min

    /// Empty columns.
    public init() {}

    /// Columns as a snapshot saved them. Snapshots written before the columns kept every point
    /// hold them by (step, timestamp): those are put back in timestamp order (stable).
    init(steps: [Int64], values: [Double], hlcs: [UInt64], others: [Int: Value], labels: [Int: MetricStep] = [:]) {
        if zip(hlcs, hlcs.dropFirst()).allSatisfy({ $0 <= $1 }) {
            self.steps = steps
            self.values = values
            self.hlcs = hlcs
            self.others = others
            self.labels = labels
            return
        }
        let order = hlcs.indices.sorted { (hlcs[$0], $0) < (hlcs[$1], $1) }
        self.steps = order.map { steps[$0] }
        self.values = order.map { values[$0] }
        self.hlcs = order.map { hlcs[$0] }
        for (position, old) in order.enumerated() {
            if let v = others[old] { self.others[position] = v }
            if let l = labels[old] { self.labels[position] = l }
        }
    }

    /// Number of points held (every point logged, also a step logged again).
    public var count: Int { steps.count }

    /// Records a point at an integer step (nil: none): the replay's path.
    mutating func record(step: Int64?, value: Value, hlc: HLC) {
        insert(step ?? MetricColumns.noStep, value, hlc.rawValue, label: nil)
    }

    /// Records a point at any step (nil: none).
    mutating func record(step: MetricStep?, value: Value, hlc: HLC) {
        switch step {
        case .int(let i)?: insert(i, value, hlc.rawValue, label: nil)
        case nil: insert(MetricColumns.noStep, value, hlc.rawValue, label: nil)
        case let label?: insert(MetricColumns.noStep, value, hlc.rawValue, label: label)
        }
    }

    private mutating func insert(_ s: Int64, _ value: Value, _ h: UInt64, label: MetricStep?) {
        let double: Double
        let other: Value?
        if case .double(let d) = value { double = d; other = nil } else { double = .nan; other = value }
        // Fast path: at or after the last timestamp.
        guard let last = hlcs.last, h < last else {
            steps.append(s)
            values.append(double)
            hlcs.append(h)
            if let other { others[steps.count - 1] = other }
            if let label { labels[steps.count - 1] = label }
            return
        }
        // After every point of a timestamp not later than `h`.
        var low = 0, high = hlcs.count
        while low < high {
            let mid = (low + high) / 2
            if hlcs[mid] <= h { low = mid + 1 } else { high = mid }
        }
        steps.insert(s, at: low)
        values.insert(double, at: low)
        hlcs.insert(h, at: low)
        if !others.isEmpty || other != nil {
            others = MetricColumns.shifted(others, from: low, adding: other)
        }
        if !labels.isEmpty || label != nil {
            labels = MetricColumns.shifted(labels, from: low, adding: label)
        }
    }

    /// `positions` with every position from `low` on moved up by one, and `new` at `low`.
    private static func shifted<T>(_ positions: [Int: T], from low: Int, adding new: T?) -> [Int: T] {
        var out: [Int: T] = [:]
        for (position, v) in positions { out[position >= low ? position + 1 : position] = v }
        if let new { out[low] = new }
        return out
    }

    /// The point at `i` as the model's value.
    public func value(at i: Int) -> Value { others[i] ?? .double(values[i]) }

    /// The step of the point at `i` (nil: none).
    public func step(at i: Int) -> MetricStep? {
        if let label = labels[i] { return label }
        return steps[i] == MetricColumns.noStep ? nil : .int(steps[i])
    }

    /// The metric as Python `track` keeps it (`series`) as two columns: the steps (`noStep` for a
    /// point without a step or with a step that is not an integer) and the values (NaN for a
    /// value that is not a number). When every point has an integer step above the one before
    /// (a training loop's metric), that is the columns themselves, shared without a copy;
    /// otherwise it goes through `series`.
    public var pythonPoints: (steps: [Int64], values: [Double]) {
        if labels.isEmpty, let first = steps.first, first != MetricColumns.noStep, MetricColumns.isStrictlyIncreasing(steps) {
            return (steps, values)
        }
        let points = series.points
        return (points.map { $0.step?.intValue ?? MetricColumns.noStep }, points.map { $0.value.doubleValue ?? .nan })
    }

    /// True when every step is above the one before.
    public static func isStrictlyIncreasing(_ steps: [Int64]) -> Bool {
        steps.withUnsafeBufferPointer { b in
            var ok = true
            var i = 1
            // No early exit per element: the loop vectorizes.
            while i < b.count { ok = ok && b[i - 1] < b[i]; i += 1 }
            return ok
        }
    }

    /// The metric as Python `track` keeps it: every point recorded in order (`MetricSeries.record`).
    public var series: MetricSeries {
        var series = MetricSeries()
        for i in 0..<count { series.record(step: step(at: i), value: value(at: i)) }
        return series
    }
}

/// A trial as events built it.
final class TrialState: ChangeTracked, @unchecked Sendable {
    var changedAt: UInt64 = 0
    var notedEpoch: UInt64 = 0
    var creation: Stamped<Trial>?
    var status: Stamped<Status>?
    var projectID: Stamped<String?>?
    var groupID: Stamped<String?>?
    var parameters = StampedMap()
    var metadata = StampedMap()
    var tags = StampedMap()
    var errors: [(hlc: HLC, text: String)] = []
    var metrics: [String: SeriesState] = [:]
    var runtime: Stamped<Double?>?
    var chronoDurations: [String: (first: HLC, durations: [(hlc: HLC, seconds: Double)])] = [:]
    /// Chronos as a restored trial had them (an import or a pickled file); timings recorded
    /// afterwards add to them.
    var chronoBase: [(name: String, aggregator: Aggregator)] = []
    var updateCount = 0
    var lastChange = HLC.zero
    /// An imported or restored last-change time, exact to the bit while nothing changed after it.
    var lastChangeExact: (hlc: HLC, seconds: Double)?
    var cached: Trial?

    func touch(_ hlc: HLC) {
        updateCount += 1
        if hlc > lastChange { lastChange = hlc }
        cached = nil
    }

    /// The trial as the model shows it; nil until its creation event is seen.
    func trial() -> Trial? {
        if let cached { return cached }
        guard var t = overview() else { return nil }
        var metricSeries = OrderedDictionary<String, MetricSeries>()
        for name in metricNames { metricSeries[name] = metrics[name]!.columns.series }
        t.metrics = metricSeries
        cached = t
        return t
    }

    /// The metric names, in the order they first appeared.
    var metricNames: [String] {
        metrics.sorted(by: { ($0.value.first, $0.key) < ($1.value.first, $1.key) }).map(\.key)
    }

    /// The trial without its metrics: everything else `trial()` shows, at a cost that does not
    /// grow with the points held.
    func overview() -> Trial? {
        if let cached { var t = cached; t.metrics = [:]; return t }
        guard let base = creation?.value else { return nil }
        var t = base
        if let status { t.status = status.value }
        if let projectID { t.projectID = projectID.value }
        if let groupID { t.groupID = groupID.value }
        t.parameters = parameters.object
        t.metadata = metadata.object
        t.tags = tags.object
        t.errors = errors.map(\.text)
        t.metrics = [:]
        var chronos = OrderedDictionary<String, Aggregator>()
        for (name, aggregator) in chronoBase { chronos[name] = aggregator }
        if let runtime { chronos["runtime"] = .value(runtime.value.map(Value.double)) }
        for (name, entry) in chronoDurations.sorted(by: { ($0.value.first.rawValue, $0.key) < ($1.value.first.rawValue, $1.key) }) {
            var aggregator = chronos[name] ?? .stat(StatStream(dropObservations: 1))
            for d in entry.durations { aggregator.append(.double(d.seconds)) }
            chronos[name] = aggregator
        }
        t.chronos = chronos
        t.updateCount = updateCount
        if let exact = lastChangeExact, exact.hlc == lastChange {
            t.lastChange = exact.seconds
        } else {
            t.lastChange = lastChange == .zero ? nil : lastChange.seconds
        }
        return t
    }
}

/// A project or group as events built it.
final class ContainerState: ChangeTracked, @unchecked Sendable {
    var changedAt: UInt64 = 0
    var notedEpoch: UInt64 = 0
    var creation: HLC?
    var project: Project?
    var group: TrialGroup?
    var metadata = StampedMap()
    /// Members (trial uids, or group uids of a project) by when they were added.
    var trials: [String: FirstSeen] = [:]
    var groups: [String: FirstSeen] = [:]
    var updateCount = 0

    static func ordered(_ members: [String: FirstSeen]) -> [String] {
        members.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map(\.key)
    }

    /// Adds a member; returns whether it is new.
    @discardableResult
    static func add(_ uid: String, at seen: FirstSeen, to members: inout [String: FirstSeen]) -> Bool {
        if let old = members[uid] {
            if seen < old { members[uid] = seen }
            return false
        }
        members[uid] = seen
        return true
    }

    /// Adds a member at `hlc`.
    @discardableResult
    static func add(_ uid: String, at hlc: HLC, to members: inout [String: FirstSeen]) -> Bool {
        add(uid, at: FirstSeen(hlc: hlc, position: 0), to: &members)
    }
}

/// An object that notes when it last changed (`Projection.changes(since:)`).
protocol ChangeTracked: AnyObject {
    var changedAt: UInt64 { get set }
    var notedEpoch: UInt64 { get set }
}

/// One metric of one trial: its columns, when it first appeared (for the order of metrics) and
/// the position of its last point (`Projection.changes(since:)`). A reference, so that a frame's
/// points reach it without a lookup each.
final class SeriesState: @unchecked Sendable {
    var first: FirstSeen
    var columns: MetricColumns
    var changedAt: UInt64 = 0

    init(first: FirstSeen, columns: MetricColumns) {
        self.first = first
        self.columns = columns
    }
}

/// An object that changed after a position: its kind, uid and revision tag now.
public struct ChangedObject: Sendable, Equatable {
    /// The kind of object.
    public var kind: ObjectChange.Kind
    /// Its uid.
    public var uid: String
    /// Its revision tag now.
    public var tag: Int
}

/// A metric series that gained points after a position: its trial, name and point count now.
public struct ChangedSeries: Sendable, Equatable {
    /// The trial's uid.
    public var trial: String
    /// The metric's name.
    public var metric: String
    /// Points in the series now.
    public var count: Int

    /// A series of `trial` named `metric` holding `count` points.
    public init(trial: String, metric: String, count: Int) {
        self.trial = trial
        self.metric = metric
        self.count = count
    }
}

/// Where a reader of `Projection.changes(since:)` is.
public struct ChangeCursor: Sendable, Equatable {
    /// Which projection the position counts in.
    public var projection: UInt64
    /// Changes seen.
    public var position: UInt64
}

/// What changed in a projection after a cursor (`Projection.changes(since:)`).
public struct ProjectionChanges: Sendable, Equatable {
    /// The cursor to ask from next time.
    public var cursor: ChangeCursor
    /// Changed projects, groups and trials, by kind then uid.
    public var objects: [ChangedObject] = []
    /// Series with new points, by trial then metric.
    public var series: [ChangedSeries] = []
}

/// Which object changed in a reload, with its revision tags before and after
/// (`track`'s `get_previous_version_tag` / `get_current_version_tag`).
public struct ObjectChange: Sendable, Equatable {
    /// The kind of object.
    public enum Kind: String, Sendable { case project, group, trial }
    /// The kind of object.
    public var kind: Kind
    /// Its uid.
    public var uid: String
    /// Its revision tag before the reload (nil: it did not exist).
    public var previousTag: Int?
    /// Its revision tag after.
    public var currentTag: Int
}

/// The state of a database rebuilt from events: projects, groups, trials and metric columns.
///
/// Every rule is independent of the order in which events arrive: creations keep the earliest
/// (by timestamp), field and key updates are last-writer-wins by timestamp, metric points are
/// ordered by (step, timestamp), errors by timestamp, and revision tags count events. Timings
/// (chronos, runtime) pair each start with the next finish of the same stream.
public final class Projection: @unchecked Sendable {
    var trials: [String: TrialState] = [:]
    var projects: [String: ContainerState] = [:]
    var groups: [String: ContainerState] = [:]
    /// Trial uids by hash, for `getTrial(hash:)`.
    var revisions: [String: Set<Int>] = [:]
    /// Open chronos and runs: stream, trial, name → start timestamp.
    private var openTimers: [String: HLC] = [:]
    /// Trial creation order (by timestamp) for listings.
    private var trialOrder: [String: HLC] = [:]
    private var changes: [String: (kind: ObjectChange.Kind, previous: Int?)] = [:]
    /// Bumped by `takeChanges`: an object noted in this epoch is in `changes` already.
    private var changesEpoch: UInt64 = 1
    /// Changes applied so far: the position `changes(since:)` counts from.
    private var position: UInt64 = 0
    /// Tells this projection's cursors from another's.
    private let identity = UInt64.random(in: 1...UInt64.max)
    /// Events applied.
    public private(set) var eventCount = 0
    /// The latest timestamp applied (writers observe it to keep causality).
    public private(set) var maxHLC = HLC.zero
    /// Metric points held.
    public private(set) var pointCount = 0
    /// Losses a compaction was told to accept (`LogRecord.lossAccepted`), oldest first: what
    /// `verify`, `stats` and `summary` show.
    public internal(set) var acceptedLosses: [(hlc: HLC, text: String)] = []

    /// An empty projection.
    public init() {}

    var openTimerEntries: [String: HLC] { openTimers }

    /// The running timers `stream` opened on a trial, by chrono name (`""`: the run itself).
    func openTimers(stream: String, trial uid: String) -> [String: HLC] {
        let prefix = "\(stream)\u{0}\(uid)\u{0}"
        var out: [String: HLC] = [:]
        for (key, hlc) in openTimers where key.hasPrefix(prefix) { out[String(key.dropFirst(prefix.count))] = hlc }
        return out
    }

    /// Replaces the running timers `stream` opened on a trial (see `openTimers(stream:trial:)`).
    func setOpenTimers(_ timers: [String: HLC], stream: String, trial uid: String) {
        let prefix = "\(stream)\u{0}\(uid)\u{0}"
        for key in openTimers.keys where key.hasPrefix(prefix) { openTimers[key] = nil }
        for (name, hlc) in timers { openTimers[prefix + name] = hlc }
    }
    var trialOrderEntries: [String: HLC] { trialOrder }

    func restoreCounts(events: Int, points: Int, maxHLC: HLC) {
        eventCount = events
        pointCount = points
        self.maxHLC = maxHLC
    }

    func restoreTimers(_ timers: [String: HLC], order: [String: HLC]) {
        openTimers = timers
        trialOrder = order
    }

    // MARK: - Reading

    /// The project named `uid`.
    public func project(_ uid: String) -> Project? {
        guard let state = projects[uid], var p = state.project else { return nil }
        p.metadata = state.metadata.object
        p.trials = ContainerState.ordered(state.trials)
        p.groups = ContainerState.ordered(state.groups)
        p.updateCount = state.updateCount
        return p
    }

    /// The group with this uid.
    public func group(_ uid: String) -> TrialGroup? {
        guard let state = groups[uid], var g = state.group else { return nil }
        g.metadata = state.metadata.object
        g.trials = ContainerState.ordered(state.trials)
        g.updateCount = state.updateCount
        return g
    }

    /// The trial with this uid.
    public func trial(_ uid: String) -> Trial? { trials[uid]?.trial() }

    /// True when a trial with this uid was created.
    public func hasTrial(_ uid: String) -> Bool { trials[uid]?.creation != nil }

    /// True when a project with this uid was created.
    public func hasProject(_ uid: String) -> Bool { projects[uid]?.project != nil }

    /// True when a group with this uid was created.
    public func hasGroup(_ uid: String) -> Bool { groups[uid]?.group != nil }

    /// The revisions of a trial hash, in no particular order.
    public func revisions(hash: String) -> Set<Int> { revisions[hash] ?? [] }

    /// Every revision of a hash, by revision.
    public func trials(hash: String) -> [Trial] {
        (revisions[hash] ?? []).sorted().compactMap { trial("\(hash)_\($0)") }
    }

    /// The trial with this uid without its metrics (see `metricNames(trial:)` and
    /// `columns(trial:metric:)`): what a listing needs, at a cost that does not grow with the points.
    public func trialOverview(_ uid: String) -> Trial? { trials[uid]?.overview() }

    /// A trial's metric names, in the order they first appeared (empty for an unknown trial).
    public func metricNames(trial uid: String) -> [String] { trials[uid]?.metricNames ?? [] }

    /// Every trial's uid, by creation time.
    public var trialUIDs: [String] {
        trialOrder.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.compactMap { trials[$0.key]?.creation != nil ? $0.key : nil }
    }

    /// The metric columns of a trial's metric.
    public func columns(trial uid: String, metric: String) -> MetricColumns? { trials[uid]?.metrics[metric]?.columns }

    /// All projects, by creation time.
    public var allProjects: [Project] {
        projects.filter { $0.value.project != nil }.sorted { ($0.value.creation!, $0.key) < ($1.value.creation!, $1.key) }.compactMap { project($0.key) }
    }

    /// All groups, by creation time.
    public var allGroups: [TrialGroup] {
        groups.filter { $0.value.group != nil }.sorted { ($0.value.creation!, $0.key) < ($1.value.creation!, $1.key) }.compactMap { group($0.key) }
    }

    /// All trials, by creation time.
    public var allTrials: [Trial] {
        trialUIDs.compactMap { trial($0) }
    }

    /// The revision tag of an object, if it exists.
    public func tag(_ kind: ObjectChange.Kind, _ uid: String) -> Int? {
        switch kind {
        case .project: return projects[uid]?.project != nil ? projects[uid]!.updateCount : nil
        case .group: return groups[uid]?.group != nil ? groups[uid]!.updateCount : nil
        case .trial: return trials[uid]?.creation != nil ? trials[uid]!.updateCount : nil
        }
    }

    // MARK: - Changes

    /// Notes that an object changes (before the change): for `takeChanges` its tag before the
    /// first change since the last call, for `changes(since:)` the position of this change.
    private func noteChange(_ kind: ObjectChange.Kind, _ uid: String, _ state: some ChangeTracked) {
        position += 1
        state.changedAt = position
        // Once per object between two `takeChanges`: no string is built for the others.
        guard state.notedEpoch != changesEpoch else { return }
        state.notedEpoch = changesEpoch
        let key = "\(kind.rawValue):\(uid)"
        if changes[key] == nil { changes[key] = (kind, tag(kind, uid)) }
    }

    /// What changed after `cursor` (returned by an earlier call; nil: everything): the objects
    /// with their revision tags and the metric series with their point counts, and the cursor to
    /// ask from next time. Any number of readers can follow the projection this way (a web view,
    /// `tail`), each with its own cursor; it is not consumed like `takeChanges`. A cursor of
    /// another projection (one the materializer replaced) gives everything.
    public func changes(since cursor: ChangeCursor?) -> ProjectionChanges {
        var out = ProjectionChanges(cursor: ChangeCursor(projection: identity, position: position))
        let all = cursor == nil || cursor!.projection != identity
        let since = all ? 0 : cursor!.position
        for (uid, state) in projects where state.project != nil && (all || state.changedAt > since) {
            out.objects.append(ChangedObject(kind: .project, uid: uid, tag: state.updateCount))
        }
        for (uid, state) in groups where state.group != nil && (all || state.changedAt > since) {
            out.objects.append(ChangedObject(kind: .group, uid: uid, tag: state.updateCount))
        }
        for (uid, state) in trials where state.creation != nil && (all || state.changedAt > since) {
            out.objects.append(ChangedObject(kind: .trial, uid: uid, tag: state.updateCount))
            for (metric, entry) in state.metrics where all || entry.changedAt > since {
                out.series.append(ChangedSeries(trial: uid, metric: metric, count: entry.columns.count))
            }
        }
        out.objects.sort { ($0.kind.rawValue, $0.uid) < ($1.kind.rawValue, $1.uid) }
        out.series.sort { ($0.trial, $0.metric) < ($1.trial, $1.metric) }
        return out
    }

    /// The objects changed since the last call, with their tags before and after.
    public func takeChanges() -> [ObjectChange] {
        let out = changes.compactMap { (key, entry) -> ObjectChange? in
            let uid = String(key.dropFirst(entry.kind.rawValue.count + 1))
            guard let current = tag(entry.kind, uid) else { return nil }
            return ObjectChange(kind: entry.kind, uid: uid, previousTag: entry.previous, currentTag: current)
        }
        changes.removeAll()
        changesEpoch += 1
        return out.sorted { ($0.kind.rawValue, $0.uid) < ($1.kind.rawValue, $1.uid) }
    }

    // MARK: - Restoring

    /// A projection holding exactly these objects (a pickled file, an import): their revision
    /// tags, statuses, metrics and chronos as given, timestamps made up in their order so that
    /// later events apply on top. Last-change times keep microsecond precision.
    public static func restoring(projects: [Project], groups: [TrialGroup], trials: [Trial]) -> Projection {
        let p = Projection()
        var clock: UInt64 = 1 << HLC.counterBits
        func tick() -> HLC { clock += 1; return HLC(rawValue: clock) }
        for project in projects {
            let c = p.container(&p.projects, project.uid)
            c.creation = tick()
            c.project = Project(name: project.name, description: project.description)
            c.metadata.merge(project.metadata, at: c.creation!)
            for uid in project.trials { _ = ContainerState.add(uid, at: tick(), to: &c.trials) }
            for uid in project.groups { _ = ContainerState.add(uid, at: tick(), to: &c.groups) }
            c.updateCount = project.updateCount
        }
        for group in groups {
            let c = p.container(&p.groups, group.uid)
            c.creation = tick()
            c.group = TrialGroup(name: group.name, projectID: group.projectID, description: group.description, uid: group.uid)
            c.metadata.merge(group.metadata, at: c.creation!)
            for uid in group.trials { _ = ContainerState.add(uid, at: tick(), to: &c.trials) }
            c.updateCount = group.updateCount
        }
        for trial in trials {
            let state = p.trialState(trial.uid)
            let created = tick()
            var base = trial
            base.metrics = [:]
            base.chronos = [:]
            base.errors = []
            state.creation = Stamped(value: base, hlc: created)
            state.status = Stamped(value: trial.status, hlc: created)
            state.parameters.merge(trial.parameters, at: created)
            state.metadata.merge(trial.metadata, at: created)
            state.tags.merge(trial.tags, at: created)
            for error in trial.errors { state.errors.append((tick(), error)) }
            for (position, (name, series)) in trial.metrics.enumerated() {
                var columns = MetricColumns()
                for point in series.points { columns.record(step: point.step, value: point.value, hlc: tick()) }
                state.metrics[name] = SeriesState(first: FirstSeen(hlc: created, position: position), columns: columns)
                p.pointCount += series.count
            }
            for (name, aggregator) in trial.chronos {
                if name == "runtime", case .value(let v) = aggregator {
                    state.runtime = Stamped(value: v?.doubleValue, hlc: created)
                    state.chronoBase.append((name, aggregator))  // keeps its place among the chronos
                } else {
                    state.chronoBase.append((name, aggregator))
                }
            }
            state.updateCount = trial.updateCount
            state.lastChange = trial.lastChange.map { HLC(microseconds: UInt64(max(0, ($0 * 1_000_000).rounded()))) } ?? .zero
            if let seconds = trial.lastChange { state.lastChangeExact = (state.lastChange, seconds) }
            p.revisions[trial.hash, default: []].insert(trial.revision)
            p.trialOrder[trial.uid] = created
        }
        p.maxHLC = HLC(rawValue: clock)
        _ = p.takeChanges()
        return p
    }

    // MARK: - Applying

    private func trialState(_ uid: String) -> TrialState {
        if let s = trials[uid] { return s }
        let s = TrialState()
        trials[uid] = s
        return s
    }

    /// A trial set into a project or group (`link` is the trial's reference, `containers` the
    /// projects or groups): the latest reference wins; the container lists the trial.
    private func addTrial(_ uid: String, to id: String, at hlc: HLC, link: ReferenceWritableKeyPath<TrialState, Stamped<String?>?>,
                          containers: ReferenceWritableKeyPath<Projection, [String: ContainerState]>, kind: ObjectChange.Kind) {
        let state = trialState(uid)
        noteChange(.trial, uid, state)
        if state[keyPath: link] == nil || hlc >= state[keyPath: link]!.hlc { state[keyPath: link] = Stamped(value: id, hlc: hlc) }
        state.touch(hlc)
        let target = container(&self[keyPath: containers], id)
        noteChange(kind, id, target)
        _ = ContainerState.add(uid, at: hlc, to: &target.trials)
        target.updateCount += 1
    }

    private func container(_ map: inout [String: ContainerState], _ uid: String) -> ContainerState {
        if let s = map[uid] { return s }
        let s = ContainerState()
        map[uid] = s
        return s
    }

    /// Applies one decoded frame of `stream`, skipping events below `from` (already applied).
    public func apply(_ frame: DecodedFrame, stream: String, from: UInt64 = 0) {
        var previousSequence: UInt64? = nil
        var position = 0
        var resolved: [(trial: TrialState, uid: String, series: SeriesState)?] = []
        for event in frame.events {
            let continues = previousSequence == event.sequence
            position = continues ? position + 1 : 0
            previousSequence = event.sequence
            if event.sequence < from { continue }
            if event.hlc > maxHLC { maxHLC = event.hlc }
            switch event.kind {
            case .point(let series, let step, let value):
                // Each series of the frame is looked up once (by trial uid and metric name), not
                // once per point.
                let index = Int(series)
                if index >= resolved.count { resolved += Array(repeating: nil, count: index + 1 - resolved.count) }
                let target: (trial: TrialState, uid: String, series: SeriesState)
                if let known = resolved[index] {
                    target = known
                } else {
                    let names = frame.seriesNames(series)
                    let state = trialState(names.subject)
                    target = (state, names.subject, seriesState(state, names.name, FirstSeen(hlc: event.hlc, position: position)))
                    resolved[index] = target
                }
                applyPoint(target.trial, uid: target.uid, target.series, step: step, value: .double(value), hlc: event.hlc,
                           position: position, countsAsOperation: !continues)
            case .record(let record):
                // Every record of a track database is one of track's (`TrackRecordCodec`).
                if let record = record as? LogRecord { apply(record, hlc: event.hlc, stream: stream) }
            }
            if !continues { eventCount += 1 }
        }
    }

    func applyPoint(trial uid: String, metric: String, step: MetricStep?, value: Value, hlc: HLC, position: Int, countsAsOperation: Bool) {
        let state = trialState(uid)
        let seen = FirstSeen(hlc: hlc, position: position)
        applyPoint(state, uid: uid, seriesState(state, metric, seen), step: step, value: value, hlc: hlc, position: position,
                   countsAsOperation: countsAsOperation)
    }

    /// The series `metric` of a trial, made (first seen at `seen`) if new.
    private func seriesState(_ state: TrialState, _ metric: String, _ seen: FirstSeen) -> SeriesState {
        if let series = state.metrics[metric] { return series }
        let series = SeriesState(first: seen, columns: MetricColumns())
        state.metrics[metric] = series
        return series
    }

    @inline(__always)
    private func applyPoint(_ state: TrialState, uid: String, _ series: SeriesState, step: Int64?, value: Value, hlc: HLC,
                            position: Int, countsAsOperation: Bool) {
        notePoint(state, uid: uid, series, hlc: hlc, position: position)
        series.columns.record(step: step, value: value, hlc: hlc)
        if countsAsOperation { state.touch(hlc) } else { state.cached = nil }
    }

    private func applyPoint(_ state: TrialState, uid: String, _ series: SeriesState, step: MetricStep?, value: Value, hlc: HLC,
                            position: Int, countsAsOperation: Bool) {
        notePoint(state, uid: uid, series, hlc: hlc, position: position)
        series.columns.record(step: step, value: value, hlc: hlc)
        if countsAsOperation { state.touch(hlc) } else { state.cached = nil }
    }

    @inline(__always)
    private func notePoint(_ state: TrialState, uid: String, _ series: SeriesState, hlc: HLC, position: Int) {
        noteChange(.trial, uid, state)
        let seen = FirstSeen(hlc: hlc, position: position)
        if seen < series.first { series.first = seen }
        series.changedAt = self.position
        pointCount += 1
    }

    /// A project's creation or import. The earliest creation (by timestamp) sets its fields, so
    /// the result does not depend on arrival order; an import also merges its metadata and
    /// lists its members, whatever its place.
    private func applyProjectCreation(_ p: Project, at hlc: HLC, imported: Bool) {
        let state = container(&projects, p.uid)
        noteChange(.project, p.uid, state)
        let earliest = state.creation == nil || hlc < state.creation!
        if earliest {
            state.creation = hlc
            state.project = Project(name: p.name, description: p.description)
        }
        if earliest || imported { state.metadata.merge(p.metadata, at: hlc) }
        if imported {
            for (i, uid) in p.trials.enumerated() { ContainerState.add(uid, at: FirstSeen(hlc: hlc, position: i), to: &state.trials) }
            for (i, uid) in p.groups.enumerated() { ContainerState.add(uid, at: FirstSeen(hlc: hlc, position: i), to: &state.groups) }
        }
    }

    /// A group's creation or import (see `applyProjectCreation`). A created group is listed in
    /// its project, which counts it once, whatever order repeated creations arrive in; an
    /// imported one is listed by its imported project.
    private func applyGroupCreation(_ g: TrialGroup, at hlc: HLC, imported: Bool) {
        let state = container(&groups, g.uid)
        noteChange(.group, g.uid, state)
        let firstCreation = state.creation == nil
        let earliest = firstCreation || hlc < state.creation!
        if earliest {
            state.creation = hlc
            state.group = TrialGroup(name: g.name, projectID: g.projectID, description: g.description, uid: g.uid)
        }
        if earliest || imported { state.metadata.merge(g.metadata, at: hlc) }
        if imported {
            for (i, uid) in g.trials.enumerated() { ContainerState.add(uid, at: FirstSeen(hlc: hlc, position: i), to: &state.trials) }
        } else {
            let project = container(&projects, g.projectID)
            _ = ContainerState.add(g.uid, at: hlc, to: &project.groups)
            if firstCreation {
                noteChange(.project, g.projectID, project)
                project.updateCount += 1
            }
        }
    }

    /// A trial's creation or import (see `applyProjectCreation`). The project and group list
    /// it; a created trial is counted by them once, when its first creation event arrives (a
    /// trial can be added to them only once it exists, so this does not depend on order). An
    /// import brings its history too: errors, metrics, chronos, revision tag, last change.
    private func applyTrialCreation(_ t: Trial, at hlc: HLC, imported: Bool) {
        let state = trialState(t.uid)
        noteChange(.trial, t.uid, state)
        let firstCreation = state.creation == nil
        let earliest = firstCreation || hlc < state.creation!.hlc
        if earliest {
            var base = t
            base.metrics = [:]
            base.chronos = [:]
            base.errors = []
            state.creation = Stamped(value: base, hlc: hlc)
        }
        if earliest || imported {
            state.parameters.merge(t.parameters, at: hlc)
            state.metadata.merge(t.metadata, at: hlc)
            state.tags.merge(t.tags, at: hlc)
            if state.status == nil || hlc >= state.status!.hlc { state.status = Stamped(value: t.status, hlc: hlc) }
        }
        if imported {
            importHistory(t, into: state, at: hlc)
        } else if earliest && hlc > state.lastChange {
            state.lastChange = hlc
        }
        state.cached = nil
        revisions[t.hash, default: []].insert(t.revision)
        trialOrder[t.uid] = min(trialOrder[t.uid] ?? hlc, hlc)
        for (id, containers, kind) in [(t.projectID, \Projection.projects, ObjectChange.Kind.project), (t.groupID, \Projection.groups, .group)] {
            guard let id else { continue }
            let target = container(&self[keyPath: containers], id)
            _ = ContainerState.add(t.uid, at: hlc, to: &target.trials)
            if firstCreation && !imported {
                noteChange(kind, id, target)
                target.updateCount += 1
            }
        }
    }

    /// What an imported trial brings beyond its fields: errors, metrics, chronos, its revision
    /// tag and last-change time (exact to the bit while nothing changes after it).
    private func importHistory(_ t: Trial, into state: TrialState, at hlc: HLC) {
        for error in t.errors {
            let position = state.errors.firstIndex { $0.hlc > hlc } ?? state.errors.count
            state.errors.insert((hlc, error), at: position)
        }
        for (position, (name, series)) in t.metrics.enumerated() where state.metrics[name] == nil {
            var columns = MetricColumns()
            for point in series.points { columns.record(step: point.step, value: point.value, hlc: hlc) }
            state.metrics[name] = SeriesState(first: FirstSeen(hlc: hlc, position: position), columns: columns)
            pointCount += series.count
        }
        for (name, aggregator) in t.chronos {
            if name == "runtime", case .value(let v) = aggregator { state.runtime = Stamped(value: v?.doubleValue, hlc: hlc) }
            if !state.chronoBase.contains(where: { $0.name == name }) { state.chronoBase.append((name, aggregator)) }
        }
        state.updateCount += t.updateCount
        if let seconds = t.lastChange {
            let changed = HLC(microseconds: UInt64(max(0, (seconds * 1_000_000).rounded())))
            if changed > state.lastChange {
                state.lastChange = changed
                state.lastChangeExact = (changed, seconds)
            }
        }
    }

    /// Applies one record at `hlc`, written by `stream`.
    public func apply(_ record: LogRecord, hlc: HLC, stream: String) {
        if hlc > maxHLC { maxHLC = hlc }
        switch record {
        case .projectCreated(let p), .projectImported(let p):
            applyProjectCreation(p, at: hlc, imported: record.isImport)
        case .groupCreated(let g), .groupImported(let g):
            applyGroupCreation(g, at: hlc, imported: record.isImport)
        case .trialCreated(let t, _), .trialImported(let t):
            applyTrialCreation(t, at: hlc, imported: record.isImport)
        case .trialAddedToProject(let uid, let projectID):
            addTrial(uid, to: projectID, at: hlc, link: \.projectID, containers: \.projects, kind: .project)
        case .trialAddedToGroup(let uid, let groupID):
            addTrial(uid, to: groupID, at: hlc, link: \.groupID, containers: \.groups, kind: .group)
        case .trialStarted(let uid):
            let state = trialState(uid)
            noteChange(.trial, uid, state)
            openTimers["\(stream)\u{0}\(uid)\u{0}"] = hlc
            if state.runtime == nil || hlc >= state.runtime!.hlc { state.runtime = Stamped(value: nil, hlc: hlc) }
            state.touch(hlc)
        case .trialFinished(let uid):
            let state = trialState(uid)
            noteChange(.trial, uid, state)
            if let start = openTimers.removeValue(forKey: "\(stream)\u{0}\(uid)\u{0}") {
                let seconds = max(0, hlc.seconds - start.seconds)
                if state.runtime == nil || hlc >= state.runtime!.hlc { state.runtime = Stamped(value: seconds, hlc: hlc) }
            }
            state.touch(hlc)
        case .chronoStarted(let uid, let name):
            let state = trialState(uid)
            noteChange(.trial, uid, state)
            openTimers["\(stream)\u{0}\(uid)\u{0}\(name)"] = hlc
            if state.chronoDurations[name] == nil { state.chronoDurations[name] = (hlc, []) }
            state.touch(hlc)
        case .chronoFinished(let uid, let name):
            let state = trialState(uid)
            noteChange(.trial, uid, state)
            if let start = openTimers.removeValue(forKey: "\(stream)\u{0}\(uid)\u{0}\(name)") {
                var entry = state.chronoDurations[name] ?? (start, [])
                let d = (hlc: hlc, seconds: max(0, hlc.seconds - start.seconds))
                let position = entry.durations.firstIndex { $0.hlc > hlc } ?? entry.durations.count
                entry.durations.insert(d, at: position)
                state.chronoDurations[name] = entry
            }
            state.touch(hlc)
        case .argumentsLogged(let uid, let o):
            let state = trialState(uid); noteChange(.trial, uid, state); state.parameters.merge(o, at: hlc); state.touch(hlc)
        case .metadataLogged(let uid, let o):
            let state = trialState(uid); noteChange(.trial, uid, state); state.metadata.merge(o, at: hlc); state.touch(hlc)
        case .tagsAdded(let uid, let o):
            let state = trialState(uid); noteChange(.trial, uid, state); state.tags.merge(o, at: hlc); state.touch(hlc)
        case .statusSet(let uid, let status, let error):
            let state = trialState(uid)
            noteChange(.trial, uid, state)
            if state.status == nil || hlc >= state.status!.hlc { state.status = Stamped(value: status, hlc: hlc) }
            if let error {
                let position = state.errors.firstIndex { $0.hlc > hlc } ?? state.errors.count
                state.errors.insert((hlc, error), at: position)
            }
            state.touch(hlc)
        case .groupMetadataSet(let uid, let o):
            let group = container(&groups, uid)
            noteChange(.group, uid, group)
            group.metadata.merge(o, at: hlc)
            group.updateCount += 1
        case .lossAccepted(let text):
            if !acceptedLosses.contains(where: { $0.hlc == hlc && $0.text == text }) {
                let position = acceptedLosses.firstIndex { $0.hlc > hlc } ?? acceptedLosses.count
                acceptedLosses.insert((hlc, text), at: position)
            }
        case .metricsLogged(let uid, let step, let o):
            for (position, (name, value)) in o.enumerated() {
                applyPoint(trial: uid, metric: name, step: step, value: value, hlc: hlc, position: position, countsAsOperation: position == 0)
            }
        }
    }
}

private extension LogRecord {
    /// True for the records of an import (objects brought in whole, with their history).
    var isImport: Bool {
        switch self {
        case .projectImported, .groupImported, .trialImported: return true
        default: return false
        }
    }
}
