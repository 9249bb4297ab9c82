import TrackLog
import TrackModel

/// The check every record passes before it enters a batch: each string within
/// `Limits.stringBytesMax`, each value nested at most `Limits.valueDepthMax` deep, the whole
/// record within `Limits.recordBytesMax`. What a reader would refuse is refused here, before
/// anything is written, with an `invalidArgument` error naming the object, the field and the
/// limit (docs/FORMAT.md, "Limits").
extension LogRecord {
    /// Throws `invalidArgument` when the record could not be read back once written; returns a
    /// bound of its encoded size otherwise.
    @discardableResult
    public func checkLimits() throws(LogError) -> Int {
        var check = RecordLimitCheck(object: objectDescription)
        switch self {
        case .projectCreated(let p):
            try check.string(p.name, "name")
            try check.optional(p.description, "description")
            try check.object(p.metadata, "metadata")
        case .groupCreated(let g):
            try check.string(g.uid, "uid"); try check.string(g.name, "name"); try check.string(g.projectID, "project")
            try check.optional(g.description, "description")
            try check.object(g.metadata, "metadata")
        case .trialCreated(let t, _):
            try check.string(t.uid, "uid")
            try check.optional(t.name, "name"); try check.optional(t.description, "description")
            try check.value(t.version ?? .null, "version")
            try check.optional(t.projectID, "project"); try check.optional(t.groupID, "group")
            try check.object(t.tags, "tags"); try check.object(t.parameters, "parameters"); try check.object(t.metadata, "metadata")
            try check.string(t.status.name, "status name")
        case .trialAddedToProject(let t, let project):
            try check.string(t, "uid"); try check.string(project, "project")
        case .trialAddedToGroup(let t, let group):
            try check.string(t, "uid"); try check.string(group, "group")
        case .trialStarted(let t), .trialFinished(let t):
            try check.string(t, "uid")
        case .chronoStarted(let t, let name), .chronoFinished(let t, let name):
            try check.string(t, "uid"); try check.string(name, "chrono name")
        case .argumentsLogged(let t, let o):
            try check.string(t, "uid"); try check.object(o, "arguments")
        case .metadataLogged(let t, let o):
            try check.string(t, "uid"); try check.object(o, "metadata")
        case .tagsAdded(let t, let o):
            try check.string(t, "uid"); try check.object(o, "tags")
        case .statusSet(let t, let status, let error):
            try check.string(t, "uid"); try check.string(status.name, "status name"); try check.optional(error, "error")
        case .groupMetadataSet(let group, let o):
            try check.string(group, "uid"); try check.object(o, "metadata")
        case .metricsLogged(let t, let step, let o):
            try check.string(t, "uid")
            try LogWriter.checkStep(step?.intValue)
            if case .text(let text)? = step { try check.string(text, "step") }
            try check.object(o, "metrics")
        case .projectImported(let p):
            try check.value(p.trackJSON(), "serialization")
        case .groupImported(let g):
            try check.value(g.trackJSON, "serialization")
        case .lossAccepted(let text):
            try check.string(text, "text")
        case .trialImported(let t):
            try check.string(t.uid, "uid")
            try check.value(t.trackJSON, "serialization")
        }
        return check.bytes
    }

    /// "trial <uid>", "project 'name'", "group <uid>": the object a record changes, for messages.
    var objectDescription: String {
        switch self {
        case .projectCreated(let p), .projectImported(let p): return "project '\(p.name.prefix(80))'"
        case .groupCreated(let g), .groupImported(let g): return "group \(g.uid.prefix(80))"
        case .groupMetadataSet(let g, _): return "group \(g.prefix(80))"
        case .lossAccepted: return "the database"
        default: return "trial \((trialUID ?? "").prefix(80))"
        }
    }
}

/// Walks a record's strings and values, adding up a bound of its encoded size.
struct RecordLimitCheck {
    let object: String
    /// An upper bound of the bytes the record encodes to, so far.
    var bytes = 16

    init(object: String) { self.object = object }

    private func refuse(_ what: String) -> LogError {
        LogError(.invalidArgument, "\(object): \(what); nothing was written")
    }

    private mutating func add(_ n: Int, _ field: String) throws(LogError) {
        bytes += n
        if bytes > Limits.recordBytesMax {
            throw refuse("\(field) makes the record larger than the limit of \(Limits.recordBytesMax) bytes per operation (\(Limits.recordBytesMax >> 20) MiB)")
        }
    }

    mutating func string(_ s: String, _ field: String) throws(LogError) {
        let n = s.utf8.count
        if n > Limits.stringBytesMax {
            throw refuse("\(field) is a string of \(n) bytes, over the limit of \(Limits.stringBytesMax) bytes per string (\(Limits.stringBytesMax >> 20) MiB)")
        }
        try add(n + 11, field)
    }

    mutating func optional(_ s: String?, _ field: String) throws(LogError) {
        if let s { try string(s, field) } else { try add(1, field) }
    }

    mutating func object(_ o: ValueObject, _ field: String, depth: Int = 1) throws(LogError) {
        if depth > Limits.valueDepthMax {
            throw refuse("\(field) is nested more than \(Limits.valueDepthMax) levels deep, the limit")
        }
        try add(11, field)
        for (key, element) in o {
            let path = "\(field).\(key.prefix(80))"
            if key.utf8.count > Limits.stringBytesMax {
                throw refuse("a key in \(field) is a string of \(key.utf8.count) bytes, over the limit of \(Limits.stringBytesMax) bytes per string (\(Limits.stringBytesMax >> 20) MiB)")
            }
            try add(key.utf8.count + 10, path)
            try value(element, path, depth: depth + 1)
        }
    }

    mutating func value(_ v: Value, _ field: String, depth: Int = 1) throws(LogError) {
        switch v {
        case .null, .bool: try add(1, field)
        case .int, .double: try add(11, field)
        case .string(let s): try string(s, field)
        case .array(let a):
            if depth > Limits.valueDepthMax {
                throw refuse("\(field) is nested more than \(Limits.valueDepthMax) levels deep, the limit")
            }
            try add(11, field)
            for (i, element) in a.enumerated() { try value(element, "\(field)[\(i)]", depth: depth + 1) }
        case .object(let o): try object(o, field, depth: depth)
        }
    }
}
