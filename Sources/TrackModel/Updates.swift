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

    /// The metadata this update writes to `trial`, for updates that set metadata.
    public func metadataValues(for trial: Trial) -> ValueObject? {
        switch self {
        case .logMetadata(let values): return values
        case .incrementMetadata(let key, let by): return [key: .int((trial.metadata[key]?.intValue ?? 0) + by)]
        default: return nil
        }
    }
}

/// A change `fetchAndUpdateGroup` applies to the first group a query selects.
public enum GroupUpdate: Sendable, Equatable {
    /// Merges these keys into the group's metadata.
    case setMetadata(ValueObject)
}
