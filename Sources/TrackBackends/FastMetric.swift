import TrackModel

/// A `log_trial_metrics` request with one floating-point metric, read straight from the message
/// bytes without building a JSON value: the request pipelined clients send most. Anything else
/// (escapes in strings, nested values, several metrics, an integer metric) returns nil and takes
/// the general path, which gives the same result.
struct FastMetric {
    var trial: String
    var name: String
    var step: Int64?
    var value: Double

    static func parse(_ bytes: [UInt8]) -> FastMetric? {
        bytes.withUnsafeBufferPointer { parse($0) }
    }

    private static func parse(_ b: UnsafeBufferPointer<UInt8>) -> FastMetric? {
        var i = 0
        let n = b.count
        func skipSpace() { while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        /// An ASCII string without escapes or control characters (others take the general path).
        func string() -> String? {
            guard i < n, b[i] == UInt8(ascii: "\"") else { return nil }
            i += 1
            let start = i
            while i < n, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") || b[i] < 0x20 || b[i] >= 0x80 { return nil }
                i += 1
            }
            guard i < n else { return nil }
            let s = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            i += 1
            return s
        }
        /// A number, `null`, or Python's NaN / Infinity / -Infinity: the text of the token.
        func scalar() -> (text: Substring, isNull: Bool)? {
            let start = i
            while i < n, b[i] != UInt8(ascii: ","), b[i] != UInt8(ascii: "}"), b[i] != 0x20, b[i] != 0x0A, b[i] != 0x0D, b[i] != 0x09 {
                let c = b[i]
                guard (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".")
                    || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) else { return nil }
                i += 1
            }
            guard i > start else { return nil }
            let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
            return (Substring(text), text == "null")
        }

        var rpc: String?, trial: String?, step: Int64?, stepSeen = false
        var metric: (String, Double)?
        skipSpace()
        guard i < n, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        while true {
            skipSpace()
            guard let key = string() else { return nil }
            skipSpace()
            guard i < n, b[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            guard i < n else { return nil }
            switch key {
            case "__rpc__":
                guard rpc == nil, let s = string() else { return nil }
                rpc = s
            case "trial":
                guard trial == nil, let s = string() else { return nil }
                trial = s
            case "step":
                guard !stepSeen, let (text, isNull) = scalar() else { return nil }
                stepSeen = true
                if !isNull {
                    guard let v = Int64(text) else { return nil }
                    step = v
                }
            default:
                // One metric, written as a float (an integer metric keeps its type on the general path).
                guard metric == nil, let (text, isNull) = scalar(), !isNull else { return nil }
                let value: Double
                switch text {
                case "NaN": value = .nan
                case "Infinity": value = .infinity
                case "-Infinity": value = -.infinity
                default:
                    guard text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let v = Double(text), v.isFinite else { return nil }
                    value = v
                }
                metric = (key, value)
            }
            skipSpace()
            guard i < n else { return nil }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "}") else { return nil }
            i += 1
            break
        }
        skipSpace()
        guard i == n, rpc == "log_trial_metrics", let trial, let metric else { return nil }
        return FastMetric(trial: trial, name: metric.0, step: step, value: metric.1)
    }
}
