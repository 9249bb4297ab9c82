/// `track`'s `StatStream`: streaming count, mean, standard deviation, min and max that keeps no
/// history and drops the first `dropObservations` observations (usually slower warm-up steps).
///
/// Fields and their JSON names are `track`'s (`sum`, `sum_sqr`, `first_obs`, ...), so a stat
/// stream written by Python loads here and the reverse. Sums are taken relative to the first kept
/// observation, for precision.
public struct StatStream: Sendable, Equatable {
    /// Sum of kept observations minus `firstObservation`.
    public var sum: Double = 0
    /// Sum of squares of kept observations minus `firstObservation`.
    public var sumOfSquares: Double = 0
    /// The first kept observation, subtracted from the others.
    public var firstObservation: Double = 0
    /// The smallest kept observation (`+inf` before any).
    public var min: Double = .infinity
    /// The largest kept observation (`-inf` before any).
    public var max: Double = -.infinity
    /// Every observation seen, dropped ones included.
    public var observationCount: Int = 0
    /// The last observation (relative to `firstObservation` once observations are kept).
    public var currentObservation: Double = 0
    /// How many leading observations are dropped.
    public var dropObservations: Int

    /// An empty stream dropping the first `dropObservations` observations.
    public init(dropObservations: Int = 1) {
        self.dropObservations = Swift.max(0, dropObservations)
    }

    /// Adds one observation, with the arithmetic of Python's `StatStream.update` (weight 1)
    /// exactly, quirks included: the observation at index `dropObservations - 1` is already
    /// kept, and while `count` is 1 each kept observation becomes `firstObservation` again.
    public mutating func append(_ value: Double) {
        observationCount += 1
        if observationCount < dropObservations {
            currentObservation = value
            return
        }
        if count == 1 { firstObservation = value }
        currentObservation = value - firstObservation
        sum += currentObservation
        sumOfSquares += currentObservation * currentObservation
        min = Swift.min(min, value)
        max = Swift.max(max, value)
    }

    /// Python's `count`: observations past the dropped ones, and at least 1.
    public var count: Int { Swift.max(observationCount - dropObservations, 1) }

    /// Python's `avg`: `sum / count + first_obs`.
    public var mean: Double { sum / Double(count) + firstObservation }

    /// Python's `var`, `sum_sqr / count - (sum / count)²`, but never below 0 (Python's
    /// `sd` raises on the rounding error that makes it so).
    public var variance: Double {
        let m = sum / Double(count)
        return Swift.max(0, sumOfSquares / Double(count) - m * m)
    }

    /// The population standard deviation of kept observations.
    public var standardDeviation: Double { variance.squareRoot() }

    /// The sum of kept observations.
    public var total: Double { sum + firstObservation * Double(count) }

    /// The last observation (Python's `val`).
    public var last: Double { currentObservation + firstObservation }

    /// `track`'s serialized form, `{"dtype": "statstream", "sum": ..., ...}`.
    public var trackJSON: Value {
        .object([
            "dtype": "statstream",
            "sum": .double(sum),
            "sum_sqr": .double(sumOfSquares),
            "first_obs": .double(firstObservation),
            "min": .double(min),
            "max": .double(max),
            "current_count": .int(Int64(observationCount)),
            "current_obs": .double(currentObservation),
            "drop_obs": .int(Int64(dropObservations)),
        ])
    }

    /// Reads `track`'s serialized form.
    public init(trackJSON value: Value) throws(ModelError) {
        guard case .object(let f) = value else {
            throw ModelError(.malformedObject, "a statstream is an object, got \(value.kindName)")
        }
        func number(_ key: String) throws(ModelError) -> Double {
            guard let d = f[key]?.doubleValue else {
                throw ModelError(.malformedObject, "statstream field '\(key)' is missing or not a number")
            }
            return d
        }
        self.init(dropObservations: Int(try number("drop_obs")))
        sum = try number("sum")
        sumOfSquares = try number("sum_sqr")
        firstObservation = try number("first_obs")
        min = try number("min")
        max = try number("max")
        observationCount = Int(try number("current_count"))
        currentObservation = try number("current_obs")
    }
}

/// The last `capacity` values, oldest first (`track`'s `RingAggregator`).
public struct RingBuffer: Sendable, Equatable {
    /// How many values are kept.
    public let capacity: Int
    private var storage: [Value] = []
    private var next = 0

    /// An empty ring keeping the last `capacity` values (at least one).
    public init(capacity: Int) {
        self.capacity = Swift.max(1, capacity)
    }

    /// Adds a value, forgetting the oldest once full.
    public mutating func append(_ value: Value) {
        if storage.count < capacity {
            storage.append(value)
        } else {
            storage[next] = value
        }
        next = (next + 1) % capacity
    }

    /// The kept values, oldest first.
    public var values: [Value] {
        storage.count < capacity ? storage : Array(storage[next...] + storage[..<next])
    }
}

/// How a metadata or chrono entry aggregates the values logged into it (`track`'s aggregators).
public enum Aggregator: Sendable, Equatable {
    /// Keeps the last value (`ValueAggregator`); nil before any.
    case value(Value?)
    /// Streaming statistics (`StatAggregator`).
    case stat(StatStream)
    /// The full history (`TimeSeriesAggregator`).
    case timeSeries([Value])
    /// The last n values (`RingAggregator`).
    case ring(RingBuffer)

    /// Adds one observation. A stat aggregator takes numbers only; others are ignored by it.
    public mutating func append(_ observation: Value) {
        switch self {
        case .value: self = .value(observation)
        case .stat(var s):
            if let d = observation.doubleValue { s.append(d) }
            self = .stat(s)
        case .timeSeries(var values):
            values.append(observation)
            self = .timeSeries(values)
        case .ring(var r):
            r.append(observation)
            self = .ring(r)
        }
    }

    /// `track`'s serialized form: the value, the statstream object, or the list.
    public var trackJSON: Value {
        switch self {
        case .value(let v): return v ?? .null
        case .stat(let s): return s.trackJSON
        case .timeSeries(let values): return .array(values)
        case .ring(let r): return .array(r.values)
        }
    }

    /// Reads a serialized chrono: a statstream object becomes `.stat`, anything else `.value`.
    public init(trackJSON value: Value) throws(ModelError) {
        if value["dtype"]?.stringValue == "statstream" {
            self = .stat(try StatStream(trackJSON: value))
        } else if value.isNull {
            self = .value(nil)
        } else {
            self = .value(value)
        }
    }
}
