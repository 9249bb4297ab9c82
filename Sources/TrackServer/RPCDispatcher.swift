import TrackBackends
import TrackModel

/// What a connection has established: who is logged in.
public struct Session: Sendable {
    /// The authenticated user, nil before `authenticate` succeeds.
    public var user: String?
    /// Failed logins on this connection so far.
    public var failedLogins = 0
    /// Set by a failed `authenticate`: milliseconds to hold its reply, and the connection's next
    /// request, on a timer (slowing password guessing without holding a thread); the server
    /// resets it once it has waited.
    public var loginFailureDelayMilliseconds = 0

    /// A session before authentication.
    public init() {}
}

/// Checks a user name and password.
public protocol CredentialChecker: Sendable {
    /// True when `password` is `user`'s.
    func check(user: String, password: String) -> Bool
    /// Milliseconds the reply to a failed login of `user` should wait (after `check` said no).
    func failureDelayMilliseconds(user: String) -> Int
    /// True when a login without credentials (`username` and `password` null, as Python's
    /// client sends for a URI without them) is accepted.
    var acceptsAnonymous: Bool { get }
}

extension CredentialChecker {
    /// No delay.
    public func failureDelayMilliseconds(user: String) -> Int { 0 }
    /// No anonymous logins.
    public var acceptsAnonymous: Bool { false }
}

/// The user name of a login without credentials, where the server accepts them.
public let anonymousUser = "anonymous"

/// `track`'s socket protocol, without the socket: logins and per-user access over
/// `ProtocolRequests` (which turns one request into one reply by calling a backend).
/// docs/FORMAT.md, section "Socket protocol".
///
/// Differences from the original server, on purpose (see shared/data/README.md): credentials are
/// checked; `log_trial_finish` records the finish; `add_project_trial` and `add_group_trial` apply;
/// `get_trail` is answered like `get_trial`; an unknown operation gets an error naming it; errors
/// say what was wrong with which argument.
public struct RPCDispatcher: Sendable {
    /// The operations over the backend.
    public let requests: ProtocolRequests
    /// The backend every operation goes to.
    public var backend: any TrackProtocol { requests.backend }
    /// Who may log in.
    public let credentials: any CredentialChecker
    /// Who may use which project.
    public let access: any AccessPolicy
    private let trialProjects = TrialProjectCache()

    /// A dispatcher over `backend`. With a `UserStore` as credentials and no `access`, users
    /// use the projects they create (remembered in memory only) and those granted to them.
    public init(backend: any TrackProtocol, credentials: any CredentialChecker, access: (any AccessPolicy)? = nil) {
        requests = ProtocolRequests(backend: backend)
        self.credentials = credentials
        if let access {
            self.access = access
        } else if let users = credentials as? UserStore, let policy = try? ProjectAccess(users: users, ownersPath: nil) {
            self.access = policy
        } else {
            self.access = OpenAccess()
        }
    }

    private func check(_ user: String) -> AccessCheck {
        AccessCheck(user: user, policy: access, backend: backend, trialProjects: trialProjects)
    }

    /// The reply to one message's bytes (a message body, its length prefix removed): a
    /// one-metric `log_trial_metrics` read straight from the bytes, anything else decoded as JSON;
    /// bytes that are not UTF-8 or not JSON get an error reply. What the server runs for every
    /// message, and what the fuzz target `request` drives.
    public func reply(toMessage bytes: [UInt8], session: inout Session) -> Value {
        if let user = session.user, let reply = requests.replyToOneMetric(bytes, access: check(user)) { return reply }
        do {
            return handle(try ProtocolRequests.request(fromMessage: bytes), session: &session)
        } catch {
            return error.reply
        }
    }

    /// The reply to `request`.
    public func handle(_ request: Value, session: inout Session) -> Value {
        let rpc: String, fields: ValueObject
        do {
            (rpc, fields) = try ProtocolRequests.operation(of: request)
        } catch {
            return error.reply
        }
        if rpc == "authenticate" { return authenticate(fields, session: &session) }
        guard let user = session.user else {
            return ProtocolRequests.failure("not authenticated: the first request of a connection must be authenticate")
        }
        return requests.reply(rpc: rpc, fields: fields, access: check(user))
    }

    private func authenticate(_ fields: ValueObject, session: inout Session) -> Value {
        // Python's client sends nulls for a URI without credentials (socket://host:port).
        if (fields["username"] ?? .null).isNull && (fields["password"] ?? .null).isNull {
            guard credentials.acceptsAnonymous else {
                session.user = nil
                return ProtocolRequests.failure("this server checks credentials: give a user name and password, as socket://USER:PASSWORD@host:port",
                                                code: .invalidArgument)
            }
            session.user = anonymousUser
            return ProtocolRequests.success(ProtocolRequests.success(true))
        }
        guard let user = fields["username"]?.stringValue, let password = fields["password"]?.stringValue else {
            return ProtocolRequests.failure("authenticate needs string arguments \"username\" and \"password\" (or both null, on a server that accepts anonymous logins)")
        }
        guard credentials.check(user: user, password: password) else {
            session.user = nil
            session.failedLogins += 1
            // 100 ms per earlier failure of this user or on this connection, up to 2 s.
            session.loginFailureDelayMilliseconds = max(credentials.failureDelayMilliseconds(user: user),
                                                        min(2_000, 100 * (session.failedLogins - 1)))
            return ProtocolRequests.failure("authentication failed for user '\(user)'")
        }
        session.user = user
        // The Python client unwraps the reply once and keeps the inner object as its token.
        return ProtocolRequests.success(ProtocolRequests.success(true))
    }
}
