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

/// The history of one metric of one trial, as `track` keeps it: points logged with a step are
/// keyed by the step (logging a step again replaces its value, as `track`'s dict does) and kept
/// in step order; points logged without a step come before them, in logging order.
public struct MetricSeries: Sendable, Equatable {
    /// Every point, stepped ones in step order.
    public private(set) var points: [MetricPoint] = []

    /// An empty series.
    public init() {}

    /// A series holding `points` as given (no reordering).
    public init(points: [MetricPoint]) { self.points = points }

    /// Number of points.
    public var count: Int { points.count }

    /// The last point, if any.
    public var last: MetricPoint? { points.last }

    /// The last step logged, if any point has one.
    public var lastStep: Int64? { points.last(where: { $0.step != nil })?.step }

    /// Records `value` at `step` (nil: appended without a step).
    public mutating func record(step: Int64?, value: Value) {
        guard let step else {
            // After the other points without a step, before the stepped ones.
            if points.last?.step == nil {
                points.append(MetricPoint(step: nil, value: value))
            } else {
                let position = points.firstIndex { $0.step != nil } ?? points.count
                points.insert(MetricPoint(step: nil, value: value), at: position)
            }
            return
        }
        // Fast path: steps usually grow.
        if let lastStep = points.last?.step {
            if lastStep < step { points.append(MetricPoint(step: step, value: value)); return }
            if lastStep == step { points[points.count - 1].value = value; return }
        } else if points.isEmpty {
            points.append(MetricPoint(step: step, value: value))
            return
        }
        if let existing = points.firstIndex(where: { $0.step == step }) {
            points[existing].value = value
            return
        }
        // Insert before the first stepped point with a larger step.
        let position = points.firstIndex { $0.step != nil && $0.step! > step } ?? points.count
        points.insert(MetricPoint(step: step, value: value), at: position)
    }

    /// `track`'s serialized form: `{"<step>": value, ...}` when every point has a step, a list of
    /// values when none has, and a list mixing values and `[step, value]` pairs otherwise.
    public var trackJSON: Value {
        if !points.isEmpty && points.allSatisfy({ $0.step != nil }) {
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
            for element in elements {
                if case .array(let pair) = element, pair.count == 2, case .int(let step) = pair[0] {
                    points.append(MetricPoint(step: step, value: pair[1]))
                } else {
                    points.append(MetricPoint(step: nil, value: element))
                }
            }
        case .null:
            break
        default:
            points.append(MetricPoint(step: nil, value: value))
        }
    }
}
