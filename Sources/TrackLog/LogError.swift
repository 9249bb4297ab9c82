/// The one error type of the event log: a code, a message that says what is wrong and how it may
/// be remedied, and where (file and byte offset) when it concerns a file.
public struct LogError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable {
        /// A system call failed (`errno` says which error: ENOSPC, EIO, ...).
        case io
        /// A frame failed its checksum or is malformed, and it is not the tail of its segment.
        case corruptFrame
        /// A segment or index file header is damaged or of an unknown format version.
        case corruptFile
        /// Event bytes that cannot be decoded.
        case malformedEvent
        /// The stream is held by another live writer.
        case streamLocked
        /// An argument is out of range (a name too long, a bad option).
        case invalidArgument
        /// The writer failed earlier (the first error is the cause) or was closed.
        case writerUnavailable
        /// The path is not an event-log database.
        case notADatabase
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, and how it may be remedied.
    public var message: String
    /// The file concerned, if any.
    public var path: String?
    /// The byte offset in `path`, if known.
    public var offset: Int64?
    /// The `errno` of a failed system call.
    public var errno: Int32?

    /// An error of `code`.
    public init(_ code: Code, _ message: String, path: String? = nil, offset: Int64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    public var description: String {
        var text = message
        if let path { text += " [\(path)\(offset.map { " at byte \($0)" } ?? "")]" }
        return text
    }
}
