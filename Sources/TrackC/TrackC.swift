#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import TrackBackends
import TrackModel

// The C ABI over the engine (include/swift_track.h), for Python's ctypes and any C caller.
// Every function returns a status (0: done; otherwise an error whose message `st_last_error`
// gives on the same thread); no Swift error or trap crosses the boundary. Handles are opaque
// pointers to retained objects, released by `st_close` / `st_metric_free`.

/// The ABI version: a caller built for another version must refuse to go on.
let abiVersion: Int32 = 2

/// Status codes (include/swift_track.h).
enum Status: Int32 {
    case ok = 0
    case error = 1
    case invalidArgument = 2
    case notFound = 3
}

// MARK: - Per-thread error message

nonisolated(unsafe) private var errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private func fail(_ status: Status, _ message: String) -> Int32 {
    if let old = pthread_getspecific(errorKey) { free(old) }
    pthread_setspecific(errorKey, strdup(message))
    return status.rawValue
}

private func fail(_ error: any Error) -> Int32 {
    let wrapped = TrackError.wrap(error)
    switch wrapped.code {
    case .invalidArgument, .missingReference: return fail(.invalidArgument, wrapped.message)
    case .itemNotFound: return fail(.notFound, wrapped.message)
    default: return fail(.error, wrapped.message)
    }
}

/// Runs `body`, turning any error into a status and the thread's message.
private func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch {
        return fail(error)
    }
}

// MARK: - Handles

/// An open database: its backend and track's operations over it (no login: the caller owns
/// the database). Requests run concurrently; the backend does its own locking.
final class DatabaseHandle: Sendable {
    let backend: any TrackProtocol
    let requests: ProtocolRequests

    init(uri: String) throws {
        backend = try makeBackend(uri: uri)
        requests = ProtocolRequests(backend: backend)
    }

    func request(_ json: [UInt8]) -> Value {
        requests.reply(toMessage: json)
    }
}

/// A metric series of one trial: the backend's sink (the event log's allocation-free slot).
final class MetricHandle: @unchecked Sendable {  // the sink is used by one thread at a time, as the header says
    let sink: any MetricSink
    let database: DatabaseHandle
    init(sink: any MetricSink, database: DatabaseHandle) {
        self.sink = sink
        self.database = database
    }
}

private func database(_ pointer: UnsafeMutableRawPointer?) -> DatabaseHandle? {
    pointer.map { Unmanaged<DatabaseHandle>.fromOpaque($0).takeUnretainedValue() }
}

private func metric(_ pointer: UnsafeMutableRawPointer?) -> MetricHandle? {
    pointer.map { Unmanaged<MetricHandle>.fromOpaque($0).takeUnretainedValue() }
}

// MARK: - Functions

@_cdecl("st_abi_version")
public func st_abi_version() -> Int32 { abiVersion }

@_cdecl("st_last_error")
public func st_last_error() -> UnsafePointer<CChar>? {
    pthread_getspecific(errorKey).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
}

@_cdecl("st_free")
public func st_free(_ pointer: UnsafeMutableRawPointer?) { free(pointer) }

@_cdecl("st_open")
public func st_open(_ uri: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    guard let uri, let out else { return fail(.invalidArgument, "st_open needs a URI and a place for the handle") }
    return guarded {
        let handle = try DatabaseHandle(uri: String(cString: uri))
        out.pointee = Unmanaged.passRetained(handle).toOpaque()
    }
}

@_cdecl("st_close")
public func st_close(_ db: UnsafeMutableRawPointer?) -> Int32 {
    guard let db else { return fail(.invalidArgument, "st_close needs a database handle") }
    let handle = Unmanaged<DatabaseHandle>.fromOpaque(db)
    defer { handle.release() }
    return guarded { try handle.takeUnretainedValue().backend.close() }
}

@_cdecl("st_commit")
public func st_commit(_ db: UnsafeMutableRawPointer?) -> Int32 {
    guard let handle = database(db) else { return fail(.invalidArgument, "st_commit needs a database handle") }
    return guarded { try handle.backend.commit() }
}

/// One request of track's protocol (a JSON object naming its operation in `__rpc__`, the other
/// keys its arguments, as Python track's SocketClient sends them); `*reply` gets the reply's JSON
/// (`{"status": 0, "return": ...}` or `{"status": 1, "error": ...}`), to free with `st_free`.
@_cdecl("st_request")
public func st_request(_ db: UnsafeMutableRawPointer?, _ json: UnsafePointer<CChar>?, _ reply: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guard let handle = database(db), let json, let reply else { return fail(.invalidArgument, "st_request needs a database handle, a request and a place for the reply") }
    let bytes = Array(UnsafeRawBufferPointer(start: json, count: strlen(json)))
    let answer = handle.request(bytes)
    reply.pointee = strdup(JSON.encode(answer))
    if answer["status"]?.intValue != 0 { return fail(.error, answer["error"]?.stringValue ?? "the request failed") }
    return Status.ok.rawValue
}

