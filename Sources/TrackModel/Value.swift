import OrderedCollections

/// The fields of a JSON-like object, keys in insertion order (as Python dicts keep them).
public typealias ValueObject = OrderedDictionary<String, Value>

/// A JSON-like value as `track` stores it: parameters, metadata, tags and metric values.
///
/// Integers and doubles stay distinct (`1` and `1.0` hash differently in `track`), objects keep
/// their keys in insertion order, and doubles may be `NaN` or infinite (Python's `json` writes
/// them as `NaN`, `Infinity` and `-Infinity`).
public enum Value: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([Value])
    case object(ValueObject)
}

// MARK: - Equality

extension Value: Equatable {
    /// Structural equality: `int` and `double` differ (as in `track`'s hash), `NaN` equals `NaN`,
    /// objects compare key order too.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a.elements.elementsEqual(b.elements) { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }
}

extension Value: Hashable {
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(1); hasher.combine(b)
        case .int(let i): hasher.combine(2); hasher.combine(i)
        case .double(let d): hasher.combine(3); hasher.combine(d.isNaN ? Double.nan.bitPattern : d.bitPattern)
        case .string(let s): hasher.combine(4); hasher.combine(s)
        case .array(let a): hasher.combine(5); hasher.combine(a)
        case .object(let o):
            hasher.combine(6)
            for (k, v) in o { hasher.combine(k); hasher.combine(v) }
        }
    }
}

// MARK: - Literals

extension Value: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, Value)...) {
        var object = ValueObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

// MARK: - Accessors

extension Value {
    /// True for `.null`.
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// The string, if this is one.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// The boolean, if this is one.
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    /// The integer, if this is an `int` (or a `double` holding an exact integer).
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    /// The number as a double, if this is an `int` or a `double`.
    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// The elements, if this is an array.
    public var arrayValue: [Value]? { if case .array(let a) = self { return a } else { return nil } }

    /// The fields, if this is an object.
    public var objectValue: ValueObject? { if case .object(let o) = self { return o } else { return nil } }

    /// The field `key` of an object, or nil when this is not an object or has no such key.
    public subscript(key: String) -> Value? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// A short name of the kind of value, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "string"
        case .array: return "list"
        case .object: return "dict"
        }
    }
}

extension Value: CustomStringConvertible {
    /// The value as compact JSON.
    public var description: String { JSON.encode(self) }
}

extension Value {
    /// The value with every NaN and infinity, at any depth, as the strings "NaN", "Infinity" and
    /// "-Infinity": strict JSON (a browser's `JSON.parse`, `jq`) has no numbers for them.
    public var nonFiniteAsStrings: Value {
        switch self {
        case .double(let d) where !d.isFinite: return .string(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity")
        case .array(let a): return .array(a.map(\.nonFiniteAsStrings))
        case .object(let o):
            var out = ValueObject()
            for (k, v) in o { out[k] = v.nonFiniteAsStrings }
            return .object(out)
        default: return self
        }
    }
}
