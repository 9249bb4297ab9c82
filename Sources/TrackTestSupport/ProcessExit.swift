#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How a child process ended.
public struct ProcessExit: Sendable, Equatable {
    /// The exit code, or the signal number when `signaled`.
    public var status: Int32
    /// True when a signal ended it.
    public var signaled: Bool
}

extension Process {
    /// Waits for the process to end and says how. Unlike `waitUntilExit`, never hangs on a child
    /// that Foundation failed to reap (seen under load on Linux: the child a zombie, Foundation
    /// still waiting): the child is reaped here with `waitpid` if Foundation has not done it.
    public func waitForExit() -> ProcessExit {
        let pid = processIdentifier
        var pause: useconds_t = 200
        while true {
            if !isRunning {
                return ProcessExit(status: terminationStatus, signaled: terminationReason == .uncaughtSignal)
            }
            var status: Int32 = 0
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid {
                let signal = status & 0x7f
                return signal == 0 ? ProcessExit(status: (status >> 8) & 0xff, signaled: false) : ProcessExit(status: signal, signaled: true)
            }
            // 0: still running; -1 (ECHILD): Foundation reaped it and is about to say so.
            usleep(pause)
            pause = min(pause * 2, 20_000)
        }
    }
}
