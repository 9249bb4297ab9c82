/// The release of swift-track: what `track-replay --version` and `track-server --version` print,
/// and the version of the Python package built from the same tree.
public enum SwiftTrack {
    /// `MAJOR.MINOR.PATCH`.
    public static let version = "0.1.0"
}
