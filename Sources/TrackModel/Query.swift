/// Something a `Query` can select: it names its attributes and returns their values.
public protocol QueryTarget {
    /// The attribute names a query may start a path with (`metadata`, `status`, ...).
    static var queryAttributeNames: [String] { get }
    /// What the target is called in error messages (`trial`, `trial group`, `project`).
    static var queryTypeName: String { get }
    /// The value of a top-level attribute, as `track` would serialize it; nil if there is no such attribute.
    func queryAttribute(_ name: String) -> Value?
    /// What a condition on the attribute itself (not a path into it) compares with, when that
    /// differs from the serialized attribute: Python compares a status by `str(status)`.
    func queryComparable(_ name: String) -> Value?
}

extension QueryTarget {
    /// By default a condition compares with the serialized attribute.
    public func queryComparable(_ name: String) -> Value? { nil }
}

/// `track`'s query language (`execute_query`): dotted attribute paths (`metadata.lr`,
/// `status.name`) mapped to a value (equality) or to one operator: `$in`, `$ne`, `$lte`, `$gt`
/// as in `track`, plus `$eq`, `$lt`, `$gte` and `$exists`. Every condition must hold.
///
/// A path through a missing key reads as null. Ordering operators hold only between two numbers
/// or two strings (a trial lacking the attribute is not selected, rather than failing the
/// query). A condition on `status` itself compares with `str(status)` as Python does: the
/// lowercase name of a built-in status (`"interrupted"`), the name of a custom one;
/// `status.name` and `status.value` reach the fields.
public struct Query: Sendable, Equatable, CustomStringConvertible {
    /// A comparison a condition applies.
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "$eq"
        case notEqual = "$ne"
        case oneOf = "$in"
        case less = "$lt"
        case lessOrEqual = "$lte"
        case greater = "$gt"
        case greaterOrEqual = "$gte"
        case exists = "$exists"
    }

    /// One constraint: the attribute at `path` compared by `operator` to `operand`.
    public struct Condition: Sendable, Equatable {
        /// The dotted path, split: `["metadata", "lr"]`.
        public var path: [String]
        /// The comparison.
        public var `operator`: Operator
        /// What the attribute is compared to.
        public var operand: Value

        /// A condition on the dotted `path` (as a string, `"metadata.lr"`).
        public init(_ path: String, _ op: Operator = .equal, _ operand: Value) {
            self.path = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            self.operator = op
            self.operand = operand
        }
    }

    /// The conditions, checked in order.
    public var conditions: [Condition]

    /// A query with these conditions; no conditions selects everything.
    public init(_ conditions: [Condition] = []) { self.conditions = conditions }

    /// The query that selects everything.
    public static let all = Query()

    /// Reads a query the way `track` takes one: an object of path to condition, or a list of
    /// `[path, condition]` pairs (to fix the order of evaluation). A condition that is an object
    /// with one `$`-key is an operator; any other value is compared for equality.
    public init(trackJSON value: Value) throws(ModelError) {
        var pairs: [(String, Value)] = []
        switch value {
        case .null: break
        case .object(let fields): pairs = fields.map { ($0.key, $0.value) }
        case .array(let items):
            for item in items {
                guard case .array(let pair) = item, pair.count == 2, let path = pair[0].stringValue else {
                    throw ModelError(.invalidQuery, "a query list holds [path, condition] pairs, got \(item)")
                }
                pairs.append((path, pair[1]))
            }
        default:
            throw ModelError(.invalidQuery, "a query is an object of attribute path to condition, got \(value.kindName) \(value)")
        }
        var conditions: [Condition] = []
        for (path, condition) in pairs {
            conditions.append(try Query.parseCondition(path: path, condition))
        }
        self.init(conditions)
    }

    /// Reads a query from JSON text (see `init(trackJSON:)`).
    public init(json text: String) throws(ModelError) {
        try self.init(trackJSON: try JSON.decode(text))
    }

    private static func parseCondition(path: String, _ condition: Value) throws(ModelError) -> Condition {
        guard !path.isEmpty, !path.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
            throw ModelError(.invalidQuery, "query path '\(path)' is empty or has an empty part; write it as 'attribute.key'")
        }
        guard case .object(let fields) = condition, fields.keys.contains(where: { $0.hasPrefix("$") }) else {
            return Condition(path, .equal, condition)
        }
        guard fields.count == 1, let (name, operand) = fields.elements.first.map({ ($0.key, $0.value) }) else {
            throw ModelError(.invalidQuery, "the condition on '\(path)' has \(fields.count) keys \(Array(fields.keys)); give exactly one operator per attribute")
        }
        guard let op = Operator(rawValue: name) else {
            let known = Operator.allCases.map(\.rawValue).joined(separator: ", ")
            throw ModelError(.invalidQuery, "unknown query operator '\(name)' on '\(path)'; known operators: \(known)")
        }
        switch op {
        case .oneOf:
            guard case .array = operand else {
                throw ModelError(.invalidQuery, "operator $in on '\(path)' needs a list, got \(operand.kindName) \(operand)")
            }
        case .exists:
            guard case .bool = operand else {
                throw ModelError(.invalidQuery, "operator $exists on '\(path)' needs true or false, got \(operand)")
            }
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard operand.doubleValue != nil || operand.stringValue != nil else {
                throw ModelError(.invalidQuery, "operator \(name) on '\(path)' needs a number or a string, got \(operand.kindName) \(operand)")
            }
        case .equal, .notEqual:
            break
        }
        return Condition(path, op, operand)
    }

    /// The query as `track` would send it: `{"path": value or {"$op": operand}}`.
    public var trackJSON: Value {
        var object = ValueObject()
        for c in conditions {
            let key = c.path.joined(separator: ".")
            object[key] = c.operator == .equal && !(c.operand.objectValue?.keys.contains { $0.hasPrefix("$") } ?? false)
                ? c.operand : .object([c.operator.rawValue: c.operand])
        }
        return .object(object)
    }

    public var description: String { JSON.encode(trackJSON) }

    /// Checks that every path starts with an attribute of `T`; throws an error naming the first
    /// unknown one and listing the known ones.
    public func validate<T: QueryTarget>(for type: T.Type) throws(ModelError) {
        for c in conditions where !T.queryAttributeNames.contains(c.path[0]) {
            throw ModelError(.invalidQuery, "a \(T.queryTypeName) has no attribute '\(c.path[0])' (query path '\(c.path.joined(separator: "."))'); known attributes: \(T.queryAttributeNames.joined(separator: ", "))")
        }
    }

    /// True when `target` meets every condition. Throws for an unknown attribute.
    public func matches<T: QueryTarget>(_ target: T) throws(ModelError) -> Bool {
        for c in conditions {
            guard let root = target.queryAttribute(c.path[0]) else {
                try validate(for: T.self)
                throw ModelError(.invalidQuery, "a \(T.queryTypeName) has no attribute '\(c.path[0])'")
            }
            if c.path.count == 1, let comparable = target.queryComparable(c.path[0]) {
                if !Query.evaluate(c.operator, comparable, present: true, c.operand) { return false }
                continue
            }
            var current: Value? = root
            for key in c.path.dropFirst() {
                current = current?[key]
                if current == nil { break }
            }
            if !Query.evaluate(c.operator, current ?? .null, present: current != nil, c.operand) { return false }
        }
        return true
    }

    static func evaluate(_ op: Operator, _ actual: Value, present: Bool, _ operand: Value) -> Bool {
        switch op {
        case .equal: return looselyEqual(actual, operand)
        case .notEqual: return !looselyEqual(actual, operand)
        case .oneOf: return operand.arrayValue?.contains { looselyEqual(actual, $0) } ?? false
        case .exists: return (present && !actual.isNull) == (operand.boolValue ?? true)
        case .less: return compare(actual, operand).map { $0 < 0 } ?? false
        case .lessOrEqual: return compare(actual, operand).map { $0 <= 0 } ?? false
        case .greater: return compare(actual, operand).map { $0 > 0 } ?? false
        case .greaterOrEqual: return compare(actual, operand).map { $0 >= 0 } ?? false
        }
    }

    /// Equality as Python's `==` sees JSON values: `1 == 1.0 == true`.
    static func looselyEqual(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.int, .double), (.double, .int), (.bool, .int), (.int, .bool), (.bool, .double), (.double, .bool):
            return numeric(a) == numeric(b)
        case let (.array(x), .array(y)):
            return x.count == y.count && zip(x, y).allSatisfy { looselyEqual($0, $1) }
        default:
            return a == b
        }
    }

    private static func numeric(_ v: Value) -> Double? {
        if case .bool(let b) = v { return b ? 1 : 0 }
        return v.doubleValue
    }

    /// -1, 0 or 1 between two numbers or two strings; nil otherwise.
    static func compare(_ a: Value, _ b: Value) -> Int? {
        if let x = a.doubleValue, let y = b.doubleValue {
            if x.isNaN || y.isNaN { return nil }
            return x < y ? -1 : (x > y ? 1 : 0)
        }
        if let x = a.stringValue, let y = b.stringValue { return x < y ? -1 : (x > y ? 1 : 0) }
        return nil
    }
}

