import PostgresNIO
import TrackModel

/// Translates the conditions of a `Query` that map onto columns into SQL (`WHERE` text and its
/// bindings). The SQL only narrows the rows read: the whole query is still evaluated in Swift on
/// them, so a condition translated here must select every row the Swift evaluation would select
/// (it may select more). Conditions that do not map are left to Swift.
struct SQLPushdown {
    /// How an attribute is stored.
    enum Column {
        /// A text column (nullable or not).
        case text(String, nullable: Bool)
        /// An integer column.
        case integer(String)
        /// A trial's status: `status_name` and `status_value`.
        case status
        /// An object inside the JSON body (`metadata`, `parameters`, `tags`).
        case json
    }

    /// The conditions translated, to be joined with AND.
    private(set) var clauses: [String] = []
    /// Their bindings.
    private(set) var binds = PostgresBindings()
    private var count = 0

    /// The `WHERE` text (`TRUE` when nothing was translated).
    var condition: String { clauses.isEmpty ? "TRUE" : clauses.joined(separator: " AND ") }

    /// How text is ordered in code point order: PostgreSQL compares by the database's collation
    /// unless told `COLLATE "C"`; CockroachDB compares bytes (code point order) already and
    /// refuses to compare a collated string with an uncollated one.
    private let codePointOrder: String

    /// The translatable conditions of `query` over a table whose attributes are `columns`;
    /// `cockroach`: the server is CockroachDB.
    init(_ query: Query, columns: [String: Column], cockroach: Bool = false) {
        codePointOrder = cockroach ? "" : " COLLATE \"C\""
        for c in query.conditions {
            guard let column = columns[c.path[0]] else { continue }
            if let clause = translate(c, column) { clauses.append(clause) }
        }
    }

