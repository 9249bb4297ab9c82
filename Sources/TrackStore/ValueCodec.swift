import TrackLog
import TrackModel

/// The binary form of a `Value` inside events (see docs/FORMAT.md, "Values"):
/// one tag byte, then the data. Objects keep their key order.
public enum ValueCodec {
    static let tagNull: UInt8 = 0, tagFalse: UInt8 = 1, tagTrue: UInt8 = 2, tagInt: UInt8 = 3
    static let tagDouble: UInt8 = 4, tagString: UInt8 = 5, tagArray: UInt8 = 6, tagObject: UInt8 = 7

    /// Appends `value` to `buffer`.
    public static func encode(_ value: Value, into buffer: EncodeBuffer) {
        switch value {
        case .null: buffer.append(tagNull)
        case .bool(let b): buffer.append(b ? tagTrue : tagFalse)
        case .int(let i): buffer.append(tagInt); buffer.appendSigned(i)
        case .double(let d): buffer.append(tagDouble); buffer.appendFixed(d.bitPattern)
        case .string(let s): buffer.append(tagString); buffer.appendString(s)
        case .array(let a):
            buffer.append(tagArray)
            buffer.appendVarint(UInt64(a.count))
            for element in a { encode(element, into: buffer) }
        case .object(let o):
            encodeObject(o, into: buffer)
        }
    }

    /// Appends an object (tag, count, then key and value pairs).
    public static func encodeObject(_ object: ValueObject, into buffer: EncodeBuffer) {
        buffer.append(tagObject)
        buffer.appendVarint(UInt64(object.count))
        for (key, element) in object {
            buffer.appendString(key)
            encode(element, into: buffer)
        }
    }

    /// Reads one value.
    public static func decode(_ reader: inout ByteReader, depth: Int = 0) throws(LogError) -> Value {
        guard depth <= Limits.valueDepthMax else { throw reader.malformed("value nested deeper than \(Limits.valueDepthMax)") }
        let tag = try reader.byte()
        switch tag {
        case tagNull: return .null
        case tagFalse: return .bool(false)
        case tagTrue: return .bool(true)
        case tagInt: return .int(try reader.signed())
        case tagDouble: return .double(Double(bitPattern: try reader.fixed(UInt64.self)))
        case tagString: return .string(try reader.string())
        case tagArray:
            // Each element takes at least one byte: a count beyond the bytes left is malformed.
            let n = try reader.count(max: reader.remaining, "list length")
            var array: [Value] = []
            array.reserveCapacity(n)
            for _ in 0..<n { array.append(try decode(&reader, depth: depth + 1)) }
            return .array(array)
        case tagObject:
            return .object(try decodeObjectBody(&reader, depth: depth))
        default:
            throw reader.malformed("unknown value tag \(tag)")
        }
    }

    /// Reads a value that must be an object.
    public static func decodeObject(_ reader: inout ByteReader) throws(LogError) -> ValueObject {
        let tag = try reader.byte()
        guard tag == tagObject else { throw reader.malformed("expected an object, found value tag \(tag)") }
        return try decodeObjectBody(&reader, depth: 0)
    }

    private static func decodeObjectBody(_ reader: inout ByteReader, depth: Int) throws(LogError) -> ValueObject {
        let n = try reader.count(max: reader.remaining / 2, "object size")
        var object = ValueObject(minimumCapacity: n)
        for _ in 0..<n {
            let key = try reader.string()
            object[key] = try decode(&reader, depth: depth + 1)
        }
        return object
    }
}
