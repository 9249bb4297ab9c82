import OrderedCollections

/// JSON in and out, as Python's `json` module reads and writes it.
///
/// - Object keys keep their order; a repeated key keeps its first position and its last value
///   (as a Python dict built by `json.loads`).
/// - `NaN`, `Infinity` and `-Infinity` are read and written as bare tokens.
/// - Integers that fit in 64 bits stay integers; other numbers become doubles.
public enum JSON {
    /// How deep arrays and objects may nest before the parser refuses the input.
    public static let nestingDepthMax = 512

    // MARK: - Decoding

    /// Parses `text` as one JSON value.
    public static func decode(_ text: String) throws(ModelError) -> Value {
        try decode(Array(text.utf8))
    }

    /// Parses UTF-8 `bytes` as one JSON value.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ModelError) -> Value {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { buffer throws(ModelError) in
            try decode(buffer)
        }
    }

    /// Parses UTF-8 `buffer` as one JSON value.
    public static func decode(_ buffer: UnsafeBufferPointer<UInt8>) throws(ModelError) -> Value {
        var parser = Parser(bytes: buffer)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < buffer.count {
            throw parser.error("unexpected text after the JSON value")
        }
        return value
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        func error(_ what: String) -> ModelError {
            var line = 1
            var column = 1
            for i in 0..<min(index, bytes.count) {
                if bytes[i] == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
            }
            return ModelError(.malformedJSON, "malformed JSON at line \(line), column \(column) (byte \(index)): \(what)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func expectWord(_ word: StaticString) throws(ModelError) {
            let count = word.utf8CodeUnitCount
            guard index + count <= bytes.count else { throw error("expected '\(word)'") }
            let start = word.utf8Start
            for i in 0..<count where bytes[index + i] != start[i] {
                throw error("expected '\(word)'")
            }
            index += count
        }

        mutating func parseValue(depth: Int) throws(ModelError) -> Value {
            guard index < bytes.count else { throw error("unexpected end of input, a value was expected") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
            case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
            case UInt8(ascii: "n"): try expectWord("null"); return .null
            case UInt8(ascii: "N"): try expectWord("NaN"); return .double(.nan)
            case UInt8(ascii: "I"): try expectWord("Infinity"); return .double(.infinity)
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "I"):
                index += 1
                try expectWord("Infinity")
                return .double(-.infinity)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character '\(Unicode.Scalar(bytes[index]))'")
            }
        }

        mutating func parseObject(depth: Int) throws(ModelError) -> Value {
            guard depth <= JSON.nestingDepthMax else { throw error("nesting deeper than \(JSON.nestingDepthMax) levels") }
            index += 1
            var object = ValueObject()
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                    throw error("expected a string key in an object")
                }
                let key = try parseString()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                index += 1
                skipWhitespace()
                object[key] = try parseValue(depth: depth)
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of input inside an object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
                throw error("expected ',' or '}' in an object")
            }
        }

        mutating func parseArray(depth: Int) throws(ModelError) -> Value {
            guard depth <= JSON.nestingDepthMax else { throw error("nesting deeper than \(JSON.nestingDepthMax) levels") }
            index += 1
            var array: [Value] = []
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
            while true {
                skipWhitespace()
                array.append(try parseValue(depth: depth))
                skipWhitespace()
                guard index < bytes.count else { throw error("unexpected end of input inside a list") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(array) }
                throw error("expected ',' or ']' in a list")
            }
        }

        mutating func parseHex4() throws(ModelError) -> UInt32 {
            guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var result: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let digit: UInt32
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
                default: throw error("bad hex digit in a \\u escape")
                }
                result = result << 4 | digit
                index += 1
            }
            return result
        }

        mutating func parseString() throws(ModelError) -> String {
            index += 1  // opening quote
            let start = index
            // Fast path: no escapes.
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: bytes[start..<index])
                    index += 1
                    return String(decoding: slice, as: UTF8.self)
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { throw error("control character in a string") }
                index += 1
            }
            var scratch = Array(bytes[start..<index])
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return String(decoding: scratch, as: UTF8.self)
                }
                if c < 0x20 { throw error("control character in a string") }
                if c != UInt8(ascii: "\\") {
                    scratch.append(c)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { break }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scratch.append(0x22)
                case UInt8(ascii: "\\"): scratch.append(0x5C)
                case UInt8(ascii: "/"): scratch.append(0x2F)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0C)
                case UInt8(ascii: "n"): scratch.append(0x0A)
                case UInt8(ascii: "r"): scratch.append(0x0D)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    // A lone surrogate (half of a UTF-16 pair) cannot be held by a Swift String:
                    // it is refused rather than stored changed.
                    func lone(_ half: UInt32) -> ModelError {
                        error("a lone surrogate \\u\(String(half, radix: 16, uppercase: true)) (half of a UTF-16 pair) cannot be stored exactly; send the whole character or a surrogate pair")
                    }
                    if (0xD800...0xDBFF).contains(code) {
                        // A high surrogate must be followed by a low one.
                        guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { throw lone(code) }
                        index += 2
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw lone(code) }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(code) {
                        throw lone(code)
                    }
                    let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                    scratch.append(contentsOf: Array(String(Character(scalar)).utf8))
                default:
                    throw error("unknown escape '\\\(Unicode.Scalar(escape))' in a string")
                }
            }
            throw error("unterminated string")
        }

        mutating func parseNumber() throws(ModelError) -> Value {
            let start = index
            var isInteger = true
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digitsStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            if index == digitsStart { throw error("a number needs digits") }
            if bytes[digitsStart] == UInt8(ascii: "0") && index - digitsStart > 1 {
                throw error("a number may not start with 0")
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                let fractionStart = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                if index == fractionStart { throw error("a number needs digits after '.'") }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                let exponentStart = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                if index == exponentStart { throw error("a number needs digits in its exponent") }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .int(integer) }
            guard let double = Double(text) else { throw error("bad number '\(text)'") }
            return .double(double)
        }
    }

    // MARK: - Encoding

    /// Writes `value` as JSON. `pretty` indents by `indent` spaces as `json.dumps(indent=...)` does;
    /// otherwise the output uses Python's default separators (`", "` and `": "`) when
    /// `pythonSeparators` is true and none when false. Non-ASCII text is written as UTF-8.
    public static func encode(_ value: Value, pretty: Bool = false, indent: Int = 2, pythonSeparators: Bool = false) -> String {
        var out = ""
        let writer = Writer(pretty: pretty, indent: indent, pythonSeparators: pythonSeparators)
        writer.write(value, depth: 0, into: &out)
        return out
    }

    /// The JSON text of a double the way Python's `repr` writes it (`1.0`, `0.1`, `1e-05`, `NaN`).
    public static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        var text = d.description
        // Swift writes 1e-05 as "1e-05" like Python, but writes 5e-324 etc. the same way too.
        // (Scanned as UTF-8 bytes: the text is ASCII, and Character indices cost far more.)
        if let e = text.utf8.firstIndex(of: UInt8(ascii: "e")) {
            // Python always signs the exponent: 1e+16.
            let after = text.utf8.index(after: e)
            let sign = text.utf8[after]
            if sign != UInt8(ascii: "-") && sign != UInt8(ascii: "+") { text.insert("+", at: after) }
        }
        return text
    }

    /// Appends `formatDouble(d)`'s UTF-8 to `bytes` without building a String (the digits go
    /// straight from the standard library's formatter into the array): for writers of many lines.
    public static func appendDouble(_ d: Double, to bytes: inout [UInt8]) {
        guard d.isFinite else { bytes.append(contentsOf: formatDouble(d).utf8); return }
        var sink = ASCIISink()
        swap(&sink.bytes, &bytes)
        let start = sink.bytes.count
        d.write(to: &sink)
        swap(&sink.bytes, &bytes)
        // Python always signs the exponent: 1e+16.
        if let e = bytes[start...].firstIndex(of: UInt8(ascii: "e")), e + 1 < bytes.count,
           bytes[e + 1] != UInt8(ascii: "-") && bytes[e + 1] != UInt8(ascii: "+") {
            bytes.insert(UInt8(ascii: "+"), at: e + 1)
        }
    }

    /// Receives a number's digits as ASCII bytes (`_writeASCII`, which `Double.write(to:)` uses).
    private struct ASCIISink: TextOutputStream {
        var bytes: [UInt8] = []
        mutating func write(_ string: String) { bytes.append(contentsOf: string.utf8) }
        mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) { bytes.append(contentsOf: buffer) }
    }

    private struct Writer {
        let pretty: Bool
        let indent: Int
        let pythonSeparators: Bool

        func newline(depth: Int, into out: inout String) {
            out.append("\n")
            out.append(String(repeating: " ", count: depth * indent))
        }

        func write(_ value: Value, depth: Int, into out: inout String) {
            switch value {
            case .null: out.append("null")
            case .bool(let b): out.append(b ? "true" : "false")
            case .int(let i): out.append(String(i))
            case .double(let d): out.append(JSON.formatDouble(d))
            case .string(let s): JSON.writeString(s, into: &out)
            case .array(let a):
                if a.isEmpty { out.append("[]"); return }
                out.append("[")
                for (i, element) in a.enumerated() {
                    if i > 0 { out.append(pretty ? "," : (pythonSeparators ? ", " : ",")) }
                    if pretty { newline(depth: depth + 1, into: &out) }
                    write(element, depth: depth + 1, into: &out)
                }
                if pretty { newline(depth: depth, into: &out) }
                out.append("]")
            case .object(let o):
                if o.isEmpty { out.append("{}"); return }
                out.append("{")
                var first = true
                for (key, element) in o {
                    if !first { out.append(pretty ? "," : (pythonSeparators ? ", " : ",")) }
                    first = false
                    if pretty { newline(depth: depth + 1, into: &out) }
                    JSON.writeString(key, into: &out)
                    out.append(pretty || pythonSeparators ? ": " : ":")
                    write(element, depth: depth + 1, into: &out)
                }
                if pretty { newline(depth: depth, into: &out) }
                out.append("}")
            }
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out.append("\"")
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case "\u{08}": out.append("\\b")
            case "\u{0C}": out.append("\\f")
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append("\"")
    }
}
