import Foundation
import Testing
import TrackTestSupport
import TrackBackends
import TrackModel
@testable import TrackSQL

/// One TLS-enabled server for these tests, started on first use.
let sharedTLSPostgres: Result<LocalPostgresServer, any Error> = {
    let result = Result { try LocalPostgresServer(tls: true) }
    atexit { if case .success(let server) = sharedTLSPostgres { server.stop() } }
    return result
}()

@Suite("cockroach:// over TLS: server verification and client certificates", .serialized)
struct SQLTLSTests {
    @Test("verify-full with the server's CA connects and works; without it, or with another CA, a clear refusal")
    func verification() throws {
        registerSQLBackend()
        let server = try sharedTLSPostgres.get()
        let tls = try #require(server.tlsDirectory)
        let database = try server.freshDatabase().components(separatedBy: "/").last!.components(separatedBy: "?")[0]
        for host in ["localhost", "127.0.0.1"] {
            let uri = "cockroach://postgres@\(host):\(server.port)/\(database)?sslmode=verify-full&sslrootcert=\(tls)/ca.crt"
            let backend = try makeBackend(uri: uri)
            _ = try backend.newProject(Project(name: "over-tls-\(host)"))
            #expect(try backend.getProject("over-tls-\(host)") != nil)
            try backend.close()
        }
        // The system's trust roots do not know the test CA.
        #expect { try makeBackend(uri: "cockroach://postgres@localhost:\(server.port)/\(database)?sslmode=verify-full") } throws: {
            let message = ($0 as? TrackError)?.message ?? ""
            return ($0 as? TrackError)?.code == .io && message.contains("not trusted") && message.contains("localhost:\(server.port)")
        }
        // A certificate that is not a CA of this server (the client's own) is refused too.
        #expect { try makeBackend(uri: "cockroach://postgres@localhost:\(server.port)/\(database)?sslmode=verify-ca&sslrootcert=\(tls)/client.crt") } throws: {
            ($0 as? TrackError)?.message.contains("not trusted") == true
        }
        // require without a CA encrypts without verifying, as libpq does.
        let plain = try makeBackend(uri: "cockroach://postgres@127.0.0.1:\(server.port)/\(database)?sslmode=require")
        #expect(try plain.getProject("over-tls-localhost") != nil)
        try plain.close()
    }

    @Test("a user who logs in by certificate connects with sslcert and sslkey, and is refused without them")
    func clientCertificates() throws {
        registerSQLBackend()
        let server = try sharedTLSPostgres.get()
        let tls = try #require(server.tlsDirectory)
        let admin = try SQLConnection(SQLLocation(uri: TrackURI(server.uri())))
        let database = "certdb_\(UUID().uuidString.prefix(8).lowercased())"
        try admin.run(PostgresQueryText.create(database + " OWNER certuser"))
        try admin.close()
        let base = "cockroach://certuser@localhost:\(server.port)/\(database)?sslmode=verify-full&sslrootcert=\(tls)/ca.crt"
        let backend = try makeBackend(uri: base + "&sslcert=\(tls)/client.crt&sslkey=\(tls)/client.key")
        _ = try backend.newProject(Project(name: "by-certificate"))
        try backend.close()
        #expect { try makeBackend(uri: base) } throws: {
            ($0 as? TrackError)?.code == .io && ($0 as? TrackError)?.message.contains("certuser") == true
        }
    }

    @Test("certificate options: unreadable files, a certificate without its key, TLS disabled, and a key that is not one")
    func badOptions() throws {
        let server = try sharedTLSPostgres.get()
        let tls = try #require(server.tlsDirectory)
        let base = "cockroach://postgres@localhost:\(server.port)/postgres?sslmode=verify-full"
        func refusal(_ uri: String) -> String? {
            do { _ = try SQLConnection(SQLLocation(uri: TrackURI(uri))); return nil } catch { return (error as? TrackError)?.message }
        }
        #expect(refusal(base + "&sslrootcert=/nonexistent/ca.crt")?.contains("sslrootcert=/nonexistent/ca.crt: no readable file") == true)
        #expect(refusal(base + "&sslrootcert=\(tls)/ca.crt&sslcert=\(tls)/client.crt")?.contains("go together") == true)
        #expect(refusal("cockroach://postgres@localhost:\(server.port)/postgres?sslrootcert=\(tls)/ca.crt")?.contains("sslmode=disable") == true)
        #expect(refusal(base + "&sslrootcert=\(tls)/ca.crt&sslcert=\(tls)/client.crt&sslkey=\(tls)/client.crt")?.contains("sslkey=") == true)
        #expect(refusal(base + "&sslrootcert=\(tls)/client.key")?.contains("sslrootcert=") == true)
    }
}