    private mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T) -> String {
        count += 1
        binds.append(value)
        return "$\(count)"
    }

    private static func allStrings(_ v: Value) -> [String]? {
        guard let items = v.arrayValue else { return nil }
        let strings = items.compactMap(\.stringValue)
        return strings.count == items.count ? strings : nil
    }

    private static func number(_ v: Value) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d.isNaN ? nil : d
        default: return nil
        }
    }

    private mutating func translate(_ c: Query.Condition, _ column: Column) -> String? {
        let op = c.operator
        switch column {
        case .text(let name, let nullable):
            guard c.path.count == 1 else { return nil }
            if op == .exists, let wanted = c.operand.boolValue { return wanted ? "\(name) IS NOT NULL" : "\(name) IS NULL" }
            if op == .equal, c.operand.isNull { return nullable ? "\(name) IS NULL" : "FALSE" }
            if op == .oneOf, let list = Self.allStrings(c.operand) { return "\(name) = ANY(\(bind(list))::TEXT[])" }
            guard let s = c.operand.stringValue else { return nil }
            switch op {
            case .equal: return "\(name) = \(bind(s))"
            case .notEqual: return "(\(name) IS NULL OR \(name) <> \(bind(s)))"
            // Code point order, as Swift compares (the database's collation may differ).
            case .less: return "\(name)\(codePointOrder) < \(bind(s))"
            case .lessOrEqual: return "\(name)\(codePointOrder) <= \(bind(s))"
            case .greater: return "\(name)\(codePointOrder) > \(bind(s))"
            case .greaterOrEqual: return "\(name)\(codePointOrder) >= \(bind(s))"
            case .oneOf, .exists: return nil
            }
        case .integer(let name):
            guard c.path.count == 1 else { return nil }
            if op == .oneOf, let items = c.operand.arrayValue {
                let numbers = items.compactMap(Self.number)
                guard numbers.count == items.count else { return nil }
                return "\(name)::FLOAT8 = ANY(\(bind(numbers))::FLOAT8[])"
            }
            guard let x = Self.number(c.operand) else { return nil }
            switch op {
            case .equal: return "\(name)::FLOAT8 = \(bind(x))"
            case .notEqual: return "\(name)::FLOAT8 <> \(bind(x))"
            case .less: return "\(name)::FLOAT8 < \(bind(x))"
            case .lessOrEqual: return "\(name)::FLOAT8 <= \(bind(x))"
            case .greater: return "\(name)::FLOAT8 > \(bind(x))"
            case .greaterOrEqual: return "\(name)::FLOAT8 >= \(bind(x))"
            case .oneOf, .exists: return nil
            }
        case .status:
            // `status` itself compares with Python's `str(status)` (`Status.pythonString`): the
            // stored names giving that string; `status.name` and `status.value` the fields.
            if c.path.count == 1 {
                switch op {
                case .equal:
                    guard let text = c.operand.stringValue else { return "FALSE" }
                    return "status_name = ANY(\(bind(Status.names(withPythonString: text)))::TEXT[])"
                case .oneOf:
                    guard let items = c.operand.arrayValue else { return nil }
                    let names = items.compactMap(\.stringValue).flatMap(Status.names(withPythonString:))
                    return "status_name = ANY(\(bind(names))::TEXT[])"
                default:
                    return nil
                }
            }
            let byName = c.path == ["status", "name"] ? c.operand.stringValue : nil
            let byValue: Int64? = {
                if c.path == ["status", "value"], case .int(let i) = c.operand { return i }
                return nil
            }()
            switch op {
            case .equal:
                if let byName { return "status_name = \(bind(byName))" }
                if let byValue { return "status_value = \(bind(byValue))" }
            case .notEqual:
                if let byName { return "status_name <> \(bind(byName))" }
                if let byValue { return "status_value <> \(bind(byValue))" }
            case .oneOf:
                if c.path == ["status", "name"], let list = Self.allStrings(c.operand) {
                    return "status_name = ANY(\(bind(list))::TEXT[])"
                }
            default: break
            }
            return nil
        case .json:
            // A value inside `attrs` (the queryable objects as JSONB, non-finite numbers
            // replaced: NaN by null, ±Infinity by the largest finite double of its sign).
            // Paths and strings with a NUL character (stored as U+FFFD) are left to Swift.
            guard c.path.count >= 2, !c.path.contains(where: { $0.unicodeScalars.contains("\u{0}") }),
                  !(c.operand.stringValue?.unicodeScalars.contains("\u{0}") ?? false) else { return nil }
            let path = bind(c.path)
            let at = "(attrs #> \(path)::TEXT[])"
            let text = "(attrs #>> \(path)::TEXT[])"
            let kind = "jsonb_typeof\(at)"
            switch op {
            case .exists:
                // A NaN is present in Swift but null here: `true` keeps nulls, `false` keeps them too.
                guard let wanted = c.operand.boolValue else { return nil }
                return wanted ? "\(at) IS NOT NULL" : "(\(at) IS NULL OR \(kind) = 'null')"
            case .equal:
                if let s = c.operand.stringValue { return "\(at) = to_jsonb(\(bind(s))::TEXT)" }
                if let x = Self.number(c.operand), x.isFinite {
                    // Numbers equal across int and double, and true == 1 in Python's sense.
                    return "(CASE WHEN \(kind) = 'number' THEN \(text)::FLOAT8 = \(bind(x)) ELSE \(kind) = 'boolean' END)"
                }
                return nil
            case .less, .lessOrEqual, .greater, .greaterOrEqual:
                let sqlOp = [Query.Operator.less: "<", .lessOrEqual: "<=", .greater: ">", .greaterOrEqual: ">="][op]!
                if let x = Self.number(c.operand), x.isFinite {
                    return "(CASE WHEN \(kind) = 'number' THEN \(text)::FLOAT8 \(sqlOp) \(bind(x)) ELSE FALSE END)"
                }
                if let s = c.operand.stringValue {
                    return "(CASE WHEN \(kind) = 'string' THEN \(text)\(codePointOrder) \(sqlOp) \(bind(s)) ELSE FALSE END)"
                }
                return nil
            case .notEqual, .oneOf:
                return nil
            }
        }
    }

    /// The attributes of a trial that map onto `track_trials`.
    static let trialColumns: [String: Column] = [
        "uid": .text("uid", nullable: false), "hash": .text("hash", nullable: false), "_hash": .text("hash", nullable: false), "revision": .integer("revision"),
        "name": .text("name", nullable: true), "project_id": .text("project_id", nullable: true),
        "group_id": .text("group_id", nullable: true), "status": .status,
        "metadata": .json, "parameters": .json, "tags": .json,
    ]

    /// The attributes of a group that map onto `track_groups`.
    static let groupColumns: [String: Column] = [
        "uid": .text("uid", nullable: false), "_uid": .text("uid", nullable: false), "name": .text("name", nullable: false),
        "project_id": .text("project_id", nullable: false), "metadata": .json,
    ]

    /// The attributes of a project that map onto `track_projects` (its uid is its name).
    static let projectColumns: [String: Column] = [
        "uid": .text("uid", nullable: false), "name": .text("uid", nullable: false), "metadata": .json,
    ]
}
