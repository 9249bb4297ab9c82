// The fixtures were made with:
//   openssl req -x509 -newkey rsa:2048 -nodes -keyout test-ca.key -out test-ca.pem -days 36500 \
//     -subj "/CN=swift-track test CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
//   openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
//   openssl x509 -req -in server.csr -CA test-ca.pem -CAkey test-ca.key -CAcreateserial -out server.pem -days 36500 \
//     -extfile <(printf "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// The path of a test fixture (test-only TLS material).
func fixture(_ name: String, file: String = #filePath) -> String {
    URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)").path
}

@Suite("TLS: a server with a certificate accepts only TLS", .serialized)
struct TLSTests {
    func server() throws -> (SocketServer, any TrackProtocol, Int) {
        let backend = MemoryBackend()
        let context = try SocketServer.tlsContext(certificatePath: fixture("server.pem"), keyPath: fixture("server.key"))
        let server = SocketServer(dispatcher: RPCDispatcher(backend: backend, credentials: UserStore([UserRecord(name: "u", password: "p", iterations: 1000)])), tls: context)
        return (server, backend, try server.start(host: "127.0.0.1", port: 0))
    }

    @Test("a verified TLS client logs; by IP and by host name")
    func verified() throws {
        registerSocketBackend()
        let (server, _, port) = try server()
        defer { try? server.stop() }
        for host in ["127.0.0.1", "localhost"] {
            let client = try makeBackend(uri: "socket://u:p@\(host):\(port)?tls=true&ca=\(fixture("test-ca.pem"))")
            _ = try client.newProject(Project(name: "p-\(host)"))
            #expect(try client.getProject("p-\(host)") != nil)
            try client.close()
        }
    }

    @Test("a plain client, an unverified certificate and a missing CA file are refused with clear errors; the server stays up")
    func refusals() throws {
        registerSocketBackend()
        let (server, backend, port) = try server()
        defer { try? server.stop() }
        // Plain TCP to a TLS server: the server answers with TLS alerts and closes; nothing is done.
        let plain = try WireClient(port: port)
        let reply = plain.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)
        #expect(reply?["status"]?.intValue != 0)
        #expect { try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)") } throws: { $0 is TrackError }
        // The test CA is not among the system's trust roots.
        #expect { try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)?tls=true") } throws: { error in
            (error as? TrackError)?.message.lowercased().contains("certificate") == true
        }
        #expect { try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)?tls=true&ca=/nonexistent.pem") } throws: {
            (($0 as? TrackError)?.message.contains("ca=/nonexistent.pem")) == true
        }
        #expect { try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)?tls=maybe") } throws: { ($0 as? TrackError)?.code == .invalidArgument }
        // verify=false (testing only) connects without checking the certificate.
        let insecure = try makeBackend(uri: "socket://u:p@127.0.0.1:\(port)?tls=true&verify=false")
        _ = try insecure.newProject(Project(name: "after"))
        try insecure.close()
        #expect(try backend.fetchProjects(Query()).map(\.name) == ["after"])
    }

    @Test("a bad certificate or key file is named")
    func badFiles() throws {
        #expect { try SocketServer.tlsContext(certificatePath: "/nonexistent.pem", keyPath: fixture("server.key")) } throws: {
            ($0 as? ServerError)?.message.contains("/nonexistent.pem") == true
        }
        #expect { try SocketServer.tlsContext(certificatePath: fixture("server.pem"), keyPath: fixture("test-ca.pem")) } throws: {
            ($0 as? ServerError)?.message.contains("test-ca.pem") == true
        }
    }
}
