import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TrackBackends
import TrackModel

/// The limits of the server, each with a sensible default.
public struct ServerLimits: Sendable {
    /// The largest message accepted, length field included.
    public var messageBytesMax = 64 << 20
    /// Seconds a connection may stay silent before it is closed, and seconds one message may
    /// take to arrive whole.
    public var idleSecondsMax: Int64 = 300
    /// Connections served at once; more are closed at once.
    public var connectionsMax = 1024
    /// The largest message accepted before `authenticate` succeeds.
    public var unauthenticatedMessageBytesMax = 64 << 10
    /// Seconds a connection has to log in; then it is closed.
    public var loginSecondsMax: Int64 = 10
    /// Connections not yet logged in served at once (a smaller share of `connectionsMax`, so
    /// that idle connections never lock out users and new logins).
    public var unauthenticatedConnectionsMax = 64
    /// Of those, how many one client address may hold: one client cannot take every slot and
    /// lock others out of logging in.
    public var unauthenticatedConnectionsPerAddressMax = 8
    /// Reply bytes one connection may have waiting to be sent; past it the connection's requests
    /// wait (and it is not read further) until the client reads its replies.
    public var replyBytesQueuedMax = 8 << 20
    /// Logins (password key derivations) run at once, on threads of their own: a flood of
    /// logins never delays the requests of connected clients.
    public var loginsConcurrentMax = 1

    /// The default limits.
    public init() {}
}

/// Splits the byte stream into messages: a 4-byte little-endian length that counts itself, then
/// that many bytes less four. A length below 4 or above the limit is a protocol error, and so is
/// a message still incomplete `messageSecondsMax` after its first byte (a client trickling bytes
/// would otherwise never reach the idle timeout).
final class MessageDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let messageBytesMax: Int
    let messageSecondsMax: Int64?
    /// The connection, once it has logged in; before, `unauthenticatedBytesMax` applies.
    let state: ConnectionState?
    let unauthenticatedBytesMax: Int
    /// When the incomplete message at the front of the buffer began to arrive.
    private var partialSince: NIODeadline?

    init(messageBytesMax: Int, messageSecondsMax: Int64? = nil, state: ConnectionState? = nil, unauthenticatedBytesMax: Int = .max) {
        self.messageBytesMax = messageBytesMax
        self.messageSecondsMax = messageSecondsMax
        self.state = state
        self.unauthenticatedBytesMax = unauthenticatedBytesMax
    }

    private func incomplete() throws -> DecodingState {
        guard let messageSecondsMax else { return .needMoreData }
        let now = NIODeadline.now()
        guard let since = partialSince else { partialSince = now; return .needMoreData }
        if now - since > .seconds(messageSecondsMax) {
            throw ServerError("a message did not arrive whole within \(messageSecondsMax) s")
        }
        return .needMoreData
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return buffer.readableBytes == 0 ? .needMoreData : try incomplete()
        }
        guard length >= 4, Int(length) <= messageBytesMax else {
            throw ServerError("message length \(length) is outside 4...\(messageBytesMax) bytes")
        }
        if let state, !state.isAuthenticated, Int(length) > unauthenticatedBytesMax {
            throw ServerError("message length \(length) is over \(unauthenticatedBytesMax) bytes, the limit before authenticate succeeds")
        }
        guard buffer.readableBytes >= Int(length) else { return try incomplete() }
        partialSince = nil
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length) - 4)!))
        return .continue
    }
}

/// What the decoder and the handler of one connection share: whether it has logged in. Once it
/// has, it leaves the count of connections not logged in.
final class ConnectionState: Sendable {
    private let authenticated = Atomic<Bool>(false)
    private let released = Atomic<Bool>(false)
    private let release: @Sendable () -> Void

    /// `release` is called once, when the connection logs in or closes, whichever comes first.
    init(release: @escaping @Sendable () -> Void = {}) { self.release = release }

    /// True once `authenticate` has succeeded.
    var isAuthenticated: Bool { authenticated.load(ordering: .acquiring) }

    /// Marks the connection logged in.
    func markAuthenticated() {
        authenticated.store(true, ordering: .releasing)
        releaseOnce()
    }

