#if canImport(Glibc)
import Glibc
#endif

/// A hybrid logical clock timestamp: microseconds since 1970 in the high 52 bits and a counter
/// in the low 12, so that timestamps order like wall time but never repeat or go backwards
/// within a stream.
public struct HLC: RawRepresentable, Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The packed value.
    public var rawValue: UInt64
    /// Bits of the counter.
    public static let counterBits: UInt64 = 12

    /// The timestamp with this packed value.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The timestamp of `microseconds` since 1970 with counter `counter`.
    public init(microseconds: UInt64, counter: UInt64 = 0) {
        rawValue = microseconds << HLC.counterBits | (counter & ((1 << HLC.counterBits) - 1))
    }

    /// Microseconds since 1970.
    public var microseconds: UInt64 { rawValue >> HLC.counterBits }
    /// The logical counter.
    public var counter: UInt64 { rawValue & ((1 << HLC.counterBits) - 1) }
    /// Seconds since 1970, as a double.
    public var seconds: Double { Double(microseconds) / 1_000_000 }

    public static func < (a: HLC, b: HLC) -> Bool { a.rawValue < b.rawValue }
    /// The timestamp before every other.
    public static let zero = HLC(rawValue: 0)

    public var description: String { "\(microseconds).\(counter)" }
}

/// The clock of one writer: `tick()` returns a timestamp strictly after the previous one and no
/// earlier than wall time. Cheap reads use the kernel's coarse clock (a few nanoseconds); precise
/// reads are for events whose time matters to the user (chronos, start and finish).
public struct HybridClock: Sendable {
    /// The last timestamp handed out or observed.
    public private(set) var last: HLC = .zero

    /// A clock starting after `last`.
    public init(after last: HLC = .zero) { self.last = last }

    /// Wall time in microseconds since 1970; coarse (about 4 ms resolution) or precise.
    @inline(__always) public static func wallMicroseconds(precise: Bool) -> UInt64 {
        var ts = timespec()
        clock_gettime(precise ? CLOCK_REALTIME : CLOCK_REALTIME_COARSE, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000 &+ UInt64(ts.tv_nsec / 1000)
    }

    /// The next timestamp: max(wall time, last + 1).
    @inline(__always) public mutating func tick(precise: Bool = false) -> HLC {
        let wall = HybridClock.wallMicroseconds(precise: precise) << HLC.counterBits
        last = HLC(rawValue: max(wall, last.rawValue &+ 1))
        return last
    }

    /// The next timestamp for an event at `microseconds` since 1970 (a clock the caller reads):
    /// max(that time, last + 1).
    public mutating func tick(wallMicroseconds microseconds: UInt64) -> HLC {
        last = HLC(rawValue: max(HLC(microseconds: microseconds).rawValue, last.rawValue &+ 1))
        return last
    }

    /// The timestamp just after the last one, without reading the wall clock (for callers that
    /// read it every so often instead of every time; see `LogWriter`).
    @inline(__always) public mutating func next() -> HLC {
        last = HLC(rawValue: last.rawValue &+ 1)
        return last
    }

    /// Moves the clock past a timestamp seen elsewhere (another stream), keeping causality.
    public mutating func observe(_ other: HLC) {
        if other > last { last = other }
    }
}
