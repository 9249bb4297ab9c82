import Foundation
import Testing
import TrackModel

@Suite("JSON in and out, as Python's json module")
struct JSONTests {
    @Test("key order is kept through a round trip")
    func keyOrder() throws {
        let text = #"{"zeta": 1, "alpha": {"b": 2, "a": [1, 2.5, "x", null, true]}, "mid": false}"#
        let value = try JSON.decode(text)
        #expect(Array(value.objectValue!.keys) == ["zeta", "alpha", "mid"])
        #expect(Array(value["alpha"]!.objectValue!.keys) == ["b", "a"])
        let again = try JSON.decode(JSON.encode(value))
        #expect(again == value)
        #expect(JSON.encode(value) == #"{"zeta":1,"alpha":{"b":2,"a":[1,2.5,"x",null,true]},"mid":false}"#)
        #expect(JSON.encode(value, pythonSeparators: true) == #"{"zeta": 1, "alpha": {"b": 2, "a": [1, 2.5, "x", null, true]}, "mid": false}"#)
    }

    @Test("NaN, Infinity and -Infinity are read and written as Python writes them")
    func nonFinite() throws {
        let value = try JSON.decode(#"{"loss": NaN, "min": Infinity, "max": -Infinity, "list": [NaN, -Infinity]}"#)
        #expect(value["loss"]?.doubleValue?.isNaN == true)
        #expect(value["min"] == .double(.infinity))
        #expect(value["max"] == .double(-.infinity))
        let text = JSON.encode(value, pythonSeparators: true)
        #expect(text == #"{"loss": NaN, "min": Infinity, "max": -Infinity, "list": [NaN, -Infinity]}"#)
        #expect(try JSON.decode(text) == value)
    }

    @Test("ints and floats stay distinct; doubles print like Python's repr")
    func numbers() throws {
        #expect(try JSON.decode("1") == .int(1))
        #expect(try JSON.decode("1.0") == .double(1.0))
        #expect(try JSON.decode("-0.0") == .double(-0.0))
        #expect(try JSON.decode("1e-05") == .double(1e-05))
        #expect(try JSON.decode("123456789012345678901234567890") == .double(1.2345678901234568e29))
        for (d, text) in [(1.0, "1.0"), (0.1, "0.1"), (1e-05, "1e-05"), (1e+300, "1e+300"), (12345678.0, "12345678.0"), (1e16, "1e+16"), (-2.5, "-2.5")] {
            #expect(JSON.formatDouble(d) == text)
        }
    }

    @Test("escapes and unicode, surrogate pairs included")
    func strings() throws {
        let value = try JSON.decode(#"["h\u00e9llo \ud83d\ude80", "tab\tnew\nline \"q\" \\ \/"]"#)
        #expect(value.arrayValue?[0] == "héllo 🚀")
        #expect(value.arrayValue?[1] == "tab\tnew\nline \"q\" \\ /")
        #expect(try JSON.decode(JSON.encode(value)) == value)
        #expect(JSON.encode("\u{01}") == #""\u0001""#)
    }

    @Test("LoneSurrogateIsRefused: a lone \\ud800 or \\udc00 is an error naming it, never stored as U+FFFD", arguments: [
        #""lone \ud800 x""#, #""lone \udfff""#, #""\ud800\u0041""#, #""end \ud83d""#, #"{"name": "\udc00"}"#,
    ])
    func loneSurrogate(_ text: String) {
        #expect { try JSON.decode(text) } throws: { error in
            guard let e = error as? ModelError else { return false }
            return e.code == .malformedJSON && e.message.contains("lone surrogate")
        }
    }

    @Test("a repeated key keeps its first position and its last value, like a Python dict")
    func duplicateKeys() throws {
        let value = try JSON.decode(#"{"a": 1, "b": 2, "a": 3}"#)
        #expect(Array(value.objectValue!.keys) == ["a", "b"])
        #expect(value["a"] == 3)
    }

    @Test("malformed JSON is an error with a position, never a crash", arguments: [
        "", "{", "[1,", #"{"a" 1}"#, #"{"a": }"#, "tru", "01", "1.", "1e", "-", #""unterminated"#, "[1] x",
        #""bad \q escape""#, #""\u12""#, "{1: 2}", "nul", "Infinit", "-Inf", "\u{01}",
        String(repeating: "[", count: 10_000),
    ])
    func malformed(_ text: String) {
        #expect(throws: ModelError.self) { try JSON.decode(text) }
        do { _ = try JSON.decode(text) } catch {
            #expect(error.code == .malformedJSON)
            #expect(error.message.contains("line"))
        }
    }

    @Test("pretty output is valid and round-trips")
    func pretty() throws {
        let value: Value = ["a": [1, 2], "b": ["c": nil], "e": [], "f": [:]]
        let text = JSON.encode(value, pretty: true)
        #expect(text.contains("\n  \"a\": [\n    1,"))
        #expect(try JSON.decode(text) == value)
    }

    @Test("the track-json reference files parse (bare Infinity tokens included)", arguments: ["track-json/small.json", "track-json/medium.json"])
    func referenceFiles(_ name: String) throws {
        let value = try SharedData.load(name)
        let projects = try #require(value.arrayValue)
        #expect(!projects.isEmpty)
        #expect(try JSON.decode(JSON.encode(value)) == value)
    }

    @Test("appendDouble writes the bytes of formatDouble, exponent signs, NaN and infinities included")
    func appendDoubleMatchesFormatDouble() {
        let samples: [Double] = [0, -0.0, 1, 0.1, 1e16, 1e-5, 5e-324, 1.7976931348623157e308, 123456789.125, -2.5e-7, .nan, .infinity, -.infinity]
        var random = SeededRandom(seed: 7)
        let values = samples + (0..<1000).map { _ in Double(bitPattern: random.next()) }
        for v in values {
            var bytes: [UInt8] = Array("x=".utf8)
            JSON.appendDouble(v, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "x=" + JSON.formatDouble(v), "\(v)")
        }
    }
}