@_cdecl("st_metric")
public func st_metric(_ db: UnsafeMutableRawPointer?, _ trial: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                      _ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32 {
    guard let handle = database(db), let trial, let name, let out else { return fail(.invalidArgument, "st_metric needs a database handle, a trial uid, a name and a place for the handle") }
    let sink = handle.backend.metricSink(trial: String(cString: trial), name: String(cString: name))
    out.pointee = Unmanaged.passRetained(MetricHandle(sink: sink, database: handle)).toOpaque()
    return Status.ok.rawValue
}

@_cdecl("st_metric_free")
public func st_metric_free(_ m: UnsafeMutableRawPointer?) {
    guard let m else { return }
    Unmanaged<MetricHandle>.fromOpaque(m).release()
}

/// Logs one point (`has_step` 0: without a step).
@_cdecl("st_metric_log")
public func st_metric_log(_ m: UnsafeMutableRawPointer?, _ step: Int64, _ hasStep: Int32, _ value: Double) -> Int32 {
    guard let handle = metric(m) else { return fail(.invalidArgument, "st_metric_log needs a metric handle") }
    do {
        try handle.sink.log(value, step: hasStep != 0 ? step : nil)
        return Status.ok.rawValue
    } catch {
        return fail(error)
    }
}

/// Logs one point at `step`: `st_metric_log` with a step, one argument fewer to convert (the
/// per-point path from Python).
@_cdecl("st_metric_log_step")
public func st_metric_log_step(_ m: UnsafeMutableRawPointer?, _ step: Int64, _ value: Double) -> Int32 {
    guard let handle = metric(m) else { return fail(.invalidArgument, "st_metric_log_step needs a metric handle") }
    do {
        try handle.sink.log(value, step: step)
        return Status.ok.rawValue
    } catch {
        return fail(error)
    }
}

/// Logs `count` points in one call (`steps` may be NULL: points without steps). Stops at the
/// first refused point; `*logged` (if not NULL) says how many went in.
@_cdecl("st_metric_log_many")
public func st_metric_log_many(_ m: UnsafeMutableRawPointer?, _ steps: UnsafePointer<Int64>?, _ values: UnsafePointer<Double>?,
                               _ count: Int64, _ logged: UnsafeMutablePointer<Int64>?) -> Int32 {
    guard let handle = metric(m), let values, count >= 0 else { return fail(.invalidArgument, "st_metric_log_many needs a metric handle, values and a count of at least 0") }
    var done = 0
    defer { logged?.pointee = Int64(done) }
    do {
        try handle.sink.log(values: UnsafeBufferPointer(start: values, count: Int(count)),
                            steps: steps.map { UnsafeBufferPointer(start: $0, count: Int(count)) }, logged: &done)
        return Status.ok.rawValue
    } catch {
        return fail(error)
    }
}

// MARK: - Reading

/// Reads a metric of a trial into caller-provided buffers, as track keeps it (a step-keyed
/// metric: one point per step, in the order steps first came; a list: every point in order).
/// `*count` gets the number of points; at most `capacity` are copied into `steps` and `values`
/// (either may be NULL; call with a capacity of 0 to learn the count). A point without a step,
/// or at a step that is not an integer, has step INT64_MIN; a value that is not a number is NaN.
/// Not found: the trial does not exist; a trial without that metric has 0 points.
@_cdecl("st_series_read")
public func st_series_read(_ db: UnsafeMutableRawPointer?, _ trial: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?,
                           _ steps: UnsafeMutablePointer<Int64>?, _ values: UnsafeMutablePointer<Double>?,
                           _ capacity: Int64, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    guard let handle = database(db), let trial, let name, let count, capacity >= 0 else {
        return fail(.invalidArgument, "st_series_read needs a database handle, a trial uid, a name, a capacity of at least 0 and a place for the count")
    }
    return guarded {
        let points = try handle.backend.metricPoints(trial: String(cString: trial), name: String(cString: name))
        let n = points.steps.count
        count.pointee = Int64(n)
        let copied = Int(min(capacity, Int64(n)))
        guard copied > 0 else { return }
        if let steps { points.steps.withUnsafeBufferPointer { steps.update(from: $0.baseAddress!, count: copied) } }
        if let values { points.values.withUnsafeBufferPointer { values.update(from: $0.baseAddress!, count: copied) } }
    }
}
