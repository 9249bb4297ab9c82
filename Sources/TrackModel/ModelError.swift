/// The one error type of `TrackModel`: what went wrong, with a message that says how to fix it.
public struct ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure, stable across versions so callers can switch on it.
    public enum Code: String, Sendable {
        /// JSON text that cannot be parsed.
        case malformedJSON
        /// An input that `track`'s `compute_hash` refuses (Python raises on it).
        case unhashableParameter
        /// A query with an unknown operator, a bad operand or an unknown attribute.
        case invalidQuery
        /// A URI that cannot be parsed.
        case malformedURI
        /// A serialized object (`dtype` trial, trial_group, project, statstream) with a missing or wrong field.
        case malformedObject
        /// A project, group or trial that does not exist (or a query that matched nothing).
        case notFound
        /// In strict mode: a group or trial pointing at a project or group that does not exist.
        case missingReference
        /// A value out of range: an increment that overflows, a step that is reserved, a string
        /// or record over a size limit.
        case invalidValue
    }

    /// The kind of failure.
    public var code: Code
    /// A whole sentence: what is wrong, with which input, and how it may be fixed.
    public var message: String

    /// Makes an error of `code` with `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
