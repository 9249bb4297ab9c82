#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import CLZ4

/// Which system call a fault is injected into.
public enum IOOperation: String, Sendable, CaseIterable {
    case open, read, write, fsync, truncate, mkdir, rename, unlink
}

/// One call that changes what a power cut could leave on disk, as the I/O seam recorded it
/// (`IOFaults.startRecording`): a power-loss simulator replays a prefix of these, and any subset
/// of the writes not yet fsynced.
public struct IOEvent: Sendable, Equatable {
    /// What was done.
    public enum Kind: Sendable, Equatable {
        /// A file was created (or truncated to 0 by O_TRUNC) at `path`.
        case create
        /// `bytes` were written at `offset`.
        case write(offset: Int64, bytes: [UInt8])
        /// The file (or directory) at `path` was fsynced.
        case fsync
        /// The file was cut to `length` bytes.
        case truncate(length: Int64)
        /// A directory was made.
        case mkdir
        /// `path` was renamed to `to`.
        case rename(to: String)
        /// The file was deleted.
        case unlink
    }
    /// The file or directory concerned.
    public var path: String
    /// What was done to it.
    public var kind: Kind
}

/// The fault-injection seam of the I/O layer: tests make chosen system calls on files under a
/// path prefix fail with a chosen `errno` (ENOSPC, EIO), optionally after some successful calls,
/// and optionally after writing part of the bytes (a short write).
public enum IOFaults {
    /// One injected fault.
    public struct Rule: Sendable {
        /// Files whose path starts with this prefix are affected.
        public var pathPrefix: String
        /// The system call that fails.
        public var operation: IOOperation
        /// The error it fails with.
        public var errno: Int32
        /// How many matching calls succeed before the fault fires.
        public var skip: Int
        /// For writes: how many bytes are written before failing (a torn write).
        public var partialBytes: Int
        /// Fire once, or on every later call too.
        public var repeats: Bool

        /// A fault on `operation` for files under `pathPrefix`.
        public init(pathPrefix: String, operation: IOOperation, errno: Int32, skip: Int = 0, partialBytes: Int = 0, repeats: Bool = true) {
            self.pathPrefix = pathPrefix
            self.operation = operation
            self.errno = errno
            self.skip = skip
            self.partialBytes = partialBytes
            self.repeats = repeats
        }
    }

    private static let rules = Mutex<[Rule]>([])
    private static let armed = Atomic<Bool>(false)
    private static let recording = Mutex<(prefix: String, events: [IOEvent])?>(nil)
    private static let recordingArmed = Atomic<Bool>(false)

    /// Starts recording every call that changes files under `pathPrefix` (creations, writes with
    /// their bytes, fsyncs, truncations, directory creations, renames, deletions), in order.
    public static func startRecording(pathPrefix: String) {
        recording.withLock { $0 = (pathPrefix, []) }
        recordingArmed.store(true, ordering: .releasing)
    }

    /// How many calls the recording holds so far.
    public static var recordedCount: Int { recording.withLock { $0?.events.count ?? 0 } }

    /// Stops recording and returns what was recorded.
    public static func stopRecording() -> [IOEvent] {
        recordingArmed.store(false, ordering: .releasing)
        return recording.withLock { state in
            defer { state = nil }
            return state?.events ?? []
        }
    }

    /// Records `kind` on `path` when a recording covers it. `bytes` is only read then.
    static func note(_ path: String, _ kind: @autoclosure () -> IOEvent.Kind) {
        guard recordingArmed.load(ordering: .acquiring) else { return }
        recording.withLock { state in
            guard state != nil, path.hasPrefix(state!.prefix) else { return }
            state!.events.append(IOEvent(path: path, kind: kind()))
        }
    }

    /// Installs a fault. Remove it with `clear(pathPrefix:)`.
    public static func inject(_ rule: Rule) {
        rules.withLock { $0.append(rule) }
        armed.store(true, ordering: .releasing)
    }

    /// Removes every fault under `pathPrefix`.
    public static func clear(pathPrefix: String) {
        rules.withLock { list in
            list.removeAll { $0.pathPrefix == pathPrefix }
            armed.store(!list.isEmpty, ordering: .releasing)
        }
    }

    /// The rule that fires for this call, if any (consuming skips and one-shot rules).
    static func fire(_ operation: IOOperation, path: String) -> Rule? {
        guard armed.load(ordering: .acquiring) else { return nil }
        return rules.withLock { list -> Rule? in
            guard let index = list.firstIndex(where: { $0.operation == operation && path.hasPrefix($0.pathPrefix) }) else { return nil }
            if list[index].skip > 0 {
                list[index].skip -= 1
                return nil
            }
            let rule = list[index]
            if !rule.repeats { list.remove(at: index) }
            return rule
        }
    }
}

