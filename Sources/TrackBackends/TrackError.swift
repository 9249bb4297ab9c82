import TrackLog
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
        /// Stored data is damaged (a frame, a segment, a snapshot or a MANIFEST that does not read
        /// back); the cause names the file and offset.
        case damaged
        /// The store cannot take writes now: its writer stopped after an error or was closed, or
        /// another live process holds what it needs.
        case unavailable
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

    /// The backend-layer form of an event-log error: its code kept, the error as the cause.
    public init(_ error: LogError) {
        let code: Code
        switch error.code {
        case .io: code = .io
        case .corruptFrame, .corruptFile, .malformedEvent: code = .damaged
        case .streamLocked, .writerUnavailable: code = .unavailable
        case .invalidArgument, .notADatabase: code = .invalidArgument
        }
        self.init(code, error.description, cause: error)
    }

    /// `error` as a `TrackError`: model and event-log errors keep their kind and become the
    /// cause; anything else is wrapped as `io` with itself as the cause.
    public static func wrap(_ error: any Error) -> TrackError {
        if let e = error as? TrackError { return e }
        if let e = error as? ModelError { return TrackError(e) }
        if let e = error as? LogError { return TrackError(e) }
        return TrackError(.io, "\(error)", cause: error)
    }

    public var description: String { message }
}
