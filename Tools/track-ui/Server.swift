import Foundation
import Hummingbird
import ServiceLifecycle
import Synchronization
import TrackModel
import TrackServer

/// Who may read: everyone on a loopback address; elsewhere, the users of a users file (HTTP
/// Basic authentication, the same file and password hashes as track-server), each seeing only
/// the projects the access rules grant.
final class Gate: Sendable {
    let users: UserStore?
    let access: (any AccessPolicy)?
    /// Credentials checked once (a password derivation takes a while), by their header value.
    private let accepted = Mutex<[String: String]>([:])

    init(users: UserStore?, access: (any AccessPolicy)?) {
        self.users = users
        self.access = access
    }

    /// The user a request authenticates as; "" when no users file is in force; nil when it is
    /// refused.
    func user(_ request: Request) -> String? {
        guard let users else { return "" }
        guard let header = request.headers[.authorization], header.hasPrefix("Basic ") else { return nil }
        if let known = accepted.withLock({ $0[header] }) { return known }
        guard let data = Data(base64Encoded: String(header.dropFirst(6))), let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else { return nil }
        let name = String(text[..<colon]), password = String(text[text.index(after: colon)...])
        guard users.check(user: name, password: password) else { return nil }
        accepted.withLock { cache in
            if cache.count > 1000 { cache.removeAll() }
            cache[header] = name
        }
        return name
    }

    /// Whether `user` may see the project `project`.
    func visible(_ user: String) -> @Sendable (String) -> Bool {
        guard let access, users != nil else { return { _ in true } }
        return { project in access.may(user, use: project) }
    }
}

/// Refuses requests without valid credentials when a users file is in force.
struct GateMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let gate: Gate

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard gate.user(request) != nil else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"track-ui\", charset=\"UTF-8\"", .contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "log in with a user of the users file (see track-server add-user)\n")))
        }
        return try await next(request, context)
    }
}

/// The files the page loads, read once at start.
struct Assets: Sendable {
    var files: [String: (type: String, bytes: ByteBuffer)] = [:]

    /// Debian's libjs-dygraphs, from `directory` or where the package puts it.
    init(dygraphs directory: String?) throws {
        let candidates = directory.map { [$0] } ?? ["/usr/share/javascript/dygraphs"]
        guard let found = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0 + "/dygraph.min.js") }) else {
            throw UIError("dygraphs (the charting library) is not in \(candidates.joined(separator: ", ")): install Debian's libjs-dygraphs (apt-get install libjs-dygraphs), or give --dygraphs DIR, the folder holding dygraph.min.js and dygraph.min.css")
        }
        for (name, type) in [("dygraph.min.js", "text/javascript; charset=utf-8"), ("dygraph.min.css", "text/css; charset=utf-8")] {
            guard let data = FileManager.default.contents(atPath: "\(found)/\(name)") else { throw UIError("cannot read \(found)/\(name)") }
            files[name] = (type, ByteBuffer(bytes: data))
        }
        files["app.js"] = ("text/javascript; charset=utf-8", ByteBuffer(string: Page.script))
        files["app.css"] = ("text/css; charset=utf-8", ByteBuffer(string: Page.style))
    }
}

/// An error the tool reports in one line.
struct UIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The routes: the page, its assets, the JSON API and the event stream. Everything is read-only.
func makeRouter(store: RunStore, gate: Gate, assets: Assets, title: String) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: GateMiddleware(gate: gate))
    let page = ByteBuffer(string: Page.html(title: title))
    router.get("/") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: page))
    }
    router.get("assets/:name") { _, context in
        guard let name = context.parameters.get("name"), let file = assets.files[name] else { return Response(status: .notFound) }
        return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "max-age=3600"], body: .init(byteBuffer: file.bytes))
    }
    router.get("api/info") { _, _ in
        let damage = store.damage
        return json(["database": .string(store.database), "version": .int(Int64(store.version)), "damage": .int(Int64(damage.count)),
                     "damageText": damage.first.map { .string("\($0.path): \($0.message)") } ?? .null])
    }
    router.get("api/projects") { request, _ in
        json(store.projects(visible: gate.visible(gate.user(request) ?? "")))
    }
    router.get("api/runs") { request, _ in
        let parameters = request.uri.queryParameters
        var query: Query?
        if let text = parameters["where"].map(String.init), !text.trimmingCharacters(in: .whitespaces).isEmpty {
            do { query = try Query(json: text) } catch { return problem(.badRequest, "the query \(text) is not track's query language: \(error)") }
        }
        do {
            return json(try store.runs(query: query, project: parameters["project"].map(String.init).flatMap { $0.isEmpty ? nil : $0 },
                                       group: parameters["group"].map(String.init).flatMap { $0.isEmpty ? nil : $0 },
                                       visible: gate.visible(gate.user(request) ?? "")))
        } catch {
            return problem(.badRequest, "the query cannot be applied: \(error)")
        }
    }
    router.get("api/runs/:uid") { request, context in
        guard let uid = context.parameters.get("uid"), let run = store.run(uid, visible: gate.visible(gate.user(request) ?? "")) else {
            return problem(.notFound, "no run \(context.parameters.get("uid") ?? "")")
        }
        return json(run)
    }
    router.get("api/series") { request, _ in
        let parameters = request.uri.queryParameters
        guard let trial = parameters["trial"].map(String.init), let metric = parameters["metric"].map(String.init) else {
            return problem(.badRequest, "give trial=UID&metric=NAME")
        }
        guard let x = XAxis(rawValue: parameters["x"].map(String.init) ?? "step") else { return problem(.badRequest, "x is step or time") }
        let width = min(10_000, max(1, parameters["width"].flatMap { Int($0) } ?? 1000))
        guard let text = store.series(trial: trial, metric: metric, x: x, width: width, visible: gate.visible(gate.user(request) ?? "")) else {
            return problem(.notFound, "run \(trial) has no metric \(metric)")
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
    router.get("api/events") { _, _ in
        let (id, events) = store.subscribe()
        let version = store.version
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 1000\ndata: {\"version\":\(version),\"trials\":[],\"series\":[]}\n\n"))
            // The stream never ends by itself: a graceful shutdown (SIGINT, SIGTERM) ends it, or
            // the server would wait for the page forever.
            try await withGracefulShutdownHandler {
                for await text in events {
                    // An empty text is a heartbeat: a comment line, which also finds pages that left.
                    try await writer.write(ByteBuffer(string: text.isEmpty ? ": alive\n\n" : "data: \(text)\n\n"))
                }
            } onGracefulShutdown: {
                store.unsubscribe(id)
            }
            try await writer.finish(nil)
        })
    }
    return router
}

private func json(_ value: Value) -> Response {
    Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: JSON.encode(value))))
}

private func problem(_ status: HTTPResponse.Status, _ message: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: JSON.encode(["error": .string(message)]))))
}
