import OrderedCollections
/// `track`'s `compute_hash`, byte for byte: the SHA-256 of the positional arguments, then of each
/// parameter's key and value, in order, skipping `None`.
///
/// Each item is encoded as: string → UTF-8; double → 8-byte IEEE 754, little-endian; int or bool
/// below 256 → one byte; other int below 2^32 → 4 bytes little-endian; a list → each element in
/// turn (elements must be strings, numbers or bools); a dict → each of its keys (values ignored).
/// Where Python raises (negative ints, ints of 2^32 and more, `None`, lists or dicts inside a
/// list) this throws an error naming the parameter.
public enum TrialHash {
    /// The hex digest of `arguments` then `parameters`, as `compute_hash(*arguments, **parameters)`.
    public static func compute(_ arguments: [Value?], parameters: ValueObject = [:]) throws(ModelError) -> String {
        var hasher = SHA256()
        for (position, argument) in arguments.enumerated() {
            guard let argument, !argument.isNull else { continue }
            try encode(argument, into: &hasher, what: "argument \(position + 1)", insideList: false)
        }
        for (key, value) in parameters where !value.isNull {
            hasher.update(key.utf8)
            try encode(value, into: &hasher, what: "parameter '\(key)'", insideList: false)
        }
        return hasher.hexDigest()
    }

    /// A trial's hash: `compute_hash(name, version, **parameters)`.
    public static func trial(name: String?, version: Value?, parameters: ValueObject) throws(ModelError) -> String {
        try compute([name.map(Value.string), version], parameters: parameters)
    }

    /// A group's uid: `compute_hash(name, project_id)`.
    public static func group(name: String, projectID: String) -> String {
        // Two strings always hash.
        (try? compute([.string(name), .string(projectID)])) ?? ""
    }

    private static func encode(_ value: Value, into hasher: inout SHA256, what: String, insideList: Bool) throws(ModelError) {
        switch value {
        case .string(let s):
            hasher.update(s.utf8)
        case .bool(let b):
            hasher.update(CollectionOfOne(b ? 1 : 0))
        case .int(let i):
            if i < 0 {
                throw ModelError(.unhashableParameter, "cannot hash \(what): negative integer \(i) (track's compute_hash raises 'bytes must be in range(0, 256)'); pass it as a string or a float")
            }
            if i < 256 {
                hasher.update(CollectionOfOne(UInt8(i)))
            } else if i <= Int64(UInt32.max) {
                let u = UInt32(i)
                hasher.update([UInt8(truncatingIfNeeded: u), UInt8(truncatingIfNeeded: u >> 8), UInt8(truncatingIfNeeded: u >> 16), UInt8(truncatingIfNeeded: u >> 24)])
            } else {
                throw ModelError(.unhashableParameter, "cannot hash \(what): integer \(i) is 2^32 or more (track's compute_hash raises \"'I' format requires 0 <= number <= 4294967295\"); pass it as a string or a float")
            }
        case .double(let d):
            let bits = d.bitPattern
            hasher.update((0..<8).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) })
        case .null:
            // Only reachable inside a list: top-level None values are skipped before encoding.
            throw ModelError(.unhashableParameter, "cannot hash \(what): a list holding null (track's compute_hash raises 'required argument is not an integer'); remove the null")
        case .array(let elements):
            if insideList {
                throw ModelError(.unhashableParameter, "cannot hash \(what): a list inside a list (track's compute_hash raises 'object supporting the buffer API required'); flatten it or pass it as a string")
            }
            for element in elements {
                try encode(element, into: &hasher, what: what, insideList: true)
            }
        case .object(let fields):
            if insideList {
                throw ModelError(.unhashableParameter, "cannot hash \(what): a dict inside a list (track's compute_hash raises 'object supporting the buffer API required'); pass it as a separate parameter")
            }
            for key in fields.keys { hasher.update(key.utf8) }
        }
    }
}
