#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A backend address, parsed as `track`'s `parse_uri`:
/// `scheme://user:pass@host:port/path?k=v&k2=v2#fragment`, plus the file forms
/// `file:relative.json`, `file://relative.json` and `file:///absolute/path`.
public struct TrackURI: Sendable, Equatable, CustomStringConvertible {
    /// The text the URI was parsed from.
    public var text: String
    /// The scheme, lowercased (`file`, `socket`, `ephemeral`); empty when the text has none.
    public var scheme: String
    /// The user name of the authority, if any.
    public var username: String?
    /// The password of the authority, if any.
    public var password: String?
    /// The host of the authority (`track` calls it `address`); empty when there is no authority.
    public var host: String
    /// The port, if one is given.
    public var port: Int?
    /// The path after the authority (or after `scheme:` when there is no authority).
    public var path: String
    /// The query options in order.
    public var query: [(key: String, value: String)]
    /// The fragment after `#`, if any.
    public var fragment: String

    /// The value of query option `key`, if given.
    public func option(_ key: String) -> String? { query.last { $0.key == key }?.value }

    /// The file-system path a `file:` URI (or a bare path) names: `file:rel` and `file://rel/x`
    /// are relative, `file:///abs` is absolute. (`track` drops the host part of `file://a/b`;
    /// here it is kept, so `file://runs/db` is `runs/db`.)
    public var filePath: String { host.isEmpty ? path : host + path }

    /// Parses `text`; throws an error quoting it when it is malformed.
    public init(_ text: String) throws(ModelError) {
        self.text = text
        func fail(_ why: String) -> ModelError {
            ModelError(.malformedURI, "malformed URI '\(text)': \(why)")
        }
        guard !text.isEmpty else { throw fail("it is empty; give one like 'file://path/to/db' or 'ephemeral://'") }
        if text.contains(where: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            throw fail("it contains white space")
        }
        var rest = Substring(text)
        scheme = ""
        // A scheme is letters, digits, '+', '-', '.', starting with a letter, before ':'.
        if let colon = rest.firstIndex(of: ":") {
            let candidate = rest[..<colon]
            let isScheme = !candidate.isEmpty && candidate.first!.isLetter && candidate.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
            if isScheme {
                scheme = candidate.lowercased()
                rest = rest[rest.index(after: colon)...]
            } else if candidate.isEmpty {
                throw fail("the scheme before ':' is empty")
            } else if !candidate.contains("/") {
                throw fail("'\(candidate)' is not a valid scheme (letters, digits, '+', '-', '.'; starting with a letter)")
            }
        }
        fragment = ""
        if let hashMark = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hashMark)...])
            rest = rest[..<hashMark]
        }
        query = []
        if let questionMark = rest.firstIndex(of: "?") {
            let options = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
            for item in options.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty else {
                    throw fail("query option '\(item)' is not of the form key=value")
                }
                query.append((String(parts[0]), String(parts[1])))
            }
        }
        username = nil
        password = nil
        host = ""
        port = nil
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            var authority = rest[..<slash]
            rest = rest[slash...]
            if let at = authority.lastIndex(of: "@") {
                let userInfo = authority[..<at]
                authority = authority[authority.index(after: at)...]
                if let colon = userInfo.firstIndex(of: ":") {
                    username = String(userInfo[..<colon])
                    password = String(userInfo[userInfo.index(after: colon)...])
                } else {
                    username = String(userInfo)
                }
            }
            if authority.hasPrefix("[") {
                // [::1]:port
                guard let close = authority.firstIndex(of: "]") else { throw fail("an IPv6 host is missing its ']'") }
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                if !after.isEmpty {
                    guard after.hasPrefix(":") else { throw fail("unexpected '\(after)' after the host") }
                    port = try TrackURI.parsePort(after.dropFirst(), fail: fail)
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                port = try TrackURI.parsePort(authority[authority.index(after: colon)...], fail: fail)
            } else {
                host = String(authority)
            }
        }
        path = String(rest)
    }

    private static func parsePort(_ text: Substring, fail: (String) -> ModelError) throws(ModelError) -> Int {
        guard let port = Int(text), (0...65535).contains(port) else {
            throw fail("port '\(text)' is not a number from 0 to 65535")
        }
        return port
    }

    public static func == (lhs: TrackURI, rhs: TrackURI) -> Bool { lhs.text == rhs.text }

    /// The URI as given, with any password replaced by `***` (safe to log).
    public var description: String {
        guard let password, !password.isEmpty else { return text }
        return text.replacing(":\(password)@", with: ":***@")
    }
}