/// The text of an errno.
func errnoText(_ code: Int32) -> String {
    String(cString: strerror(code))
}

/// An open file: thin, explicit system calls that retry on EINTR and throw `LogError` with the
/// path and offset. Every call passes through the `IOFaults` seam.
public final class LogFile: @unchecked Sendable {
    /// The path the file was opened with.
    public let path: String
    /// The file descriptor (-1 once closed).
    public private(set) var descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
    }

    private func failure(_ what: String, _ code: Int32, offset: Int64? = nil) -> LogError {
        LogError(.io, "\(what) failed: \(errnoText(code)) (errno \(code))", path: path, offset: offset, errno: code)
    }

    /// Opens `path` with `flags` (O_RDONLY, O_RDWR|O_CREAT, ...).
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(LogError) -> LogFile {
        if let rule = IOFaults.fire(.open, path: path) {
            throw LogError(.io, "open failed: \(errnoText(rule.errno)) (errno \(rule.errno), injected)", path: path, errno: rule.errno)
        }
        while true {
            let existed = flags & O_CREAT != 0 && flags & O_TRUNC == 0 ? FileSystem.exists(path) : true
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 {
                if flags & O_TRUNC != 0 || (flags & O_CREAT != 0 && !existed) { IOFaults.note(path, .create) }
                return LogFile(path: path, descriptor: fd)
            }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw LogError(.io, "open failed: \(errnoText(code)) (errno \(code))", path: path, errno: code)
        }
    }

    /// The file's size in bytes.
    public func size() throws(LogError) -> Int64 {
        var info = stat()
        if fstat(descriptor, &info) != 0 { throw failure("fstat", Glibc.errno) }
        return Int64(info.st_size)
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    public func read(at offset: Int64, count: Int) throws(LogError) -> [UInt8] {
        if count == 0 { return [] }
        if let rule = IOFaults.fire(.read, path: path) { throw failure("read (injected)", rule.errno, offset: offset) }
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        var failed: Int32 = 0
        buffer.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(descriptor, raw.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n > 0 { done += n; continue }
                if n == 0 { break }
                let code = Glibc.errno
                if code == EINTR { continue }
                failed = code
                break
            }
        }
        if failed != 0 { throw failure("read", failed, offset: offset) }
        if done < count { buffer.removeSubrange(done...) }
        return buffer
    }

    /// Reads the whole file.
    public func readAll() throws(LogError) -> [UInt8] {
        try read(at: 0, count: Int(try size()))
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(LogError) {
        var count = bytes.count
        var injected: Int32 = 0
        if let rule = IOFaults.fire(.write, path: path) {
            injected = rule.errno
            count = min(rule.partialBytes, bytes.count)
        }
        var done = 0
        defer { if done > 0 { IOFaults.note(path, .write(offset: offset, bytes: Array(UnsafeRawBufferPointer(rebasing: bytes[0..<done])))) } }
        while done < count {
            let n = pwrite(descriptor, bytes.baseAddress! + done, count - done, off_t(offset) + off_t(done))
            if n >= 0 { done += n; continue }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw failure("write", code, offset: offset + Int64(done))
        }
        if injected != 0 { throw failure("write (injected after \(count) bytes)", injected, offset: offset + Int64(done)) }
    }

    /// Writes all of `bytes` at `offset`.
    public func write(_ bytes: [UInt8], at offset: Int64) throws(LogError) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(LogError) in try write(raw, at: offset) } }
        try result.get()
    }

    /// Flushes the file's data and metadata to the device.
    public func sync() throws(LogError) {
        if let rule = IOFaults.fire(.fsync, path: path) { throw failure("fsync (injected)", rule.errno) }
        while fsync(descriptor) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw failure("fsync", code)
        }
        IOFaults.note(path, .fsync)
    }

    /// Asks the kernel to start writing `count` bytes at `offset` to the device without waiting
    /// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): the fsync that follows then finds less
    /// left to write. Durability still comes only from `sync()`; a failure here is left for it
    /// to report.
    public func startWriteback(at offset: Int64, count: Int) {
        _ = track_start_writeback(descriptor, offset, Int64(count))
    }

    /// Starts an fsync of the file on a thread of its own and returns at once: a later `sync()`
    /// then finds less to flush. It makes nothing durable that callers may count on (they still
    /// call `sync()`); it runs on a duplicate of the descriptor, so closing this file meanwhile
    /// is safe. Returns false when no thread could be started (nothing is lost: `sync()` does
    /// the work).
    @discardableResult
    public func syncInBackground() -> Bool {
        let copy = dup(descriptor)
        guard copy >= 0 else { return false }
        let started = startThread(named: "st-presync") {
            _ = fsync(copy)
            _ = Glibc.close(copy)
        }
        if !started { _ = Glibc.close(copy) }
        return started
    }

    /// Cuts the file to `length` bytes.
    public func truncate(to length: Int64) throws(LogError) {
        if let rule = IOFaults.fire(.truncate, path: path) { throw failure("truncate (injected)", rule.errno, offset: length) }
        while ftruncate(descriptor, off_t(length)) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw failure("truncate", code, offset: length)
        }
        IOFaults.note(path, .truncate(length: length))
    }

    /// Takes an exclusive `flock` without waiting; false when another process holds it.
    public func tryLockExclusive() throws(LogError) -> Bool {
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            if code == EWOULDBLOCK || code == EAGAIN { return false }
            throw failure("flock", code)
        }
        return true
    }

    /// Takes an exclusive `flock`, waiting for it.
    public func lockExclusive() throws(LogError) {
        while flock(descriptor, LOCK_EX) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw failure("flock", code)
        }
    }

    /// Releases a `flock`.
    public func unlock() {
        _ = flock(descriptor, LOCK_UN)
    }

    /// Closes the file (also releasing its `flock`).
    public func close() {
        if descriptor >= 0 { _ = Glibc.close(descriptor) }
        descriptor = -1
    }
}

