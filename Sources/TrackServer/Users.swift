import _CryptoExtras
import Crypto
import Foundation
import Synchronization
import TrackModel

/// HMAC-SHA256 and PBKDF2-HMAC-SHA256 (RFC 2104, RFC 8018), from swift-crypto (BoringSSL).
public enum PasswordHash {
    /// HMAC-SHA256 of `message` under `key`.
    public static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<Crypto.SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// PBKDF2-HMAC-SHA256, 32 bytes (the users file's hash: what the first version, which derived
    /// it by hand, wrote is read unchanged).
    public static func pbkdf2(password: String, salt: [UInt8], iterations: Int) -> [UInt8] {
        do {
            let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                          unsafeUncheckedRounds: max(1, iterations))
            return key.withUnsafeBytes { Array($0) }
        } catch {
            // Never equal to a stored 32-byte hash: the check fails, it does not trap.
            return []
        }
    }

    /// True when the two byte strings are equal, in time that depends only on their length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// One user of the server.
public struct UserRecord: Sendable, Equatable {
    /// The user name.
    public var name: String
    /// PBKDF2 iterations.
    public var iterations: Int
    /// The salt.
    public var salt: [UInt8]
    /// PBKDF2-HMAC-SHA256 of the password.
    public var hash: [UInt8]
    /// Projects the user may use besides those they create; `*` grants every project.
    public var grants: [String] = []

    /// A record for `name` with `password` hashed under a fresh random salt.
    public init(name: String, password: String, iterations: Int = 200_000, grants: [String] = []) {
        self.name = name
        self.iterations = iterations
        self.grants = grants
        var generator = SystemRandomNumberGenerator()
        salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        hash = PasswordHash.pbkdf2(password: password, salt: salt, iterations: iterations)
    }

    init(name: String, iterations: Int, salt: [UInt8], hash: [UInt8], grants: [String] = []) {
        self.grants = grants
        self.name = name
        self.iterations = iterations
        self.salt = salt
        self.hash = hash
    }

    /// The line of the users file: `name:pbkdf2-sha256:iterations:salt-hex:hash-hex`, then
    /// `:project,project` when the user is granted projects.
    public var line: String {
        "\(name):pbkdf2-sha256:\(iterations):\(hex(salt)):\(hex(hash))" + (grants.isEmpty ? "" : ":" + grants.joined(separator: ","))
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

func unhex(_ text: Substring) -> [UInt8]? {
    guard text.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
        let next = text.index(index, offsetBy: 2)
        guard let b = UInt8(text[index..<next], radix: 16) else { return nil }
        out.append(b)
        index = next
    }
    return out
}

/// The users file of the server: one `name:pbkdf2-sha256:iterations:salt:hash[:grants]` line
/// per user (`#` starts a comment), where grants is a comma-separated list of projects the user
/// may use besides those they create (`*`: every project). Passwords are checked in constant time; repeated failures for a user
/// are slowed down.
public final class UserStore: CredentialChecker, @unchecked Sendable {
    private let users: [String: UserRecord]
    private let failures = Mutex<[String: Int]>([:])

    /// The users of `records`.
    public init(_ records: [UserRecord]) {
        users = Dictionary(records.map { ($0.name, $0) }, uniquingKeysWith: { _, b in b })
    }

    /// Reads a users file; the error names the line that is wrong.
    public convenience init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ServerError("cannot read the users file '\(path)'")
        }
        try self.init(parsing: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Reads the text of a users file.
    public convenience init(parsing text: String, path: String = "users file") throws {
        var records: [UserRecord] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 5 || parts.count == 6, parts[1] == "pbkdf2-sha256", let iterations = Int(parts[2]), iterations > 0,
                  let salt = unhex(parts[3]), let hash = unhex(parts[4]), hash.count == 32, !parts[0].isEmpty else {
                throw ServerError("\(path) line \(number + 1) is not 'name:pbkdf2-sha256:iterations:salt-hex:hash-hex[:project,project]'")
            }
            let grants = parts.count == 6 ? parts[5].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } : []
            records.append(UserRecord(name: String(parts[0]), iterations: iterations, salt: salt, hash: hash, grants: grants))
        }
        self.init(records)
    }

    /// The names of the users.
    public var names: [String] { users.keys.sorted() }

    /// The projects `user` is granted in the users file (`*`: every project).
    public func grants(of user: String) -> [String] { users[user]?.grants ?? [] }

    public func check(user: String, password: String) -> Bool {
        // Unknown users cost the same work as known ones, so timing does not reveal which exist.
        let record = users[user] ?? UserRecord(name: "", iterations: users.values.first?.iterations ?? 1000, salt: [0], hash: [UInt8](repeating: 0, count: 32))
        let ok = PasswordHash.constantTimeEqual(PasswordHash.pbkdf2(password: password, salt: record.salt, iterations: record.iterations), record.hash)
            && users[user] != nil
        failures.withLock { f in
            // Bounded: guesses at many user names cannot grow it without end.
            if f.count >= 10_000 && f[user] == nil { f.removeAll() }
            f[user] = ok ? nil : (f[user] ?? 0) + 1
        }
        return ok
    }

    /// Slows down guessing: 100 ms per earlier failed login of `user` since its last success, up
    /// to 2 s. The server waits on a timer, never on a login thread.
    public func failureDelayMilliseconds(user: String) -> Int {
        let failures = failures.withLock { $0[user] ?? 0 }
        return min(2_000, 100 * max(0, failures - 1))
    }
}

/// Accepts any user and password (for a server started with --allow-anonymous).
public struct AnyCredentials: CredentialChecker {
    /// A checker that accepts everyone.
    public init() {}
    public func check(user: String, password: String) -> Bool { true }
    /// Anyone, with or without credentials.
    public var acceptsAnonymous: Bool { true }
}

/// An error of the server layer, with a message saying what to do.
public struct ServerError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
