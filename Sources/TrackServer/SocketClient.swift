import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TrackBackends
import TrackModel

/// What the event loop reports to callers about pipelined requests.
final class PipelineState: Sendable {
    let value = Mutex<(pending: Int, firstError: TrackError?)>((0, nil))
    func withLock<T>(_ body: (inout (pending: Int, firstError: TrackError?)) -> T) -> T { value.withLock { body(&$0) } }
}

/// Collects replies in request order, fulfilling the waiting promises; replies to pipelined
/// requests are only checked for errors.
final class ClientHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    enum Waiter {
        case call(EventLoopPromise<Value>)
        /// This many pipelined requests, written together.
        case pipelined(Int)
    }

    /// Requests awaiting a reply, oldest first (from `head`). Callers append, the event loop
    /// takes; a caller appends and writes under one lock so the order matches the wire's.
    /// `closed` is set when the connection ends: a request made after that fails at once
    /// instead of waiting for a reply that cannot come.
    let waiters = Mutex<(items: [Waiter], head: Int, closed: Bool)>(([], 0, false))
    /// Written from the event loop, read by callers.
    let state: PipelineState
    /// Why the connection failed (a TLS handshake error, a reset), for the errors callers see.
    var failure: String?

    init(state: PipelineState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var payload = unwrapInboundIn(data)
        let waiter = waiters.withLock { w -> Waiter? in
            guard w.head < w.items.count else { return nil }
            let first = w.items[w.head]
            if case .pipelined(let n) = first, n > 1 {
                w.items[w.head] = .pipelined(n - 1)
            } else {
                w.head += 1
                if w.head > 1024 && w.head * 2 > w.items.count {
                    w.items.removeFirst(w.head)
                    w.head = 0
                }
            }
            return first
        }
        switch waiter {
        case .call(let promise):
            let bytes = payload.readBytes(length: payload.readableBytes) ?? []
            promise.succeed((try? JSON.decode(bytes)) ?? ProtocolRequests.failure("the server sent a reply that is not JSON"))
        case .pipelined:
            // The common reply is checked without parsing it.
            let ok = payload.readableBytesView.elementsEqual(nullReplyBytes)
            let reply: Value? = ok ? Optional<Value>.none : ((try? JSON.decode(payload.readBytes(length: payload.readableBytes) ?? [])) ?? ProtocolRequests.failure("the server sent a reply that is not JSON"))
            state.withLock { s in
                s.pending -= 1
                if let reply, reply["status"]?.intValue != 0, s.firstError == nil { s.firstError = SocketClient.error(from: reply, rpc: "pipelined call") }
            }
        case nil:
            break
        }
    }

    /// The error of a request on a closed connection.
    var closedError: TrackError { TrackError(.io, "the server closed the connection" + (failure.map { ": \($0)" } ?? "")) }

    func channelInactive(context: ChannelHandlerContext) {
        let closed = closedError
        let left = waiters.withLock { w -> [Waiter] in
            let rest = Array(w.items[w.head...])
            w = ([], 0, true)
            return rest
        }
        for waiter in left {
            if case .call(let promise) = waiter { promise.fail(closed) }
        }
        state.withLock { s in
            s.pending = 0
            if s.firstError == nil { s.firstError = closed }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if failure == nil { failure = error is NIOSSLError ? "TLS failed (\(error))" : "\(error)" }
        context.close(promise: nil)
    }
}

/// Pipelined requests encoded and not yet written: they go out together when 64 KiB have
/// gathered, before any request that waits for its reply, and at most 2 ms after the first.
struct Outgoing {
    var bytes: [UInt8] = []
    var count = 0
    var flushScheduled = false
    /// The encoded start of the last metric request, up to its value, and what it was for.
    var metricKey: (trial: String, name: String) = ("", "")
    var metricPrefix: [UInt8] = []
    static let flushBytes = 64 << 10
}

/// `Outgoing` behind a lock, shared with the flush timer.
final class OutgoingBox: Sendable {
    let value = Mutex(Outgoing())
}

/// The four bytes of `v`, little-endian.
func littleEndian(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)] }

