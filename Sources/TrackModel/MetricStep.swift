/// The step a metric point is logged at. Python `track` takes any hashable step (`step=5`,
/// `step=1.5`, `step="warmup"`) and keys the metric by it; integers are the common case and the
/// engine's fast path, the others are kept as they came.
public enum MetricStep: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// A whole-number step (the fast path).
    case int(Int64)
    /// A floating-point step (`step=1.5`).
    case number(Double)
    /// A text step (`step="warmup"`).
    case text(String)

    /// An integer step.
    public init(integerLiteral value: Int64) { self = .int(value) }

    /// The step a JSON value stands for: an integer, a float or a string; nil for anything else
    /// (null, booleans, lists and objects are not steps here).
    public init?(_ value: Value) {
        switch value {
        case .int(let i): self = .int(i)
        case .double(let d): self = .number(d)
        case .string(let s): self = .text(s)
        default: return nil
        }
    }

    /// The integer, for an integer step.
    public var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// The step as a JSON value.
    public var value: Value {
        switch self {
        case .int(let i): return .int(i)
        case .number(let d): return .double(d)
        case .text(let s): return .string(s)
        }
    }

    /// Python's truth value of the step (`elif step:`): false for 0, 0.0 and "".
    public var isTruthy: Bool {
        switch self {
        case .int(let i): return i != 0
        case .number(let d): return d != 0
        case .text(let s): return !s.isEmpty
        }
    }

    /// The key the step gets in track's JSON of a step-keyed metric (Python's `json.dumps` of a
    /// dict key: an integer's digits, a float's repr, the string itself).
    public var jsonKey: String {
        switch self {
        case .int(let i): return String(i)
        case .number(let d): return JSON.encode(.double(d))
        case .text(let s): return s
        }
    }

    /// The step a key of a step-keyed metric's JSON stands for: an integer when it reads as
    /// one, the text otherwise (after a JSON round trip Python has only the text either way).
    public init(jsonKey: String) {
        if let i = Int64(jsonKey) { self = .int(i) } else { self = .text(jsonKey) }
    }

    /// Python's dict-key equality: numbers compare by value (`1 == 1.0`), text by its characters.
    public static func == (a: MetricStep, b: MetricStep) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.int(let x), .number(let y)), (.number(let y), .int(let x)): return Double(x) == y && Double(exactly: x) != nil
        case (.text(let x), .text(let y)): return x == y
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .int(let i): hasher.combine(Double(i))
        case .number(let d): hasher.combine(d)
        case .text(let s): hasher.combine(s)
        }
    }

    public var description: String { jsonKey }
}
