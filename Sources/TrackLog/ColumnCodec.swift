/// Writes bits, most significant first, into bytes.
package struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var current: UInt64 = 0
    private var used = 0  // bits in `current`

    /// An empty writer.
    package init() {}

    /// Appends the `count` low bits of `value` (count 0...64).
    package mutating func write(_ value: UInt64, _ count: Int) {
        guard count > 0 else { return }
        let v = count == 64 ? value : value & ((1 << UInt64(count)) - 1)
        let free = 64 - used
        if count <= free {
            current |= v << UInt64(free - count)
            used += count
        } else {
            current |= v >> UInt64(count - free)
            used = 64
            flushWord()
            let rest = count - free
            current = v << UInt64(64 - rest)
            used = rest
        }
        if used == 64 { flushWord() }
    }

    private mutating func flushWord() {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: current >> UInt64(shift))) }
        current = 0
        used = 0
    }

    /// The bytes, the last one padded with zero bits.
    package mutating func finish() -> [UInt8] {
        var shift = 56
        var remaining = used
        while remaining > 0 {
            bytes.append(UInt8(truncatingIfNeeded: current >> UInt64(shift)))
            shift -= 8
            remaining -= 8
        }
        current = 0
        used = 0
        return bytes
    }
}

/// Reads bits written by `BitWriter`; reading past the end throws.
package struct BitReader {
    let bytes: UnsafeRawBufferPointer
    private var bitPosition = 0

    package init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    package mutating func read(_ count: Int) throws(LogError) -> UInt64 {
        guard count > 0 else { return 0 }
        guard bitPosition + count <= bytes.count * 8 else {
            throw LogError(.malformedEvent, "metric column ends early (bit \(bitPosition) of \(bytes.count * 8))")
        }
        var value: UInt64 = 0
        var left = count
        while left > 0 {
            let byte = UInt64(bytes[bitPosition >> 3])
            let offset = bitPosition & 7
            let take = min(8 - offset, left)
            let bits = (byte >> UInt64(8 - offset - take)) & ((1 << UInt64(take)) - 1)
            value = (value << UInt64(take)) | bits
            left -= take
            bitPosition += take
        }
        return value
    }

    package mutating func bit() throws(LogError) -> Bool { try read(1) == 1 }
}

