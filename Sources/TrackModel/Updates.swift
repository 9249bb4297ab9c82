/// A change `fetchAndUpdateTrial` applies to the first trial a query selects (`track` names the
/// method to call; these are those methods).
public enum TrialUpdate: Sendable, Equatable {
    /// `set_trial_status(status, error)`.
    case setStatus(Status, error: String?)
    /// `log_trial_metadata(**metadata)`.
    case logMetadata(ValueObject)
    /// `add_trial_tags(**tags)`.
    case addTags(ValueObject)
    /// `log_trial_arguments(**arguments)`.
    case logArguments(ValueObject)
    /// Adds `by` to the integer metadata value `key` (missing counts as 0): a read-modify-write
    /// that only an atomic fetch-and-update can do safely across processes.
    case incrementMetadata(key: String, by: Int64)

    /// The metadata this update writes to `trial`, for updates that set metadata. An increment
    /// whose result does not fit a 64-bit integer is an `invalidValue` error naming the trial and
    /// the key: a client's number never traps the process that adds it.
    public func metadataValues(for trial: Trial) throws(ModelError) -> ValueObject? {
        switch self {
        case .logMetadata(let values): return values
        case .incrementMetadata(let key, let by):
            let current = trial.metadata[key]?.intValue ?? 0
            let (sum, overflow) = current.addingReportingOverflow(by)
            if overflow {
                throw ModelError(.invalidValue, "cannot increment metadata '\(key)' of trial \(trial.uid) by \(by): \(current) + \(by) does not fit a 64-bit integer")
            }
            return [key: .int(sum)]
        default: return nil
        }
    }
}

/// A change `fetchAndUpdateGroup` applies to the first group a query selects.
public enum GroupUpdate: Sendable, Equatable {
    /// Merges these keys into the group's metadata.
    case setMetadata(ValueObject)
}
