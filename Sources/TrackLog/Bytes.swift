/// A growable byte buffer for encoding: raw memory, no per-append checks beyond capacity, reused
/// across frames so that steady-state appends allocate nothing. Its owner serializes access (the
/// writer's append lock), so dynamic exclusivity checks are off on the hot fields.
public final class EncodeBuffer: @unchecked Sendable {
    /// The bytes written so far start here.
    @exclusivity(unchecked) public private(set) var base: UnsafeMutableRawPointer
    /// How many bytes are written.
    @exclusivity(unchecked) public private(set) var count: Int = 0
    /// How many bytes fit before the buffer grows.
    @exclusivity(unchecked) public private(set) var capacity: Int

    /// An empty buffer with room for `capacity` bytes.
    public init(capacity: Int = 1 << 16) {
        self.capacity = max(64, capacity)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// Forgets the contents, keeping the memory.
    @inline(__always) public func reset() { count = 0 }

    /// The written bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Makes room for `extra` more bytes.
    @inline(__always) public func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Runs `body` with a cursor at the end of the buffer, `maximumBytes` of room reserved, and
    /// keeps what it wrote: the hot encoding path touches the object once instead of per byte.
    @inline(__always) public func withCursor(maximumBytes: Int, _ body: (inout ByteCursor) -> Void) {
        reserve(maximumBytes)
        var cursor = ByteCursor(position: base + count)
        body(&cursor)
        count = cursor.position - base
    }

    /// Appends one byte.
    @inline(__always) public func append(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends an unsigned LEB128 varint.
    @inline(__always) public func appendVarint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: count, as: UInt8.self)
            count += 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(v), toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Appends a signed integer as a zigzag varint.
    @inline(__always) public func appendSigned(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Appends the `n` low-order bytes of `value`, little-endian.
    @inline(__always) public func appendLowBytes(_ value: UInt64, _ n: Int) {
        reserve(8)
        // Store all 8 bytes (cheap, unaligned), then count only n of them.
        base.storeBytes(of: value.littleEndian, toByteOffset: count, as: UInt64.self)
        count += n
    }

    /// Appends a fixed-width little-endian integer.
    @inline(__always) public func appendFixed<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        base.storeBytes(of: value.littleEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// Appends raw bytes.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends a string as a varint length then its UTF-8 bytes.
    public func appendString(_ string: String) {
        var s = string
        s.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count))
            append(UnsafeRawBufferPointer(utf8))
        }
    }

    /// The written bytes as an array.
    public func toArray() -> [UInt8] { Array(bytes) }
}

/// Writes into memory already reserved (see `EncodeBuffer.withCursor`).
public struct ByteCursor {
    /// Where the next byte goes.
    public var position: UnsafeMutableRawPointer

    /// Writes one byte.
    @inline(__always) public mutating func byte(_ value: UInt8) {
        position.storeBytes(of: value, as: UInt8.self)
        position += 1
    }

    /// Writes an unsigned LEB128 varint (at most 10 bytes).
    @inline(__always) public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            position.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
            position += 1
            v >>= 7
        }
        position.storeBytes(of: UInt8(v), as: UInt8.self)
        position += 1
    }

    /// Writes a zigzag varint.
    @inline(__always) public mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Writes the `n` low-order bytes of `value`, little-endian (8 bytes of room needed).
    @inline(__always) public mutating func lowBytes(_ value: UInt64, _ n: Int) {
        position.storeBytes(of: value.littleEndian, as: UInt64.self)
        position += n
    }
}

/// Reads encoded bytes with a bounds check on every read: malformed input throws
/// `LogError.malformedEvent`, never reads outside the buffer.
public struct ByteReader {
    /// The bytes read.
    public let bytes: UnsafeRawBufferPointer
    /// The next byte to read.
    public var position: Int = 0

    /// A reader over `bytes`.
    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// True when every byte is read.
    @inline(__always) public var isAtEnd: Bool { position >= bytes.count }

    /// How many bytes are left.
    @inline(__always) public var remaining: Int { bytes.count - position }

    @inline(never)
    package func malformed(_ what: String) -> LogError {
        LogError(.malformedEvent, "malformed event bytes at payload offset \(position): \(what)", offset: Int64(position))
    }

