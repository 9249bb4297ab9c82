import Foundation
import TrackSQL
import TrackTestSupport

/// One server for the whole test process, started on first use and stopped when the process exits.
let sharedPostgres: Result<LocalPostgresServer, any Error> = {
    let result = Result { try LocalPostgresServer() }
    atexit { if case .success(let server) = sharedPostgres { server.stop() } }
    return result
}()
