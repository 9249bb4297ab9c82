import Crypto
import Foundation
import NIOCore
import _CryptoExtras

/// The `AES` security layer of track's socket protocol, as Python `track`'s client speaks it
/// (`socket://...?security_layer=AES`). It is weak (one key and one IV for every message of a
/// connection, no message authentication, no server identity): TLS is the way to protect a
/// connection, and the server speaks this layer only when told to (`track-server --aes-layer`).
///
/// The exchange: the client sends its raw 32-byte X25519 public key, the server answers with its
/// own; both derive 48 bytes with HKDF-SHA256 (no salt, info `handshake data`) from the shared
/// secret: an AES-256 key (the first 32) and an IV (the last 16). Then every message (the usual
/// 4-byte length that counts itself, then the JSON body) is encrypted on its own with AES-256-CBC
/// and PKCS7 padding from that same IV. A reader learns a message's length from its first
/// decrypted block. docs/FORMAT.md, "Socket protocol".
public struct AESLayer: Sendable {
    /// The size of a raw X25519 public key, what each side sends first.
    public static let publicKeyBytes = 32
    let key: SymmetricKey
    let iv: AES._CBC.IV

    /// The layer both sides derive from `privateKey` and the peer's raw public key.
    public init(privateKey: Curve25519.KeyAgreement.PrivateKey, peerPublicKey: some Collection<UInt8>) throws {
        let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: Array(peerPublicKey))
        let secret = try privateKey.sharedSecretFromKeyAgreement(with: peer)
        let derived = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: [UInt8](), sharedInfo: Array("handshake data".utf8),
                                                     outputByteCount: 48)
        let bytes = derived.withUnsafeBytes { Array($0) }
        key = SymmetricKey(data: bytes[0..<32])
        iv = try AES._CBC.IV(ivBytes: bytes[32..<48])
    }

    /// One message (length field included) encrypted.
    public func encrypt(_ message: some DataProtocol) throws -> [UInt8] {
        Array(try AES._CBC.encrypt(message, using: key, iv: iv))
    }

    /// The length of the encrypted message whose first 16 bytes are `firstBlock`: its length
    /// field, read from the decrypted block, rounded up past the padding (nil: not a length
    /// between 4 and `limit`).
    public func encryptedLength(firstBlock: some DataProtocol, limit: Int) throws -> Int? {
        let plain = Array(try AES._CBC.decrypt(firstBlock, using: key, iv: iv, noPadding: true))
        guard plain.count >= 4 else { return nil }
        let length = Int(plain[0]) | Int(plain[1]) << 8 | Int(plain[2]) << 16 | Int(plain[3]) << 24
        guard length >= 4, length <= limit else { return nil }
        return (length / 16 + 1) * 16
    }

    /// One encrypted message decrypted (length field included).
    public func decrypt(_ ciphertext: some DataProtocol) throws -> [UInt8] {
        Array(try AES._CBC.decrypt(ciphertext, using: key, iv: iv))
    }
}

/// The server's side of the AES layer in a connection's pipeline: answers the client's public
/// key with its own, then decrypts each incoming message into the plain bytes the message
/// decoder reads, and encrypts each outgoing message on its own.
final class AESLayerHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let messageBytesMax: Int
    private var layer: AESLayer?
    private var pending = ByteBuffer()

    init(messageBytesMax: Int) { self.messageBytesMax = messageBytesMax }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        pending.writeBuffer(&incoming)
        do {
            if layer == nil {
                guard let peer = pending.readBytes(length: AESLayer.publicKeyBytes) else { return }
                let privateKey = Curve25519.KeyAgreement.PrivateKey()
                layer = try AESLayer(privateKey: privateKey, peerPublicKey: peer)
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: privateKey.publicKey.rawRepresentation)), promise: nil)
            }
            while let layer, pending.readableBytes >= 16 {
                guard let total = try layer.encryptedLength(firstBlock: pending.getBytes(at: pending.readerIndex, length: 16)!, limit: messageBytesMax) else {
                    throw ServerError("an AES-layer message does not start with a length from 4 to \(messageBytesMax) bytes (wrong key, or not the AES layer)")
                }
                guard let ciphertext = pending.readBytes(length: total) else { break }
                context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: try layer.decrypt(ciphertext))))
            }
            pending.discardReadBytes()
        } catch {
            context.fireErrorCaught(error)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var plain = unwrapOutboundIn(data)
        guard let layer else {
            context.write(data, promise: promise)
            return
        }
        // Each message on its own: a reader decrypts one message at a time.
        var out = context.channel.allocator.buffer(capacity: plain.readableBytes + 32)
        do {
            while let length = plain.getInteger(at: plain.readerIndex, endianness: .little, as: UInt32.self),
                  let message = plain.readSlice(length: Int(length)) {
                out.writeBytes(try layer.encrypt(Array(message.readableBytesView)))
            }
        } catch {
            promise?.fail(error)
            return
        }
        context.write(wrapOutboundOut(out), promise: promise)
    }
}
