import Foundation
import Testing
import TrackFuzzTargets

/// Issue 23, point 9: without a sanitizer build, every decoder is fed the committed seed corpus
/// (Fuzz/corpus), every crash input ever found (Fuzz/regressions) and seeded mutations of them.
/// A trap fails the whole test run, which is the point.
@Suite("fuzz corpus replay")
struct CorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz").path

    /// The files of `Fuzz/<folder>/<target>`, sorted by name.
    static func inputs(_ folder: String, _ target: FuzzTarget) -> [[UInt8]] {
        let path = fuzzDirectory + "/\(folder)/\(target.rawValue)"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { FileManager.default.contents(atPath: path + "/" + $0).map(Array.init) }
    }

    /// A mutation of `input` in libFuzzer's manner: flipped bits, changed or inserted bytes,
    /// erased or repeated ranges, interesting integers.
    static func mutate(_ input: [UInt8], _ random: inout SplitMix) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << (random.next() % 8))
            case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
            case 3 where bytes.count > 1:
                let end = min(bytes.count, position + 1 + Int(random.next() % 64))
                bytes.removeSubrange(position..<end)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, position + 1 + Int(random.next() % 64))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            default:
                let interesting: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, UInt64.max, UInt64(Int64.max)]
                let value = interesting[Int(random.next() % UInt64(interesting.count))]
                let width = [1, 2, 4, 8][Int(random.next() % 4)]
                for i in 0..<width where position + i < bytes.count { bytes[position + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            }
        }
        return bytes
    }

    @Test("every decoder takes the committed corpus, the crash inputs and seeded mutations without a trap", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        let corpus = Self.inputs("corpus", target)
        let regressions = Self.inputs("regressions", target)
        #expect(!corpus.isEmpty, "Fuzz/corpus/\(target.rawValue) is empty (Fuzz/make-seeds.sh writes it)")
        let feeder = FuzzFeeder(target: target)
        for input in corpus + regressions { feeder.feed(input) }
        var random = SplitMix(seed: 0x5EED_0000 + UInt64(target.rawValue.utf8.count))
        let seeds = corpus + regressions
        let mutations = 3_000
        for _ in 0..<mutations {
            feeder.feed(Self.mutate(seeds[Int(random.next() % UInt64(seeds.count))], &random))
        }
    }
}

/// A small seeded generator (SplitMix64): the same mutations on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
