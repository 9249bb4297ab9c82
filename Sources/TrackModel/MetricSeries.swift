/// One logged metric value, with the step it was logged at (nil when logged without a step).
public struct MetricPoint: Sendable, Equatable {
    /// The step, or nil for a point logged without one.
    public var step: Int64?
    /// The value; usually a `.double`.
    public var value: Value

    /// A point at `step` (nil for none) holding `value`.
    public init(step: Int64?, value: Value) {
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
    /// The largest step held: a step above it is new, so the dict needs no search.
    private var maxStep = Int64.min

    /// An empty series.
    public init() {}

    /// A series holding `points` as given (no reordering); a list unless `isList` says otherwise
    /// (by default: a list when some point has no step or the first point had none).
    public init(points: [MetricPoint], isList: Bool? = nil) {
        self.points = points
        self.isList = isList ?? points.contains { $0.step == nil }
        maxStep = points.compactMap(\.step).max() ?? .min
    }

    /// Number of points.
    public var count: Int { points.count }

    /// The last point, if any.
    public var last: MetricPoint? { points.last }

    /// The last step logged, if any point has one.
    public var lastStep: Int64? { points.last(where: { $0.step != nil })?.step }

    /// The points with a step ordered by step (stable), after those without one in their order:
    /// the sorted view, for drawing and comparing.
    public var sortedByStep: [MetricPoint] {
        points.filter { $0.step == nil } + points.filter { $0.step != nil }.enumerated()
            .sorted { ($0.element.step!, $0.offset) < ($1.element.step!, $1.offset) }.map(\.element)
    }

    /// Records `value` at `step` (nil: without a step) as Python's `log_trial_metrics` does.
    public mutating func record(step: Int64?, value: Value) {
        if points.isEmpty { isList = step == nil }
        if isList {
            // `elif step:` appends (step, value); no step or step 0 appends the bare value.
            points.append(MetricPoint(step: step == 0 ? nil : step, value: value))
            if let step, step != 0 { maxStep = max(maxStep, step) }
            return
        }
        guard let step else {
            // Python's dict has no append and raises; the point is kept and the metric becomes a list.
            isList = true
            points.append(MetricPoint(step: nil, value: value))
            return
        }
        if step > maxStep || points.isEmpty {
            maxStep = max(maxStep, step)
            points.append(MetricPoint(step: step, value: value))
        } else if points[points.count - 1].step == step {
            points[points.count - 1].value = value
        } else if let existing = points.firstIndex(where: { $0.step == step }) {
            points[existing].value = value
        } else {
            points.append(MetricPoint(step: step, value: value))
        }
    }

    /// `track`'s serialized form: `{"<step>": value, ...}` for a step-keyed metric, a list of
    /// values and `[step, value]` pairs for a list.
    public var trackJSON: Value {
        if !isList && !points.isEmpty {
            var object = ValueObject()
            for point in points { object[String(point.step!)] = point.value }
            return .object(object)
        }
        return .array(points.map { point in
            if let step = point.step { return .array([.int(step), point.value]) }
            return point.value
        })
    }

    /// Reads `track`'s serialized form (see `trackJSON`).
    public init(trackJSON value: Value) throws(ModelError) {
        switch value {
        case .object(let fields):
            for (key, element) in fields {
                guard let step = Int64(key) else {
                    throw ModelError(.malformedObject, "metric step '\(key)' is not an integer; steps are whole numbers")
                }
                record(step: step, value: element)
            }
        case .array(let elements):
            isList = true
            for element in elements {
                if case .array(let pair) = element, pair.count == 2, case .int(let step) = pair[0] {
                    points.append(MetricPoint(step: step, value: pair[1]))
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
