import TrackBackends
import TrackModel

/// A conformance check that did not hold: which case, and what was expected.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    /// The case that failed.
    public var caseName: String
    /// What was expected and what happened.
    public var message: String
    public var description: String { "\(caseName): \(message)" }
}

/// What a check throws when an expectation does not hold.
struct ExpectationFailed: Error {
    var message: String
}

func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ExpectationFailed(message: message()) }
}

func expectEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: @autoclosure () -> String) throws {
    if actual != expected { throw ExpectationFailed(message: "\(what()): expected \(expected), got \(actual)") }
}

func unwrap<T>(_ value: T?, _ what: @autoclosure () -> String) throws -> T {
    guard let value else { throw ExpectationFailed(message: "\(what()): got nil") }
    return value
}

/// Runs `body`, which must throw a `TrackError` with `code` whose message mentions each of `mentions`.
func expectError(_ code: TrackError.Code, mentioning mentions: [String] = [], _ what: String, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as TrackError {
        try expectEqual(error.code, code, "\(what): error code (message: \(error.message))")
        for word in mentions {
            try expect(error.message.contains(word), "\(what): the error message should mention '\(word)', got: \(error.message)")
        }
        return
    } catch {
        throw ExpectationFailed(message: "\(what): expected a TrackError \(code), got \(type(of: error)): \(error)")
    }
    throw ExpectationFailed(message: "\(what): expected a TrackError \(code), nothing was thrown")
}
