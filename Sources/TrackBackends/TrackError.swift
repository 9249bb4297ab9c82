import TrackModel

/// The one error type of the backend layer: a code to switch on, a message that says what is
/// wrong and how to fix it, and the error that caused it, if any.
public struct TrackError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// The project, group or trial does not exist, or a fetch-and-update matched nothing.
        case itemNotFound
        /// Strict mode: a group or trial points at a project or group that does not exist.
        case missingReference
        /// An update was based on a stale revision tag: another writer changed the object first.
        case concurrentWrite
        /// No backend is registered for the URI's scheme.
        case unknownScheme
        /// An argument is malformed: a URI, a query, a value that cannot be hashed.
        case invalidArgument
        /// One or more backends of a multiplexer failed (the others were still written).
        case backendFailure
        /// Reading or writing storage failed.
        case io
        /// The user may not read or change the object (a server's access control).
        case permissionDenied
    }

    /// The kind of failure.
    public var code: Code
    /// A whole sentence saying what went wrong and how it may be fixed.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?

    /// An error of `code`.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The backend-layer form of a model error.
    public init(_ error: ModelError) {
        switch error.code {
        case .notFound: self.init(.itemNotFound, error.message, cause: error)
        case .missingReference: self.init(.missingReference, error.message, cause: error)
        default: self.init(.invalidArgument, error.message, cause: error)
        }
    }

    /// `error` as a `TrackError` (model errors are converted, others wrapped as `io`).
    public static func wrap(_ error: any Error) -> TrackError {
        if let e = error as? TrackError { return e }
        if let e = error as? ModelError { return TrackError(e) }
        return TrackError(.io, "\(error)", cause: nil)
    }

    public var description: String { message }
}