/// Directory and path helpers over the system calls.
public enum FileSystem {
    /// True when `path` exists.
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// True when `path` is a directory.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates `path` and its missing parents, fsyncing the parent of each directory it makes, so
    /// that a directory holding committed data cannot vanish in a power cut.
    public static func createDirectory(_ path: String) throws(LogError) {
        if isDirectory(path) { return }
        var partial = path.hasPrefix("/") ? "/" : ""
        var parent = path.hasPrefix("/") ? "/" : "."
        for component in path.split(separator: "/") {
            partial += component
            if !isDirectory(partial) {
                if let rule = IOFaults.fire(.mkdir, path: partial) {
                    throw LogError(.io, "mkdir failed: \(errnoText(rule.errno)) (errno \(rule.errno), injected)", path: partial, errno: rule.errno)
                }
                if mkdir(partial, 0o755) != 0 {
                    let code = Glibc.errno
                    if code != EEXIST { throw LogError(.io, "mkdir failed: \(errnoText(code)) (errno \(code))", path: partial, errno: code) }
                } else {
                    IOFaults.note(partial, .mkdir)
                }
                // Whoever made it, its entry reaches the disk before anything is written inside.
                try syncDirectory(parent)
            }
            parent = partial
            partial += "/"
        }
    }

    /// The names in directory `path` (without `.` and `..`), sorted; empty if it does not exist.
    public static func list(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Deletes a file; missing files are fine.
    public static func remove(_ path: String) throws(LogError) {
        if let rule = IOFaults.fire(.unlink, path: path) {
            throw LogError(.io, "unlink failed: \(errnoText(rule.errno)) (errno \(rule.errno), injected)", path: path, errno: rule.errno)
        }
        if unlink(path) != 0 {
            let code = Glibc.errno
            if code == ENOENT { return }
            throw LogError(.io, "unlink failed: \(errnoText(code)) (errno \(code))", path: path, errno: code)
        }
        IOFaults.note(path, .unlink)
    }

    /// Deletes a directory of files (not of directories) and the directory itself; a missing
    /// one is fine.
    public static func removeDirectory(_ path: String) throws(LogError) {
        guard isDirectory(path) else { return }
        for name in list(path) { try remove(path + "/" + name) }
        if rmdir(path) != 0 {
            let code = Glibc.errno
            if code == ENOENT { return }
            throw LogError(.io, "rmdir failed: \(errnoText(code)) (errno \(code))", path: path, errno: code)
        }
    }

    /// Renames atomically.
    public static func rename(_ from: String, to: String) throws(LogError) {
        if let rule = IOFaults.fire(.rename, path: from) {
            throw LogError(.io, "rename to \(to) failed: \(errnoText(rule.errno)) (errno \(rule.errno), injected)", path: from, errno: rule.errno)
        }
        if Glibc.rename(from, to) != 0 {
            let code = Glibc.errno
            throw LogError(.io, "rename to \(to) failed: \(errnoText(code)) (errno \(code))", path: from, errno: code)
        }
        IOFaults.note(from, .rename(to: to))
    }

    /// Flushes a directory's entries (after creating or renaming files in it).
    public static func syncDirectory(_ path: String) throws(LogError) {
        let directory = try LogFile.open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { directory.close() }
        try directory.sync()
    }
}