    /// Leaves the count of connections not logged in (once).
    func releaseOnce() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { release() }
    }
}

/// Says why a connection is refused, once it is active, then closes it.
final class RefusingHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let message: String
    init(message: String) { self.message = message }

    func channelActive(context: ChannelHandlerContext) {
        let reply = frame(ProtocolRequests.failure(message), allocator: context.channel.allocator)
        context.writeAndFlush(NIOAny(reply)).whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

/// Encodes a reply as a length-prefixed message.
func frame(_ reply: Value, allocator: ByteBufferAllocator) -> ByteBuffer {
    var buffer = allocator.buffer(capacity: 64)
    appendFrame(reply, to: &buffer)
    return buffer
}

/// The success reply with no value, the most common one, pre-encoded.
let nullReply = ProtocolRequests.nullReply
let nullReplyBytes = Array(JSON.encode(nullReply, pythonSeparators: true).utf8)

/// Appends `reply` as a length-prefixed message.
func appendFrame(_ reply: Value, to buffer: inout ByteBuffer) {
    if reply == nullReply {
        buffer.writeInteger(UInt32(nullReplyBytes.count + 4), endianness: .little)
        buffer.writeBytes(nullReplyBytes)
        return
    }
    let text = JSON.encode(reply, pythonSeparators: true)
    buffer.writeInteger(UInt32(text.utf8.count + 4), endianness: .little)
    buffer.writeString(text)
}

/// Client addresses whose logins failed lately. Their login attempts, and those of any
/// connection that has failed one, run on a login pool of their own, so a password-guessing
/// flood never queues in front of a new client's login.
final class FailedLogins: Sendable {
    private let byAddress = Mutex<[String: Int]>([:])

    /// True when a login from `address` failed since its last success.
    func hasFailed(_ address: String) -> Bool { byAddress.withLock { $0[address] != nil } }

    /// Notes a failed (`ok` false) or successful login from `address`.
    func note(_ address: String, ok: Bool) {
        byAddress.withLock { counts in
            if ok { counts[address] = nil; return }
            // Bounded: many addresses cannot grow it without end.
            if counts.count >= 10_000 && counts[address] == nil { counts.removeAll() }
            counts[address, default: 0] += 1
        }
    }
}

/// One connection: collects the messages of each read burst, runs them as one batch on the
/// thread pool (backends block), and writes the batch's replies with one flush, in request order.
/// While more than `queuedBytesMax` bytes of requests wait, the connection is not read further;
/// a batch whose replies pass `replyBytesMax` is written in parts, each after the client has
/// taken the one before. A batch of a connection not logged in runs on the login pool, so that
/// password derivations never hold up other clients' requests; one from a connection or an
/// address whose login failed runs on the suspect pool, and a failed login's reply is held on a
/// timer (never on a thread) before the connection's next request is read.
final class ConnectionHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let dispatcher: RPCDispatcher
    let pool: NIOThreadPool
    let loginPool: NIOThreadPool
    let suspectPool: NIOThreadPool
    let failedLogins: FailedLogins
    let address: String
    let logger: Logger
    let state: ConnectionState
    let replyBytesMax: Int
    /// Touched only by the batch running now (batches of a connection run one after another).
    var session = Session()
    /// The previous batch: the next one runs after it, so replies keep their order.
    var tail: EventLoopFuture<Void>?
    /// Messages read since the last read burst ended. Event loop only.
    var batch: [[UInt8]] = []
    /// Bytes of requests read and not yet answered. Event loop only.
    var queuedBytes = 0
    static let queuedBytesMax = 16 << 20

    init(dispatcher: RPCDispatcher, pool: NIOThreadPool, loginPool: NIOThreadPool, suspectPool: NIOThreadPool, failedLogins: FailedLogins,
         address: String, state: ConnectionState, replyBytesMax: Int, logger: Logger) {
        self.dispatcher = dispatcher
        self.pool = pool
        self.loginPool = loginPool
        self.suspectPool = suspectPool
        self.failedLogins = failedLogins
        self.address = address
        self.state = state
        self.replyBytesMax = replyBytesMax
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var payload = unwrapInboundIn(data)
        let bytes = payload.readBytes(length: payload.readableBytes) ?? []
        queuedBytes += bytes.count + 4
        batch.append(bytes)
        if batch.count >= 4096 { submit(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        submit(context: context)
        context.fireChannelReadComplete()
    }

    /// Runs the collected messages as one batch after the previous one.
    private func submit(context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let messages = batch
        batch = []
        let size = messages.reduce(0) { $0 + $1.count + 4 }
        let loop = context.eventLoop
        let channel = context.channel
        if queuedBytes > Self.queuedBytesMax { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
        let previous = tail ?? loop.makeSucceededVoidFuture()
        tail = previous.flatMap { [self] () -> EventLoopFuture<Void> in
            run(messages[...], channel: channel, loop: loop).map {
                self.queuedBytes -= size
                if self.queuedBytes <= Self.queuedBytesMax / 2 { channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in } }
            }
        }
    }

    /// Answers `messages` in parts of at most about `replyBytesMax` reply bytes: each part is
    /// written, and the next one is only built once the client has taken it (the write completes).
    private func run(_ messages: ArraySlice<[UInt8]>, channel: Channel, loop: EventLoop) -> EventLoopFuture<Void> {
        guard !messages.isEmpty else { return loop.makeSucceededVoidFuture() }
        let threads = state.isAuthenticated ? pool
            : (session.failedLogins > 0 || failedLogins.hasFailed(address) ? suspectPool : loginPool)
        return threads.runIfActive(eventLoop: loop) { () -> (ByteBuffer, Int, Int) in
            var out = channel.allocator.buffer(capacity: 64 * messages.count)
            var answered = 0
            var delay = 0
            for message in messages {
                self.reply(to: message, into: &out)
                answered += 1
                if out.readableBytes >= self.replyBytesMax { break }
                // A failed login: its reply, and the next request, wait on a timer (not here).
                if self.session.loginFailureDelayMilliseconds > 0 {
                    delay = self.session.loginFailureDelayMilliseconds
                    self.session.loginFailureDelayMilliseconds = 0
                    self.failedLogins.note(self.address, ok: false)
                    break
                }
            }
            // No reply leaves before what it acknowledges is written (and fsynced, where
            // the backend is durable per call): one write for the whole part.
            do {
                try self.dispatcher.backend.persist()
            } catch {
                self.logger.error("could not write the changes of \(answered) requests: \(error)")
                out.clear()
                let failure = ProtocolRequests.failure("the server could not store the changes of this request: \(error)")
                for _ in 0..<answered { appendFrame(failure, to: &out) }
            }
            return (out, answered, delay)
        }.flatMap { (out, answered, delay) in
            let waited = delay > 0 ? loop.scheduleTask(in: .milliseconds(Int64(delay))) {}.futureResult : loop.makeSucceededVoidFuture()
            return waited.flatMap {
                channel.writeAndFlush(NIOAny(out)).flatMap {
                    self.run(messages.dropFirst(answered), channel: channel, loop: loop)
                }
            }
        }
    }

    /// The framed reply to one message, appended to `out`. Runs on the pool.
    private func reply(to bytes: [UInt8], into out: inout ByteBuffer) {
        appendFrame(dispatcher.reply(toMessage: bytes, session: &session), to: &out)
        if session.user != nil && !state.isAuthenticated {
            state.markAuthenticated()
            failedLogins.note(address, ok: true)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            logger.info("closing an idle connection")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A framing error: say why, then close (the stream can no longer be split into messages).
        logger.info("closing a connection: \(error)")
        let reply = frame(ProtocolRequests.failure("\(error); closing the connection"), allocator: context.channel.allocator)
        context.writeAndFlush(NIOAny(reply)).whenComplete { _ in context.close(promise: nil) }
    }
}

/// `track`'s socket protocol served over TCP with SwiftNIO (docs/FORMAT.md, "Socket protocol").
public final class SocketServer: @unchecked Sendable {
    /// The dispatcher every connection uses.
    public let dispatcher: RPCDispatcher
    /// The limits in force.
    public let limits: ServerLimits
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private let logger: Logger
    /// Not started, listening on a channel, or stopped for good: `start` and `stop` may come
    /// from different threads, and a second `stop` does nothing.
    private enum Lifecycle { case idle, starting, running(Channel), stopped }
    private let lifecycle = Mutex<Lifecycle>(.idle)
    /// Held through `start` and `stop`, so that a stop never shuts the event loops down under a
    /// bind in flight.
    private let startStop = NSLock()
    private let connections = Atomic<Int>(0)
    private let unauthenticated = Atomic<Int>(0)
    /// Per client address, its connections not logged in yet.
    private let unauthenticatedByAddress = Mutex<[String: Int]>([:])
    private let loginPool: NIOThreadPool
    private let suspectPool: NIOThreadPool
    private let failedLogins = FailedLogins()
    private let tls: NIOSSLContext?
    private let aesLayer: Bool

    /// A server over `dispatcher`; with `tls`, only TLS connections are accepted; with
    /// `aesLayer` (and no `tls`), only connections speaking Python track's weak AES layer
    /// (`AESLayer`).
    public init(dispatcher: RPCDispatcher, limits: ServerLimits = ServerLimits(), tls: NIOSSLContext? = nil, aesLayer: Bool = false,
                logger: Logger = Logger(label: "track-server")) {
        self.tls = tls
        self.aesLayer = aesLayer && tls == nil
        self.dispatcher = dispatcher
        self.limits = limits
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        loginPool = NIOThreadPool(numberOfThreads: max(1, limits.loginsConcurrentMax))
        loginPool.start()
        suspectPool = NIOThreadPool(numberOfThreads: 1)
        suspectPool.start()
    }

    /// Starts listening on `host`:`port` (0: any free port); returns the port bound.
    @discardableResult
    public func start(host: String, port: Int) throws -> Int {
        startStop.lock()
        defer { startStop.unlock() }
        try lifecycle.withLock { state throws(ServerError) in
            guard case .idle = state else { throw ServerError("the server was started or stopped already; make a new SocketServer") }
            state = .starting
        }
        let dispatcher = self.dispatcher, pool = self.pool, loginPool = self.loginPool, logger = self.logger, limits = self.limits, tls = self.tls
        let aesLayer = self.aesLayer
        let suspectPool = self.suspectPool, failedLogins = self.failedLogins
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                let open = connections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in self.connections.wrappingSubtract(1, ordering: .relaxed) }
                if open > limits.connectionsMax {
                    logger.warning("refusing a connection: \(open - 1) already open (limit \(limits.connectionsMax))")
                    return channel.close()
                }
                let waiting = unauthenticated.wrappingAdd(1, ordering: .relaxed).newValue
                let address = channel.remoteAddress?.ipAddress ?? "unknown"
                let fromAddress = unauthenticatedByAddress.withLock { counts -> Int in
                    counts[address, default: 0] += 1
                    return counts[address]!
                }
                let state = ConnectionState {
                    self.unauthenticated.wrappingSubtract(1, ordering: .relaxed)
                    self.unauthenticatedByAddress.withLock { counts in
                        let left = (counts[address] ?? 1) - 1
                        counts[address] = left > 0 ? left : nil
                    }
                }
                channel.closeFuture.whenComplete { _ in state.releaseOnce() }
                if fromAddress > limits.unauthenticatedConnectionsPerAddressMax {
                    logger.warning("refusing a connection from \(address): \(fromAddress - 1) of its connections have not logged in yet (limit \(limits.unauthenticatedConnectionsPerAddressMax) per address)")
                    let message = "too many connections from your address (\(address)) are waiting to log in (limit \(limits.unauthenticatedConnectionsPerAddressMax) per address); log in on the open ones or try again later"
                    return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RefusingHandler(message: message)) }
                }
                if waiting > limits.unauthenticatedConnectionsMax {
                    logger.warning("refusing a connection: \(waiting - 1) connections have not logged in yet (limit \(limits.unauthenticatedConnectionsMax))")
                    let message = "too many connections are waiting to log in (limit \(limits.unauthenticatedConnectionsMax)); try again later"
                    return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RefusingHandler(message: message)) }
                }
                // A connection that has not logged in within the deadline is closed.
                let deadline = channel.eventLoop.scheduleTask(in: .seconds(limits.loginSecondsMax)) {
                    guard !state.isAuthenticated, channel.isActive else { return }
                    logger.info("closing a connection that did not log in within \(limits.loginSecondsMax) s")
                    let reply = frame(ProtocolRequests.failure("not logged in within \(limits.loginSecondsMax) s; closing the connection"), allocator: channel.allocator)
                    channel.writeAndFlush(reply).whenComplete { _ in channel.close(promise: nil) }
                }
                channel.closeFuture.whenComplete { _ in deadline.cancel() }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    if aesLayer { try channel.pipeline.syncOperations.addHandler(AESLayerHandler(messageBytesMax: limits.messageBytesMax)) }
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .seconds(limits.idleSecondsMax)))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(MessageDecoder(
                        messageBytesMax: limits.messageBytesMax, messageSecondsMax: limits.idleSecondsMax,
                        state: state, unauthenticatedBytesMax: limits.unauthenticatedMessageBytesMax)))
                    try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                        dispatcher: dispatcher, pool: pool, loginPool: loginPool, suspectPool: suspectPool, failedLogins: failedLogins,
                        address: address, state: state, replyBytesMax: limits.replyBytesQueuedMax, logger: logger))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        let channel: Channel
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            lifecycle.withLock { $0 = .idle }
            throw SocketServer.bindError(error, host: host, port: port)
        }
        lifecycle.withLock { $0 = .running(channel) }
        let bound = channel.localAddress?.port ?? port
        logger.info("listening on \(host):\(bound)\(tls != nil ? " (TLS only)" : aesLayer ? " (AES layer only)" : "")")
        return bound
    }

    /// A listening failure in words: the common causes named, NIO's text kept for the rest.
    static func bindError(_ error: any Error, host: String, port: Int) -> ServerError {
        let address = "\(host):\(port)"
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE:
                return ServerError("cannot listen on \(address): the address is already in use (another track-server, or another program, listens there); choose another port, or port 0 for any free one")
            case EACCES:
                return ServerError("cannot listen on \(address): permission denied (ports below 1024 need privileges); choose a port of 1024 or more")
            case EADDRNOTAVAIL:
                return ServerError("cannot listen on \(address): no network interface of this machine has that address")
            default:
                break
            }
        }
        return ServerError("cannot listen on \(address): \(error)")
    }

    /// A TLS context serving the PEM certificate chain at `certificatePath` with the PEM private
    /// key at `keyPath`; the error names the file that could not be used.
    public static func tlsContext(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw ServerError("cannot read the TLS certificate '\(certificatePath)' (PEM expected): \(error)")
        }
        guard !chain.isEmpty else { throw ServerError("the TLS certificate file '\(certificatePath)' holds no certificate") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw ServerError("cannot read the TLS private key '\(keyPath)' (PEM expected): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw ServerError("the TLS certificate '\(certificatePath)' and key '\(keyPath)' cannot be used together: \(error)")
        }
    }

    /// Connections open now.
    public var openConnections: Int { connections.load(ordering: .relaxed) }

    /// Stops accepting, closes the listener, makes the backend durable and releases threads.
    public func stop() throws {
        startStop.lock()
        defer { startStop.unlock() }
        let previous = lifecycle.withLock { state -> Lifecycle in
            let previous = state
            state = .stopped
            return previous
        }
        switch previous {
        case .stopped: return
        case .running(let channel): try channel.close().wait()
        case .idle, .starting: break
        }
        // The batch running now finishes; batches not started are cancelled (their clients see
        // the connection close). Then everything applied is made durable.
        try pool.syncShutdownGracefully()
        try loginPool.syncShutdownGracefully()
        try suspectPool.syncShutdownGracefully()
        try dispatcher.backend.commit()
        try group.syncShutdownGracefully()
    }
}
