import Crypto
import Foundation
import Testing
import TrackBackends
import TrackModel
@testable import TrackServer

/// Issue 13, point 10: Python track's AES security layer, behind `--aes-layer`.
@Suite("the AES security layer")
struct AESLayerTests {
    /// A client of the layer over a raw socket, as Python's client speaks it.
    final class AESClient {
        let wire: WireClient
        let layer: AESLayer

        init(port: Int) throws {
            wire = try WireClient(port: port)
            let key = Curve25519.KeyAgreement.PrivateKey()
            wire.sendRaw(Array(key.publicKey.rawRepresentation))
            let peer = try #require(wire.receiveExactly(AESLayer.publicKeyBytes), "the server sent no public key")
            layer = try AESLayer(privateKey: key, peerPublicKey: peer)
        }

        func call(_ text: String) throws -> Value? {
            let body = Array(text.utf8)
            let length = UInt32(body.count + 4)
            wire.sendRaw(try layer.encrypt([UInt8(length & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 24)] + body))
            guard let first = wire.receiveExactly(16), let total = try layer.encryptedLength(firstBlock: first, limit: 1 << 26),
                  let rest = wire.receiveExactly(total - 16) else { return nil }
            let plain = try layer.decrypt(first + rest)
            return try JSON.decode(Array(plain.dropFirst(4)))
        }
    }

    @Test("AESLayerIsSpoken: a client doing the X25519 exchange and sending AES-256-CBC messages logs in, logs and reads back; the server's replies decrypt")
    func spoken() throws {
        let server = SocketServer(dispatcher: RPCDispatcher(backend: MemoryBackend(), credentials: AnyCredentials()), aesLayer: true)
        let port = try server.start(host: "127.0.0.1", port: 0)
        defer { try? server.stop() }
        let client = try AESClient(port: port)
        #expect(try client.call(#"{"__rpc__": "authenticate", "username": null, "password": null}"#)?["status"] == 0)
        #expect(try client.call(#"{"__rpc__": "new_project", "project": {"dtype": "project", "uid": "p", "name": "p", "description": null, "metadata": {}, "trials": [], "groups": []}}"#)?["status"] == 0)
        // A message of exactly 16 bytes' multiple and a long one (several blocks, padding block).
        let long = String(repeating: "x", count: 5000)
        #expect(try client.call(#"{"__rpc__": "get_project", "project": {"dtype": "project", "uid": "p", "name": "p", "description": "\#(long)", "metadata": {}, "trials": [], "groups": []}}"#)?["return"]?["name"] == "p")
        for pad in 0..<20 {
            let text = #"{"__rpc__": "get_project", "project": {"uid": "p", "name": "p\#(String(repeating: " ", count: pad))"}}"#
            #expect(try client.call(text)?["status"] != nil, "message of \(text.utf8.count + 4) bytes")
        }
    }

    @Test("AESLayerRefusesGarbage: bytes that do not decrypt to a length close the connection; the server goes on")
    func garbage() throws {
        let server = SocketServer(dispatcher: RPCDispatcher(backend: MemoryBackend(), credentials: AnyCredentials()), aesLayer: true)
        let port = try server.start(host: "127.0.0.1", port: 0)
        defer { try? server.stop() }
        let bad = try WireClient(port: port)
        bad.sendRaw(Array(repeating: 0, count: 32))  // a low-order point: no usable shared secret
        bad.sendRaw(Array(repeating: 1, count: 64))
        #expect(bad.receiveExactly(1000) == nil)
        let good = try AESClient(port: port)
        #expect(try good.call(#"{"__rpc__": "authenticate", "username": "u", "password": "p"}"#)?["status"] == 0)
    }

    @Test("both sides derive the same key and IV; a message round-trips at every length around a block")
    func derivation() throws {
        let a = Curve25519.KeyAgreement.PrivateKey(), b = Curve25519.KeyAgreement.PrivateKey()
        let la = try AESLayer(privateKey: a, peerPublicKey: b.publicKey.rawRepresentation)
        let lb = try AESLayer(privateKey: b, peerPublicKey: a.publicKey.rawRepresentation)
        for n in 4..<70 {
            var message = [UInt8(n), 0, 0, 0]
            message += (4..<n).map { UInt8(truncatingIfNeeded: $0) }
            let sealed = try la.encrypt(message)
            #expect(try lb.encryptedLength(firstBlock: sealed.prefix(16), limit: 1000) == sealed.count)
            #expect(try lb.decrypt(sealed) == message)
        }
    }
}