/// The compacted form of metric columns (docs/FORMAT.md, "Snapshots"): steps and timestamps as
/// delta-of-delta, values as Gorilla XOR (Pelkonen et al., 2015), bit-packed.
package enum ColumnCodec {
    /// Delta-of-delta buckets: '0' zero; '10' 7 bits (-63...64); '110' 9 bits (-255...256); '1110'
    /// 12 bits (-2047...2048); '11110' 32 bits; '11111' 64 bits (two's complement; the small
    /// buckets' top value is stored as the pattern of -2^(n-1)).
    package static func writeDeltaOfDelta(_ dod: Int64, into w: inout BitWriter) {
        switch dod {
        case 0: w.write(0, 1)
        case -63...64: w.write(0b10, 2); w.write(UInt64(bitPattern: dod), 7)
        case -255...256: w.write(0b110, 3); w.write(UInt64(bitPattern: dod), 9)
        case -2047...2048: w.write(0b1110, 4); w.write(UInt64(bitPattern: dod), 12)
        case Int64(Int32.min)...Int64(Int32.max): w.write(0b11110, 5); w.write(UInt64(bitPattern: dod), 32)
        default: w.write(0b11111, 5); w.write(UInt64(bitPattern: dod), 64)
        }
    }

    package static func readDeltaOfDelta(_ r: inout BitReader) throws(LogError) -> Int64 {
        /// The small buckets hold -(2^(n-1) - 1) ... 2^(n-1) (the writer's ranges): the top value
        /// is the bit pattern plain sign extension would read as -2^(n-1), which the writer never
        /// puts in that bucket. (Before this was read with plain sign extension, a delta-of-delta
        /// of exactly 64, 256 or 2048 came back 128, 512 or 4096 too small; snapshots written then
        /// read right now.)
        func bucket(_ v: UInt64, _ bits: Int) -> Int64 {
            let half = Int64(1) << Int64(bits - 1)
            let raw = Int64(v)
            return raw <= half ? raw : raw - 2 * half
        }
        func signExtend(_ v: UInt64, _ bits: Int) -> Int64 {
            let shift = UInt64(64 - bits)
            return Int64(bitPattern: v << shift) >> Int64(shift)
        }
        if !(try r.bit()) { return 0 }
        if !(try r.bit()) { return bucket(try r.read(7), 7) }
        if !(try r.bit()) { return bucket(try r.read(9), 9) }
        if !(try r.bit()) { return bucket(try r.read(12), 12) }
        if !(try r.bit()) { return signExtend(try r.read(32), 32) }
        return Int64(bitPattern: try r.read(64))
    }

    package static func writeIntegers(_ values: [Int64], into w: inout BitWriter) {
        var previous: Int64 = 0, delta: Int64 = 0
        for v in values {
            let d = v &- previous
            writeDeltaOfDelta(d &- delta, into: &w)
            delta = d
            previous = v
        }
    }

    package static func readIntegers(_ count: Int, _ r: inout BitReader) throws(LogError) -> [Int64] {
        var out: [Int64] = []
        out.reserveCapacity(count)
        var previous: Int64 = 0, delta: Int64 = 0
        for _ in 0..<count {
            delta = delta &+ (try readDeltaOfDelta(&r))
            previous = previous &+ delta
            out.append(previous)
        }
        return out
    }

    /// Gorilla XOR: '0' same value; '10' meaningful bits inside the previous window; '11' then
    /// 6 bits of leading zeros, 6 bits of length − 1, then the bits.
    package static func writeDoubles(_ values: [Double], into w: inout BitWriter) {
        var previous: UInt64 = 0
        var leading = 65, trailing = 65
        for v in values {
            let bits = v.bitPattern
            let xor = bits ^ previous
            previous = bits
            if xor == 0 { w.write(0, 1); continue }
            let l = min(xor.leadingZeroBitCount, 63), t = xor.trailingZeroBitCount
            // Reuse the window when the value fits it, unless a new one is cheaper (12 bits to state).
            if leading <= 64 && l >= leading && t >= trailing && (l - leading) + (t - trailing) <= 12 {
                w.write(0b10, 2)
                w.write(xor >> UInt64(trailing), 64 - leading - trailing)
            } else {
                leading = l
                trailing = t
                w.write(0b11, 2)
                w.write(UInt64(l), 6)
                w.write(UInt64(64 - l - t - 1), 6)
                w.write(xor >> UInt64(t), 64 - l - t)
            }
        }
    }

    /// True when every value survives a round trip through `Float` bit for bit (training
    /// frameworks log float32 tensors), so the values can be coded on 32 bits.
    package static func allFloat32(_ values: [Double]) -> Bool {
        values.allSatisfy { v in
            let f = Float(v)
            return Double(f).bitPattern == v.bitPattern
        }
    }

    /// XOR on the values' float32 bit patterns, keeping only leading zeros (the low mantissa bits
    /// of measured values are noise, so Gorilla's trailing-zero window rarely pays): '0' same
    /// value; '10' then (32 − previous leading) bits when the new value has at least as many
    /// leading zeros (and not more than 5 more, when a new window is cheaper); '11' then 5 bits
    /// of leading zeros, then (32 − leading) bits.
    package static func writeFloats(_ values: [Double], into w: inout BitWriter) {
        var previous: UInt32 = 0
        var leading = 33
        for v in values {
            let bits = Float(v).bitPattern
            let xor = bits ^ previous
            previous = bits
            if xor == 0 { w.write(0, 1); continue }
            let l = min(xor.leadingZeroBitCount, 31)
            // Reuse the window unless a new one is cheaper (it costs 5 bits to state).
            if leading <= 31 && l >= leading && l <= leading + 5 {
                w.write(0b10, 2)
                w.write(UInt64(xor), 32 - leading)
            } else {
                leading = l
                w.write(0b11, 2)
                w.write(UInt64(l), 5)
                w.write(UInt64(xor), 32 - l)
            }
        }
    }

    package static func readFloats(_ count: Int, _ r: inout BitReader) throws(LogError) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(count)
        var previous: UInt32 = 0
        var leading = 33
        for _ in 0..<count {
            if try r.bit() {
                if try r.bit() {
                    leading = Int(try r.read(5))
                } else if leading > 31 {
                    throw LogError(.malformedEvent, "XOR window used before it is set in a metric column")
                }
                previous ^= UInt32(truncatingIfNeeded: try r.read(32 - leading))
            }
            out.append(Double(Float(bitPattern: previous)))
        }
        return out
    }

    package static func readDoubles(_ count: Int, _ r: inout BitReader) throws(LogError) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(count)
        var previous: UInt64 = 0
        var leading = 0, trailing = 0
        for _ in 0..<count {
            if try r.bit() {
                if try r.bit() {
                    leading = Int(try r.read(6))
                    let length = Int(try r.read(6)) + 1
                    guard leading + length <= 64 else { throw LogError(.malformedEvent, "bad XOR window in a metric column") }
                    trailing = 64 - leading - length
                }
                let meaningful = 64 - leading - trailing
                guard meaningful > 0 else { throw LogError(.malformedEvent, "XOR window used before it is set in a metric column") }
                previous ^= try r.read(meaningful) << UInt64(trailing)
            }
            out.append(Double(bitPattern: previous))
        }
        return out
    }
}
