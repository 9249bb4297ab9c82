#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A value behind a spin lock: an uncontended lock is one atomic exchange and an unlock one plain
/// store, about half the cost of a futex mutex. For short critical sections that are rarely
/// contended (the writer's append path, which only the flusher interrupts); a waiter yields the
/// processor after spinning a little.
final class SpinLocked<Value>: @unchecked Sendable {
    private let locked = Atomic<Bool>(false)
    @exclusivity(unchecked) private var value: Value

    init(_ value: Value) { self.value = value }

    @inline(__always) func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        if locked.exchange(true, ordering: .acquiring) { waitForLock() }
        defer { locked.store(false, ordering: .releasing) }
        return try body(&value)
    }

    @inline(never) private func waitForLock() {
        var spins = 0
        repeat {
            while locked.load(ordering: .relaxed) {
                spins += 1
                if spins > 64 { sched_yield() }
            }
        } while locked.exchange(true, ordering: .acquiring)
    }
}
