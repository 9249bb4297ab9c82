/// A trial's status: one of `track`'s built-in statuses, or a custom one (any name and value).
///
/// Built-in values group by hundreds: 0 created, 1xx running, 2xx error, 3xx finished.
public struct Status: Sendable, Hashable, CustomStringConvertible {
    /// The status name, as `track` writes it (`"Running"`, `"Completed"`, or a custom name).
    public var name: String
    /// The status value (`101`, `302`, or a custom value).
    public var value: Int

    /// A status with exactly this name and value.
    public init(name: String, value: Int) {
        self.name = name
        self.value = value
    }

    /// `track`'s `status(name, value)`: a built-in name gives that built-in status (the value is
    /// ignored); any other name gives a custom status with `value`.
    public static func named(_ name: String, value: Int = 0) -> Status {
        builtinsByName[name] ?? Status(name: name, value: value)
    }

    /// The built-in status with this value, if there is one.
    public static func builtin(value: Int) -> Status? { builtins.first { $0.value == value } }

    /// True when this is one of `track`'s built-in statuses.
    public var isBuiltin: Bool { Status.builtinsByName[name] == self }

    /// Python's `str(status)`, what `track`'s queries compare a status with: the lowercase name
    /// of a built-in status (`"interrupted"`), the name of a custom one.
    public var pythonString: String { Status.builtinsByName[name] != nil ? name.lowercased() : name }

    /// The stored names whose `str(status)` is `text` (see `pythonString`): a built-in name whose
    /// lowercase form it is, and `text` itself unless it is a built-in name.
    public static func names(withPythonString text: String) -> [String] {
        var out = builtins.filter { $0.name.lowercased() == text }.map(\.name)
        if builtinsByName[text] == nil { out.append(text) }
        return out
    }

    // The built-in statuses of `track`, by value.
    /// Created; nothing planned yet (0).
    public static let createdGroup = Status(name: "CreatedGroup", value: 0)
    /// Group of the running statuses (100).
    public static let runningGroup = Status(name: "RunningGroup", value: 100)
    /// Running (101).
    public static let running = Status(name: "Running", value: 101)
    /// Group of the error statuses (200).
    public static let errorGroup = Status(name: "ErrorGroup", value: 200)
    /// Stopped by a signal (201).
    public static let interrupted = Status(name: "Interrupted", value: 201)
    /// Ended by an exception (202).
    public static let exception = Status(name: "Exception", value: 202)
    /// Failed repeatedly; not to be retried (203).
    public static let broken = Status(name: "Broken", value: 203)
    /// Group of the finished statuses (300).
    public static let finishedGroup = Status(name: "FinishedGroup", value: 300)
    /// Suspended by the user (301).
    public static let suspended = Status(name: "Suspended", value: 301)
    /// Finished running (302).
    public static let completed = Status(name: "Completed", value: 302)

    /// Every built-in status, by value.
    public static let builtins: [Status] = [
        .createdGroup, .runningGroup, .running, .errorGroup, .interrupted, .exception, .broken,
        .finishedGroup, .suspended, .completed,
    ]

    private static let builtinsByName: [String: Status] = Dictionary(uniqueKeysWithValues: builtins.map { ($0.name, $0) })

    /// `{"value": ..., "name": ...}` as `track`'s `FileProtocol` writes a status.
    public var trackJSON: Value { .object(["value": .int(Int64(value)), "name": .string(name)]) }

    /// Reads `{"name": ..., "value": ...}` (either may be missing, not both), or a bare name or value.
    public init(trackJSON value: Value) throws(ModelError) {
        switch value {
        case .string(let name):
            self = Status.named(name)
        case .int(let v):
            guard let builtin = Status.builtin(value: Int(v)) else {
                throw ModelError(.malformedObject, "status value \(v) is not a built-in status; give a custom status as {\"name\": ..., \"value\": \(v)}")
            }
            self = builtin
        case .object(let fields):
            let name = fields["name"]?.stringValue
            let number = fields["value"]?.intValue.map { Int($0) }
            if let name {
                self = Status.named(name, value: number ?? 0)
            } else if let number, let builtin = Status.builtin(value: number) {
                self = builtin
            } else {
                throw ModelError(.malformedObject, "a status needs a string 'name' (and a 'value' for a custom one), got \(value)")
            }
        default:
            throw ModelError(.malformedObject, "a status is {\"name\": ..., \"value\": ...}, got \(value)")
        }
    }

    public var description: String { "\(name)(\(value))" }
}
