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
}

/// A change `fetchAndUpdateGroup` applies to the first group a query selects.
public enum GroupUpdate: Sendable, Equatable {
    /// Merges these keys into the group's metadata.
    case setMetadata(ValueObject)
}
