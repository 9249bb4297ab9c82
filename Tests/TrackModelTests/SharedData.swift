import Foundation
import TrackModel

/// Locates `../shared/data` (reference data made by Python `track`) beside the package root,
/// or where `TRACK_SHARED_DATA` points.
enum SharedData {
    static var directory: URL {
        if let override = ProcessInfo.processInfo.environment["TRACK_SHARED_DATA"] {
            return URL(fileURLWithPath: override)
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    }

    static func load(_ name: String) throws -> Value {
        let url = directory.appendingPathComponent(name)
        let data = try Data(contentsOf: url)
        return try JSON.decode(Array(data))
    }
}
