import CLZ4
import Testing
import TrackLog

@Suite("LZ4 through the system liblz4")
struct LZ4Tests {
    @Test("LZ4_compress_default and LZ4_decompress_safe round-trip a buffer")
    func rawRoundTrip() {
        let input = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251 ^ ($0 >> 7)) }
        var compressed = [CChar](repeating: 0, count: Int(LZ4_compressBound(Int32(input.count))))
        let written = input.withUnsafeBytes { src in
            LZ4_compress_default(src.baseAddress!.assumingMemoryBound(to: CChar.self), &compressed, Int32(input.count), Int32(compressed.count))
        }
        #expect(written > 0)
        var output = [UInt8](repeating: 0, count: input.count)
        let read = output.withUnsafeMutableBytes { dst in
            LZ4_decompress_safe(compressed, dst.baseAddress!.assumingMemoryBound(to: CChar.self), written, Int32(input.count))
        }
        #expect(read == Int32(input.count))
        #expect(output == input)
    }

    @Test("the Swift wrapper round-trips and compresses repetitive data")
    func wrapperRoundTrip() throws {
        let input = Array(String(repeating: "loss=0.125 step=42 ", count: 1000).utf8)
        let block = LZ4.compress(input)
        #expect(block.count < input.count / 10)
        #expect(try LZ4.decompress(block, rawCount: input.count) == input)
        #expect(try LZ4.decompress(LZ4.compress([]), rawCount: 0) == [])
    }

    @Test("damaged blocks are errors, never out-of-bounds reads")
    func damaged() {
        let input = Array(String(repeating: "abcdefgh", count: 500).utf8)
        let block = LZ4.compress(input)
        #expect(throws: LZ4.DecompressionError.self) { try LZ4.decompress(Array(block.prefix(block.count / 2)), rawCount: input.count) }
        #expect(throws: LZ4.DecompressionError.self) { try LZ4.decompress(block, rawCount: input.count - 1) }
        #expect(throws: LZ4.DecompressionError.self) { try LZ4.decompress(block, rawCount: -1) }
        #expect(throws: LZ4.DecompressionError.self) { try LZ4.decompress([0xFF, 0xFF, 0xFF], rawCount: 100) }
        // Flip each byte in turn: every outcome is an error or some bytes, never a crash.
        for i in 0..<min(block.count, 64) {
            var broken = block
            broken[i] ^= 0x5A
            _ = try? LZ4.decompress(broken, rawCount: input.count)
        }
    }
}