    /// Reads one byte.
    @inline(__always) public mutating func byte() throws(LogError) -> UInt8 {
        guard position < bytes.count else { throw malformed("unexpected end of payload") }
        let b = bytes.load(fromByteOffset: position, as: UInt8.self)
        position += 1
        return b
    }

    /// Reads an unsigned LEB128 varint (at most 10 bytes).
    @inline(__always) public mutating func varint() throws(LogError) -> UInt64 {
        // Most varints of a frame (series ids, step deltas) are one byte.
        if position < bytes.count {
            let b = bytes.load(fromByteOffset: position, as: UInt8.self)
            if b < 0x80 { position += 1; return UInt64(b) }
        }
        return try longVarint()
    }

    private mutating func longVarint() throws(LogError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < bytes.count else { throw malformed("truncated varint") }
            let b = bytes.load(fromByteOffset: position, as: UInt8.self)
            position += 1
            if shift == 63 && b > 1 { throw malformed("varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw malformed("varint longer than 10 bytes") }
        }
    }

    /// Reads a zigzag varint.
    @inline(__always) public mutating func signed() throws(LogError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    /// Reads a varint that must fit `Int` and be at most `max`.
    @inline(__always) public mutating func count(max: Int, _ what: String) throws(LogError) -> Int {
        let v = try varint()
        guard v <= UInt64(max) else { throw malformed("\(what) \(v) exceeds the limit \(max)") }
        return Int(v)
    }

    /// Reads `n` (0...8) low-order bytes of a little-endian integer.
    @inline(__always) public mutating func lowBytes(_ n: Int) throws(LogError) -> UInt64 {
        guard n <= remaining else { throw malformed("truncated value") }
        if remaining >= 8 {
            // One load, masked to the n bytes the value has.
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            position += n
            return n >= 8 ? word : word & ((1 &<< UInt64(8 * n)) &- 1)
        }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes.load(fromByteOffset: position + i, as: UInt8.self)) << (8 * UInt64(i)) }
        position += n
        return v
    }

    /// Reads a fixed-width little-endian integer.
    @inline(__always) public mutating func fixed<T: FixedWidthInteger>(_ type: T.Type) throws(LogError) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw malformed("truncated \(T.self)") }
        let v = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: v)
    }

    /// Reads a varint length then that many UTF-8 bytes (invalid UTF-8 is repaired, not trusted).
    public mutating func string() throws(LogError) -> String {
        let n = try count(max: Limits.stringBytesMax, "string length")
        guard n <= remaining else { throw malformed("string of \(n) bytes runs past the payload") }
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + n]), as: UTF8.self)
        position += n
        return s
    }
}

/// The frame every checksummed file of the database shares (MANIFEST, snapshot, index): a
/// trailing CRC32C over everything before it, and a header starting with a u64 magic, a u16
/// format version and a reserved u16. Checked once, here, for all three.
enum ChecksummedFile {
    /// A reader over the file's contents without the CRC, positioned after the reserved u16, and
    /// the format version; throws `corruptFile` naming `what` and `path` when the file is shorter
    /// than `minimumBytes`, fails its CRC32C, has another magic or a version outside `versions`.
    static func open(_ raw: UnsafeRawBufferPointer, what: String, path: String, minimumBytes: Int,
                     magic: UInt64, versions: ClosedRange<UInt16>) throws(LogError) -> (reader: ByteReader, version: UInt16) {
        func fail(_ why: String) -> LogError { LogError(.corruptFile, "\(what) unusable: \(why)", path: path) }
        guard raw.count >= max(minimumBytes, 16) else { throw fail("too short") }
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: raw.count - 4, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<raw.count - 4])) else { throw fail("it fails its CRC32C check") }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<raw.count - 4]))
        guard try r.fixed(UInt64.self) == magic else { throw fail("bad magic") }
        let version = try r.fixed(UInt16.self)
        guard versions.contains(version) else {
            throw fail(versions.count == 1 ? "format version \(version) is not supported"
                                           : "format version \(version) is not supported (this build reads \(versions.lowerBound) to \(versions.upperBound))")
        }
        _ = try r.fixed(UInt16.self)
        return (r, version)
    }
}
