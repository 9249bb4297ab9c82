import Synchronization
import TrackModel

/// Options every backend URI may carry.
public enum BackendOptions {
    /// `?strict=true|false` (default true): whether references to missing projects and groups are refused.
    public static func strict(_ uri: TrackURI) throws -> Bool {
        switch uri.option("strict")?.lowercased() {
        case nil, "true", "1", "yes": return true
        case "false", "0", "no": return false
        case let other?:
            throw TrackError(.invalidArgument, "option strict=\(other) in '\(uri)' is not true or false")
        }
    }
}

/// Makes backends from URIs: a scheme maps to a factory. `ephemeral` (in memory), `file` (the
/// event log, also for a bare path) and `pickled` (one snapshot file) are built in; other modules (the socket client, SQL)
/// register their schemes.
public final class BackendRegistry: Sendable {
    /// Makes a backend for a parsed URI.
    public typealias Factory = @Sendable (TrackURI) throws -> any TrackProtocol

    /// The registry `register(scheme:factory:)` and `makeBackend(uri:)` use.
    public static let shared = BackendRegistry()

    private let factories: Mutex<[String: Factory]>

    /// A registry knowing only the built-in schemes.
    public init() {
        factories = Mutex([
            "ephemeral": { uri in try MemoryBackend(uri: uri) },
            "file": { uri in try EventLogBackend(uri: uri) },
            "pickled": { uri in try PickledBackend(uri: uri) },
        ])
    }

    /// Schemes whose backends live in modules this one cannot depend on, and the call that
    /// registers them: named in the error for such a scheme when it was not registered.
    static let providedElsewhere: [String: (module: String, register: String)] = [
        "cockroach": ("TrackSQL", "registerSQLBackend"), "postgres": ("TrackSQL", "registerSQLBackend"),
        "postgresql": ("TrackSQL", "registerSQLBackend"), "socket": ("TrackServer", "registerSocketBackend"),
    ]

    /// Registers (or replaces) the factory for `scheme` (case-insensitive).
    public func register(scheme: String, factory: @escaping Factory) {
        factories.withLock { $0[scheme.lowercased()] = factory }
    }

    /// The registered schemes, sorted.
    public var schemes: [String] { factories.withLock { $0.keys.sorted() } }

    /// A backend for `uri`. A URI without a scheme is a `file` path. Throws `invalidArgument` for
    /// a malformed URI and `unknownScheme` (listing the known schemes) for an unregistered one.
    public func makeBackend(uri text: String) throws -> any TrackProtocol {
        let uri: TrackURI
        do { uri = try TrackURI(text) } catch { throw TrackError(error) }
        let scheme = uri.scheme.isEmpty ? "file" : uri.scheme
        guard let factory = factories.withLock({ $0[scheme] }) else {
            let hint = Self.providedElsewhere[scheme].map { " (import \($0.module) and call \($0.register)() first)" } ?? ""
            throw TrackError(.unknownScheme, "no backend for scheme '\(scheme)' in '\(uri)'\(hint); known schemes: \(schemes.map { "\($0)://" }.joined(separator: ", "))")
        }
        do {
            return try factory(uri)
        } catch {
            throw TrackError.wrap(error)
        }
    }

    /// One backend for one URI, or a `Multiplexer` writing to all of them.
    public func makeBackend(uris: [String]) throws -> any TrackProtocol {
        guard !uris.isEmpty else { throw TrackError(.invalidArgument, "no backend URI given") }
        if uris.count == 1 { return try makeBackend(uri: uris[0]) }
        return Multiplexer(try uris.map { try makeBackend(uri: $0) }, names: uris.map { (try? TrackURI($0))?.description ?? $0 })
    }
}

/// Registers (or replaces) the backend factory for `scheme` in the shared registry.
public func register(scheme: String, factory: @escaping BackendRegistry.Factory) {
    BackendRegistry.shared.register(scheme: scheme, factory: factory)
}

/// A backend for `uri` from the shared registry (`ephemeral://`, and the schemes other modules register).
public func makeBackend(uri: String) throws -> any TrackProtocol {
    try BackendRegistry.shared.makeBackend(uri: uri)
}