/// The `socket://user:password@host:port` backend: every operation is a request to a
/// `track-server` (or Python `track`'s own server). Scalar metrics are pipelined: many points in
/// flight without a round trip each; an error among them is thrown by the next call.
public final class SocketClient: TrackProtocol, @unchecked Sendable {
    /// The server's address as given.
    public let uri: TrackURI
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let handler: ClientHandler
    private let state: PipelineState
    /// Trials this client has logged to successfully: their points are pipelined. The first
    /// point of any other trial waits for its reply, so a missing trial is an immediate error.
    private let confirmedTrials = Mutex<Set<String>>([])
    private let outgoing = OutgoingBox()
    /// False with the URI option `pipeline=false`: every metric waits for its reply, as a Python
    /// client's does.
    public let pipelining: Bool
    /// Pipelined requests allowed in flight before a call waits.
    public static let pipelinedMax = 65_536

    /// Connects to the server of `uri` and authenticates with its user and password.
    public init(uri: TrackURI) throws {
        self.uri = uri
        guard !uri.host.isEmpty, let port = uri.port else {
            throw TrackError(.invalidArgument, "the URI '\(uri)' needs a host and a port: socket://user:password@host:port")
        }
        switch uri.option("pipeline") {
        case nil, "true", "1": pipelining = true
        case "false", "0": pipelining = false
        case let other?: throw TrackError(.invalidArgument, "URI option pipeline=\(other) must be true or false")
        }
        let tls = try Self.tlsContext(uri)
        let serverHostname = uri.host.contains(":") || uri.host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : uri.host
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = PipelineState()
        self.state = state
        let handler = ClientHandler(state: state)
        self.handler = handler
        do {
            channel = try ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname)) }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(MessageDecoder(messageBytesMax: 1 << 30)))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: uri.host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw TrackError(.io, "cannot connect to \(uri.host):\(port): \(error)")
        }
        let reply: Value
        do {
            // Without credentials in the URI, nulls, as Python's client sends them.
            reply = try call("authenticate", ["username": uri.username.map(Value.string) ?? .null, "password": uri.password.map(Value.string) ?? .null])
        } catch let error as TrackError {
            // Every stored property is set, so deinit runs and closes the channel and the group
            // (closing them here as well scheduled work on a loop already shut down).
            throw TrackError(error.code, "cannot log in to \(uri.host):\(port): \(error.message)" + (tls == nil ? " (a server started with --tls-cert needs ?tls=true)" : ""))
        }
        guard reply["status"]?.intValue == 0 else {
            throw TrackError(.invalidArgument, uri.username == nil ? "the server refused a login without credentials: \(reply["error"]?.stringValue ?? "")"
                                                                  : "the server refused user '\(uri.username!)': \(reply["error"]?.stringValue ?? "")")
        }
    }

    /// The TLS context `uri`'s options ask for: `tls=true` turns TLS on, verifying the server
    /// against the system's trust roots, or against the PEM file `ca=PATH`; `verify=false`
    /// skips verification (for testing only). nil without `tls=true`.
    static func tlsContext(_ uri: TrackURI) throws -> NIOSSLContext? {
        switch uri.option("tls") {
        case nil, "false", "0": return nil
        case "true", "1": break
        case let other?: throw TrackError(.invalidArgument, "URI option tls=\(other) must be true or false")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let ca = uri.option("ca") {
            guard FileManager.default.isReadableFile(atPath: ca) else {
                throw TrackError(.invalidArgument, "URI option ca=\(ca): no readable PEM file there")
            }
            configuration.trustRoots = .file(ca)
        }
        switch uri.option("verify") {
        case nil, "true", "1": break
        case "false", "0": configuration.certificateVerification = .none
        case let other?: throw TrackError(.invalidArgument, "URI option verify=\(other) must be true or false")
        }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw TrackError(.invalidArgument, "cannot set up TLS for '\(uri)': \(error)")
        }
    }

    deinit {
        if channel.eventLoop.inEventLoop {
            channel.close(promise: nil)
            group.shutdownGracefully { _ in }
        } else {
            try? channel.close().wait()
            try? group.syncShutdownGracefully()
        }
    }

    /// The `TrackError` an error reply stands for (the server adds a `code` naming it).
    static func error(from reply: Value, rpc: String) -> TrackError {
        let message = reply["error"]?.stringValue ?? "the server refused \(rpc)"
        let code = reply["code"]?.stringValue.flatMap(TrackError.Code.init(rawValue:)) ?? .io
        return TrackError(code, message)
    }

    private func request(_ rpc: String, _ arguments: ValueObject) -> ByteBuffer {
        var object = arguments
        object["__rpc__"] = .string(rpc)
        return frame(.object(object), allocator: channel.allocator)
    }

    private func throwPipelinedError() throws {
        if let error = state.withLock({ s -> TrackError? in
            let e = s.firstError
            s.firstError = nil
            return e
        }) { throw error }
    }

    /// Sends one request and waits for its reply (earlier pipelined requests are answered first).
    func call(_ rpc: String, _ arguments: ValueObject) throws -> Value {
        let promise = channel.eventLoop.makePromise(of: Value.self)
        let buffer = request(rpc, arguments)
        outgoing.value.withLock { o in
            flush(&o)
            let open = handler.waiters.withLock { w -> Bool in
                if w.closed { return false }
                w.items.append(.call(promise))
                return true
            }
            if open { Self.write(buffer, on: channel) } else { promise.fail(handler.closedError) }
        }
        let reply = try promise.futureResult.wait()
        try throwPipelinedError()
        return reply
    }

    /// Writes the gathered pipelined requests. Called with `outgoing` locked.
    private func flush(_ o: inout Outgoing) { Self.flush(&o, channel: channel, handler: handler) }

    private static func flush(_ o: inout Outgoing, channel: Channel, handler: ClientHandler) {
        guard o.count > 0 else { return }
        let n = o.count
        handler.waiters.withLock { $0.items.append(.pipelined(n)) }
        var buffer = channel.allocator.buffer(capacity: o.bytes.count)
        buffer.writeBytes(o.bytes)
        write(buffer, on: channel)
        o.bytes.removeAll(keepingCapacity: true)
        o.count = 0
    }

    /// Writes `buffer` through the event loop's task queue, from any thread. Requests reach the
    /// wire in the order they were queued (under `outgoing`'s lock), and so in the order of
    /// `waiters`: `writeAndFlush` called on the loop itself (the flush timer) writes at once,
    /// ahead of writes other threads queued before it, which reordered pipelined requests.
    private static func write(_ buffer: ByteBuffer, on channel: Channel) {
        channel.eventLoop.execute { channel.writeAndFlush(NIOAny(buffer), promise: nil) }
    }

    /// Queues one encoded pipelined request (`encode` appends its frame).
    private func enqueue(_ encode: (inout Outgoing) -> Void) throws {
        try throwPipelinedError()
        while state.withLock({ $0.pending }) >= SocketClient.pipelinedMax {
            outgoing.value.withLock { flush(&$0) }
            usleep(100)
            try throwPipelinedError()
        }
        state.withLock { $0.pending += 1 }
        outgoing.value.withLock { o in
            encode(&o)
            o.count += 1
            if o.bytes.count >= Outgoing.flushBytes {
                flush(&o)
            } else if !o.flushScheduled {
                o.flushScheduled = true
                // Captures no SocketClient, so its deinit never runs on the event loop.
                let box = outgoing, channel = self.channel, handler = self.handler
                channel.eventLoop.scheduleTask(in: .milliseconds(2)) {
                    box.value.withLock { o in
                        o.flushScheduled = false
                        Self.flush(&o, channel: channel, handler: handler)
                    }
                }
            }
        }
    }

    /// Sends one request whose reply is only checked for an error, reported by a later call.
    func send(_ rpc: String, _ arguments: ValueObject) throws {
        var object = arguments
        object["__rpc__"] = .string(rpc)
        let text = JSON.encode(.object(object), pythonSeparators: true)
        try enqueue { o in
            o.bytes.append(contentsOf: littleEndian(UInt32(text.utf8.count + 4)))
            o.bytes.append(contentsOf: text.utf8)
        }
    }

    /// Sends one metric point, pipelined, encoded without building a request object.
    private func sendMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        try enqueue { o in
            if o.metricKey != (trial, name) || o.metricPrefix.isEmpty {
                o.metricKey = (trial, name)
                o.metricPrefix = Array("{\"__rpc__\": \"log_trial_metrics\", \"trial\": \(JSON.encode(.string(trial))), \(JSON.encode(.string(name))): ".utf8)
            }
            let start = o.bytes.count
            o.bytes.append(contentsOf: [0, 0, 0, 0])
            o.bytes.append(contentsOf: o.metricPrefix)
            o.bytes.append(contentsOf: (value.isFinite ? value.description : JSON.encode(.double(value))).utf8)
            o.bytes.append(contentsOf: ", \"step\": ".utf8)
            o.bytes.append(contentsOf: (step.map { String($0) } ?? "null").utf8)
            o.bytes.append(UInt8(ascii: "}"))
            let length = littleEndian(UInt32(o.bytes.count - start))
            for i in 0..<4 { o.bytes[start + i] = length[i] }
        }
    }

    private func value(_ rpc: String, _ arguments: ValueObject) throws -> Value {
        let reply = try call(rpc, arguments)
        guard reply["status"]?.intValue == 0 else { throw SocketClient.error(from: reply, rpc: rpc) }
        return reply["return"] ?? .null
    }

    private func project(_ v: Value) throws -> Project? {
        if v.isNull { return nil }
        var p = try Project(trackJSON: v)
        p.updateCount = Int(v["_update_count"]?.intValue ?? 0)
        return p
    }

    private func group(_ v: Value) throws -> TrialGroup? {
        if v.isNull { return nil }
        var g = try TrialGroup(trackJSON: v)
        g.updateCount = Int(v["_update_count"]?.intValue ?? 0)
        return g
    }

    private func trials(_ v: Value) throws -> [Trial] {
        try (v.arrayValue ?? []).map { try Trial(trackJSON: $0) }
    }

    /// An object the server must return: a null reply is a malformed reply, an error naming the
    /// operation (never a trap in the caller's process).
    private func required<T>(_ operation: String, _ object: T?) throws -> T {
        guard let object else {
            throw TrackError(.io, "the server's reply to \(operation) holds no object (\"return\": null); the server is not a track server, or it failed")
        }
        return object
    }

    // MARK: - TrackProtocol

    public func newProject(_ project: Project) throws -> Project {
        try required("new_project", try self.project(try value("new_project", ["project": project.trackJSON()])))
    }
    public func getProject(_ uid: String) throws -> Project? { try project(try value("get_project", ["project": .string(uid)])) }
    public func fetchProjects(_ query: Query) throws -> [Project] {
        try (try value("fetch_projects", ["query": query.trackJSON]).arrayValue ?? []).compactMap { try project($0) }
    }
    public func newTrialGroup(_ group: TrialGroup) throws -> TrialGroup {
        // A track server answers null for a group that exists (as Python's does): this API
        // returns the existing group then, as every backend does.
        if let created = try self.group(try value("new_trial_group", ["group": group.trackJSON])) { return created }
        return try required("new_trial_group", try getTrialGroup(group.uid))
    }
    public func getTrialGroup(_ uid: String) throws -> TrialGroup? { try group(try value("get_trial_group", ["group": .string(uid)])) }
    public func fetchGroups(_ query: Query) throws -> [TrialGroup] {
        try (try value("fetch_groups", ["query": query.trackJSON]).arrayValue ?? []).compactMap { try group($0) }
    }
    public func setGroupMetadata(_ group: String, _ metadata: ValueObject) throws {
        var arguments = metadata
        arguments["group"] = .string(group)
        _ = try value("set_group_metadata", arguments)
    }
    public func fetchAndUpdateGroup(_ query: Query, _ update: GroupUpdate) throws -> TrialGroup {
        guard case .setMetadata(let metadata) = update else { throw TrackError(.invalidArgument, "unsupported group update") }
        var arguments = metadata
        arguments["query"] = query.trackJSON
        arguments["attr"] = "set_group_metadata"
        return try required("fetch_and_update_group", try group(try value("fetch_and_update_group", arguments)))
    }
    public func newTrial(_ trial: Trial, autoIncrement: Bool) throws -> Trial? {
        let v = try value("new_trial", ["trial": trial.trackJSON, "auto_increment": .bool(autoIncrement)])
        return v.isNull ? nil : try Trial(trackJSON: v)
    }
    public func getTrial(hash: String) throws -> [Trial] { try trials(try value("get_trial", ["trial": .string(hash)])) }
    public func fetchTrials(_ query: Query) throws -> [Trial] { try trials(try value("fetch_trials", ["query": query.trackJSON])) }
    public func fetchAndUpdateTrial(_ query: Query, _ update: TrialUpdate) throws -> Trial {
        var arguments: ValueObject
        switch update {
        case .setStatus(let status, let error):
            arguments = ["attr": "set_trial_status", "status": status.trackJSON, "error": error.map(Value.string) ?? .null]
        case .logMetadata(let o): arguments = o; arguments["attr"] = "log_trial_metadata"
        case .addTags(let o): arguments = o; arguments["attr"] = "add_trial_tags"
        case .logArguments(let o): arguments = o; arguments["attr"] = "log_trial_arguments"
        case .incrementMetadata(let key, let by): arguments = ["attr": "increment_trial_metadata", "key": .string(key), "by": .int(by)]
        }
        arguments["query"] = query.trackJSON
        return try Trial(trackJSON: try value("fetch_and_update_trial", arguments))
    }
    public func addProjectTrial(project: String, trial: String) throws {
        _ = try value("add_project_trial", ["project": .string(project), "trial": .string(trial)])
    }
    public func addGroupTrial(group: String, trial: String) throws {
        _ = try value("add_group_trial", ["group": .string(group), "trial": .string(trial)])
    }
    public func logTrialStart(_ trial: String) throws { _ = try value("log_trial_start", ["trial": .string(trial)]) }
    public func logTrialFinish(_ trial: String) throws {
        _ = try value("log_trial_finish", ["trial": .string(trial), "exc_type": .null, "exc_val": .null, "exc_tb": .null])
    }
    public func logTrialChronoStart(_ trial: String, name: String) throws {
        _ = try value("log_trial_chrono_start", ["trial": .string(trial), "name": .string(name)])
    }
    public func logTrialChronoFinish(_ trial: String, name: String) throws {
        _ = try value("log_trial_chrono_finish", ["trial": .string(trial), "name": .string(name), "exc_type": .null, "exc_val": .null, "exc_tb": .null])
    }
    public func logTrialArguments(_ trial: String, _ arguments: ValueObject) throws {
        var a = arguments
        a["trial"] = .string(trial)
        _ = try value("log_trial_arguments", a)
    }
    public func logTrialMetadata(_ trial: String, _ metadata: ValueObject) throws {
        var a = metadata
        a["trial"] = .string(trial)
        _ = try value("log_trial_metadata", a)
    }
    private func logMetrics(_ trial: String, _ arguments: ValueObject) throws {
        if pipelining, confirmedTrials.withLock({ $0.contains(trial) }) {
            try send("log_trial_metrics", arguments)
        } else {
            _ = try value("log_trial_metrics", arguments)
            confirmedTrials.withLock { _ = $0.insert(trial) }
        }
    }
    public func logTrialMetrics(_ trial: String, step: MetricStep?, _ metrics: ValueObject) throws {
        var a = metrics
        a["trial"] = .string(trial)
        a["step"] = step?.value ?? .null
        try logMetrics(trial, a)
    }
    public func logTrialMetric(_ trial: String, name: String, step: Int64?, value: Double) throws {
        if pipelining, name != "trial", name != "step", name != "__rpc__", confirmedTrials.withLock({ $0.contains(trial) }) {
            return try sendMetric(trial, name: name, step: step, value: value)
        }
        try logMetrics(trial, ["trial": .string(trial), "step": step.map(Value.int) ?? .null, name: .double(value)])
    }
    public func addTrialTags(_ trial: String, _ tags: ValueObject) throws {
        var a = tags
        a["trial"] = .string(trial)
        _ = try value("add_trial_tags", a)
    }
    public func setTrialStatus(_ trial: String, _ status: Status, error: String?) throws {
        _ = try value("set_trial_status", ["trial": .string(trial), "status": status.trackJSON, "error": error.map(Value.string) ?? .null])
    }
    /// Waits for every pipelined request, then asks the server to make its backend durable.
    public func commit() throws { _ = try value("commit", [:]) }

    public func close() throws {
        try commit()
        try channel.close().wait()
    }
}

/// Registers the `socket` scheme with the shared backend registry, so that
/// `makeBackend(uri: "socket://user:password@host:port")` returns a `SocketClient`.
public func registerSocketBackend() {
    register(scheme: "socket") { uri in try SocketClient(uri: uri) }
}
