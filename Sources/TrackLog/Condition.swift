#if canImport(Glibc)
import Glibc
#endif
import CLZ4

/// A mutex with a condition variable (pthread): what the writer's coordination needs from
/// `NSCondition` (lock, unlock, wait, a wait with a time limit, broadcast), without Foundation.
/// Time limits are measured on the monotonic clock, so a wall-clock jump neither cuts nor
/// stretches a wait. Also the plain lock of the modules above (package access).
package final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    package init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits (the lock held) until woken by `broadcast`, or spuriously: callers loop on their condition.
    package func wait() { pthread_cond_wait(condition, mutex) }
    /// Waits at most `seconds`; false when the time ran out.
    package func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanoseconds = Int(now.tv_nsec) + Int(seconds * 1e9)
        var deadline = timespec(tv_sec: now.tv_sec + nanoseconds / 1_000_000_000, tv_nsec: nanoseconds % 1_000_000_000)
        return pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT
    }
    package func broadcast() { pthread_cond_broadcast(condition) }
}

/// Starts `body` on a new detached thread named `name` (at most 15 bytes are kept, the kernel's
/// limit). Returns false when the system refuses a thread.
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box { let body: @Sendable () -> Void; init(_ body: @escaping @Sendable () -> Void) { self.body = body } }
    var thread = pthread_t()
    let shortName = String(decoding: name.utf8.prefix(15), as: UTF8.self)  // a cut character becomes U+FFFD, never a trap
    let named = Box { track_name_this_thread(shortName); body() }
    let box = Unmanaged.passRetained(named).toOpaque()
    let started = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        box.body()
        return nil
    }, box)
    guard started == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        return false
    }
    pthread_detach(thread)
    return true
}
