#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// How many times this process's line of ancestors forked since the library loaded: a
/// `pthread_atfork` handler bumps it in every child. A writer remembers the value it was made
/// with, so a forked child (a `DataLoader` worker, a `multiprocessing` fork) can never append to,
/// commit or close its parent's stream: the stream, its `flock` and its flusher thread are the
/// parent's, and the flusher thread does not even exist in the child.
enum ForkGuard {
    private static let generation = Atomic<UInt64>(0)
    private static let installed: Bool = {
        pthread_atfork(nil, nil, { ForkGuard.generation.add(1, ordering: .relaxed) })
        return true
    }()

    /// The current generation (installing the handler on first use).
    static func current() -> UInt64 {
        _ = installed
        return generation.load(ordering: .relaxed)
    }

    /// The current generation, once the handler is installed (the append path's check).
    @inline(__always) static var now: UInt64 { generation.load(ordering: .relaxed) }
}