// MARK: - Targets

extension Trial: QueryTarget {
    public static let queryAttributeNames = [
        "uid", "hash", "revision", "name", "description", "tags", "version", "group_id", "project_id",
        "parameters", "metadata", "metrics", "chronos", "status", "errors",
        // Python's getattr reaches the private field behind a property too.
        "_hash",
    ]
    public static var queryTypeName: String { "trial" }

    public func queryAttribute(_ name: String) -> Value? {
        switch name {
        case "uid": return .string(uid)
        case "hash", "_hash": return .string(hash)
        case "revision": return .int(Int64(revision))
        case "name": return self.name.map(Value.string) ?? .null
        case "description": return description.map(Value.string) ?? .null
        case "tags": return .object(tags)
        case "version": return version ?? .null
        case "group_id": return groupID.map(Value.string) ?? .null
        case "project_id": return projectID.map(Value.string) ?? .null
        case "parameters": return .object(parameters)
        case "status": return status.trackJSON
        case "errors": return .array(errors.map(Value.string))
        case "metadata", "metrics", "chronos": return trackJSON[name]
        default: return nil
        }
    }

    /// A condition on `status` compares with `str(status)`, as Python's does.
    public func queryComparable(_ name: String) -> Value? {
        name == "status" ? .string(status.pythonString) : nil
    }
}

extension TrialGroup: QueryTarget {
    public static let queryAttributeNames = ["uid", "name", "description", "metadata", "project_id", "trials", "_uid"]
    public static var queryTypeName: String { "trial group" }

    public func queryAttribute(_ name: String) -> Value? {
        switch name {
        case "uid", "_uid": return .string(uid)
        case "name": return .string(self.name)
        case "description": return description.map(Value.string) ?? .null
        case "metadata": return .object(metadata)
        case "project_id": return .string(projectID)
        case "trials": return .array(trials.map(Value.string))
        default: return nil
        }
    }
}

extension Project: QueryTarget {
    public static let queryAttributeNames = ["uid", "name", "description", "metadata", "groups", "trials"]
    public static var queryTypeName: String { "project" }

    public func queryAttribute(_ name: String) -> Value? {
        switch name {
        case "uid", "name": return .string(self.name)
        case "description": return description.map(Value.string) ?? .null
        case "metadata": return .object(metadata)
        case "groups": return .array(groups.map(Value.string))
        case "trials": return .array(trials.map(Value.string))
        default: return nil
        }
    }
}
