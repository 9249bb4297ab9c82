/// One logged metric value, with the step it was logged at (nil when logged without a step).
public struct MetricPoint: Sendable, Equatable {
    /// The step, or nil for a point logged without one.
    public var step: MetricStep?
    /// The value; usually a `.double`.
    public var value: Value

    /// A point at `step` (nil for none) holding `value`.
    public init(step: MetricStep?, value: Value) {
        self.step = step
        self.value = value
    }
}

/// The history of one metric of one trial, kept as Python `track`'s `FileProtocol` keeps it
/// (`log_trial_metrics`): the first point decides the container. Logged with a step, the metric is
/// a step-keyed dict: logging a step again replaces its value where it stands, and steps keep the
/// order they first arrived in. Logged without one, it is a list: every point is appended in
/// logging order, as `[step, value]` when the step is given and not 0 (Python's `elif step:`),
/// as the bare value otherwise. A point without a step sent to a step-keyed metric (Python raises
/// there) is kept, and the metric then reads as a list (README, deliberate differences).
public struct MetricSeries: Sendable, Equatable {
    /// Every point as the container holds it, in its order.
    public private(set) var points: [MetricPoint] = []
    /// True when the container is a list (the first point had no step, or a point without a
    /// step came later), false for a step-keyed dict.
    public private(set) var isList = false
    /// The largest integer step held: an integer step above it is new, so the dict needs no search.
    private var maxStep = Int64.min
    /// Where each step stands in `points` (dict only): built when a step arrives that is not above
    /// every one held (a step logged again, a loop that restarts its steps, a text step), then
    /// kept up to date. A search through the points instead made such a metric cost O(n²).
    private var positions: [MetricStep: Int]?

    /// An empty series.
    public init() {}

    /// A series holding `points` as given (no reordering); a list unless `isList` says otherwise
    /// (by default: a list when some point has no step or the first point had none).
    public init(points: [MetricPoint], isList: Bool? = nil) {
        self.points = points
        self.isList = isList ?? points.contains { $0.step == nil }
        for point in points { if let step = point.step { noteMax(step) } }
    }

    /// Number of points.
    public var count: Int { points.count }

    /// The last point, if any.
    public var last: MetricPoint? { points.last }

    /// The last step logged, if any point has one.
    public var lastStep: MetricStep? { points.last(where: { $0.step != nil })?.step }

    /// The points ordered by step, stable: those without a step first, then numeric steps by
    /// value, then text steps in their order. The sorted view, for drawing and comparing.
    public var sortedByStep: [MetricPoint] {
        func numeric(_ p: MetricPoint) -> Double? {
            switch p.step {
            case .int(let i)?: return Double(i)
            case .number(let d)?: return d
            default: return nil
            }
        }
        let numbered = points.enumerated().compactMap { i, p in numeric(p).map { ($0, i, p) } }
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
        let text = points.filter { if case .text? = $0.step { return true } else { return false } }
        return points.filter { $0.step == nil } + numbered + text
    }

    /// Records `value` at `step` (nil: without a step) as Python's `log_trial_metrics` does.
    public mutating func record(step: MetricStep?, value: Value) {
        if points.isEmpty { isList = step == nil }
        if isList {
            // `elif step:` appends (step, value); no step or a falsy one (0, "") the bare value.
            let kept = step?.isTruthy == true ? step : nil
            points.append(MetricPoint(step: kept, value: value))
            if let i = kept?.intValue { maxStep = max(maxStep, i) }
            return
        }
        guard let step else {
            // Python's dict has no append and raises; the point is kept and the metric becomes a list.
            isList = true
            positions = nil
            points.append(MetricPoint(step: nil, value: value))
            return
        }
        if points.isEmpty || (step.intValue.map { $0 > maxStep } ?? false) {
            noteMax(step)
            positions?[step] = points.count
            points.append(MetricPoint(step: step, value: value))
        } else if points[points.count - 1].step == step {
            points[points.count - 1].value = value
        } else {
            if positions == nil {
                var built = [MetricStep: Int](minimumCapacity: points.count)
                for (i, point) in points.enumerated() { if let s = point.step, built[s] == nil { built[s] = i } }
                positions = built
            }
            if let existing = positions![step] {
                points[existing].value = value
            } else {
                noteMax(step)
                positions![step] = points.count
                points.append(MetricPoint(step: step, value: value))
            }
        }
    }

    /// Raises `maxStep` to a new step's integer value; a whole float counts too, since Python's
    /// dict takes `5.0` and `5` for one key.
    private mutating func noteMax(_ step: MetricStep) {
        switch step {
        case .int(let i): maxStep = max(maxStep, i)
        case .number(let d): if let i = Int64(exactly: d) { maxStep = max(maxStep, i) }
        case .text: break
        }
    }

    /// Equal when they hold the same points in the same kind of container.
    public static func == (a: MetricSeries, b: MetricSeries) -> Bool { a.isList == b.isList && a.points == b.points }

    /// `track`'s serialized form: `{"<step>": value, ...}` for a step-keyed metric, a list of
    /// values and `[step, value]` pairs for a list.
    public var trackJSON: Value {
        if !isList && !points.isEmpty {
            var object = ValueObject()
            for point in points { object[point.step!.jsonKey] = point.value }
            return .object(object)
        }
        return .array(points.map { point in
            if let step = point.step { return .array([step.value, point.value]) }
            return point.value
        })
    }

    /// Reads `track`'s serialized form (see `trackJSON`).
    public init(trackJSON value: Value) throws(ModelError) {
        switch value {
        case .object(let fields):
            for (key, element) in fields { record(step: MetricStep(jsonKey: key), value: element) }
        case .array(let elements):
            isList = true
            for element in elements {
                if case .array(let pair) = element, pair.count == 2, case .int(let step) = pair[0] {
                    points.append(MetricPoint(step: .int(step), value: pair[1]))
                    maxStep = max(maxStep, step)
                } else {
                    points.append(MetricPoint(step: nil, value: element))
                }
            }
        case .null:
            break
        default:
            isList = true
            points.append(MetricPoint(step: nil, value: value))
        }
    }
}
