import TrackLog
import Foundation

/// Logs into one trial: metrics, metadata, arguments, tags, status, chronos.
public final class TrialLogger: Sendable {
    /// The backend every call goes to.
    public let backend: any TrackProtocol
    /// The uid of the trial logged into.
    public let uid: String

    /// A logger for trial `uid` on `backend` (the trial must exist there).
    public init(backend: any TrackProtocol, uid: String) {
        self.backend = backend
        self.uid = uid
    }

    /// The trial as the backend holds it now.
    public func trial() throws -> Trial {
        guard let trial = try backend.getTrial(uid: uid) else {
            throw TrackError(.itemNotFound, "trial '\(uid)' does not exist")
        }
        return trial
    }

    /// Records each metric at `step` (nil: appended without a step; an integer literal, or
    /// `.number(1.5)`, `.text("warmup")` as Python track takes them).
    public func logMetrics(step: MetricStep? = nil, _ metrics: ValueObject) throws {
        try backend.logTrialMetrics(uid, step: step, metrics)
    }

    /// Merges keys into the trial's metadata.
    public func logMetadata(_ metadata: ValueObject) throws {
        try backend.logTrialMetadata(uid, metadata)
    }

    /// Merges arguments into the trial's parameters.
    public func logArguments(_ arguments: ValueObject) throws {
        try backend.logTrialArguments(uid, arguments)
    }

    /// Merges tags into the trial's tags.
    public func addTags(_ tags: ValueObject) throws {
        try backend.addTrialTags(uid, tags)
    }

    /// Sets the trial's status; `error` is appended to its errors.
    public func setStatus(_ status: Status, error: String? = nil) throws {
        try backend.setTrialStatus(uid, status, error: error)
    }

    /// A handle that logs one scalar metric by name: `let loss = logger.metric("loss")`. On the
    /// event log (`file://`) it appends straight to this process's stream, without a lock, a
    /// lookup or an allocation per point.
    public func metric(_ name: String) -> MetricHandle {
        MetricHandle(backend: backend, trial: uid, name: name)
    }

    /// Runs `body` timed as chrono `name`: the elapsed seconds go into the trial's stat
    /// aggregator for `name` (which, as in `track`, drops the first observation from its mean).
    /// The chrono stops even when `body` throws.
    public func chrono<T>(_ name: String, _ body: () throws -> T) throws -> T {
        try backend.logTrialChronoStart(uid, name: name)
        let result: T
        do {
            result = try body()
        } catch {
            try? backend.logTrialChronoFinish(uid, name: name)
            throw error
        }
        try backend.logTrialChronoFinish(uid, name: name)
        return result
    }

    /// Runs async `body` timed as chrono `name` (see the synchronous form).
    public func chrono<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        try backend.logTrialChronoStart(uid, name: name)
        let result: T
        do {
            result = try await body()
        } catch {
            try? backend.logTrialChronoFinish(uid, name: name)
            throw error
        }
        try backend.logTrialChronoFinish(uid, name: name)
        return result
    }

    /// The run starts: status `Running`, and the `runtime` chrono starts.
    public func start() throws {
        try backend.setTrialStatus(uid, .running, error: nil)
        try backend.logTrialStart(uid)
    }

    /// The run ends: status `Completed`, or `Exception` with the error's text when `error` is
    /// given; `runtime` records the elapsed time and everything is made durable.
    public func finish(error: (any Error)? = nil) throws {
        if let error {
            try backend.setTrialStatus(uid, .exception, error: String(describing: error))
        } else {
            try backend.setTrialStatus(uid, .completed, error: nil)
        }
        try backend.logTrialFinish(uid)
        try backend.commit()
    }

    /// Runs `body` between `start()` and `finish()`; an error thrown by `body` finishes the
    /// trial with status `Exception` and is rethrown.
    public func run<T>(_ body: (TrialLogger) throws -> T) throws -> T {
        try start()
        do {
            let result = try body(self)
            try finish()
            return result
        } catch {
            try? finish(error: error)
            throw error
        }
    }
}

/// Logs one scalar metric of one trial; the fast path of a training loop. A class, so that
/// keeping handles in a collection and fetching one costs a single reference count.
public final class MetricHandle: Sendable {
    /// The backend written to.
    public let backend: any TrackProtocol
    /// The trial's uid.
    public let trial: String
    /// The metric's name.
    public let name: String
    /// The backend's sink for this series (on the event log: a series slot of its writer).
    private let sink: any MetricSink

    /// A handle for metric `name` of `trial` on `backend`.
    public init(backend: any TrackProtocol, trial: String, name: String) {
        self.backend = backend
        self.trial = trial
        self.name = name
        sink = backend.metricSink(trial: trial, name: name)
    }

    /// Records `value` at `step` (nil: appended without a step), with the effect and the errors
    /// of `backend.logTrialMetric`.
    @inline(__always)
    public func log(_ value: Double, step: Int64? = nil) throws {
        try sink.log(value, step: step)
    }
}
