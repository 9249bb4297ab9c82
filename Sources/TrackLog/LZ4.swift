import CLZ4

/// LZ4 block compression (liblz4), the codec of every frame and snapshot.
public enum LZ4 {
    /// The error of a block that is not valid LZ4 or does not decompress to the expected size.
    public struct DecompressionError: Error, Sendable, CustomStringConvertible {
        /// Why the block was refused.
        public var message: String
        public var description: String { message }
    }

    /// The largest input one LZ4 block may hold (`LZ4_MAX_INPUT_SIZE`, about 2 GiB).
    public static let blockInputBytesMax = 0x7E00_0000

    /// The most bytes compressing `count` input bytes may produce.
    public static func compressedBytesBound(_ count: Int) -> Int {
        Int(LZ4_compressBound(Int32(clamping: count)))
    }

    /// Compresses `input` into one LZ4 block.
    public static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(input.count <= blockInputBytesMax, "an LZ4 block holds at most \(blockInputBytesMax) bytes")
        let bound = compressedBytesBound(input.count)
        var output = [UInt8](repeating: 0, count: max(bound, 1))
        let written = output.withUnsafeMutableBytes { out -> Int32 in
            guard let source = input.baseAddress else { return 0 }
            return LZ4_compress_default(source.assumingMemoryBound(to: CChar.self),
                                        out.baseAddress!.assumingMemoryBound(to: CChar.self),
                                        Int32(input.count), Int32(out.count))
        }
        output.removeSubrange(Int(written)...)
        return output
    }

    /// Compresses `input` into one LZ4 block.
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBytes { compress($0) }
    }

    /// Decompresses one LZ4 block that must expand to exactly `rawCount` bytes. Malformed input
    /// throws; it is never read or written out of bounds (`LZ4_decompress_safe`).
    public static func decompress(_ block: UnsafeRawBufferPointer, rawCount: Int) throws(DecompressionError) -> [UInt8] {
        guard rawCount >= 0, rawCount <= blockInputBytesMax else {
            throw DecompressionError(message: "declared raw size \(rawCount) is out of range")
        }
        guard block.count <= Int(Int32.max) else {
            throw DecompressionError(message: "an LZ4 block of \(block.count) bytes is larger than liblz4 takes")
        }
        if rawCount == 0 {
            if block.count == 1 && block[0] == 0 { return [] }
            if block.isEmpty { return [] }
        }
        var output = [UInt8](repeating: 0, count: rawCount)
        let result = output.withUnsafeMutableBytes { out -> Int32 in
            guard let source = block.baseAddress else { return -1 }
            return LZ4_decompress_safe(source.assumingMemoryBound(to: CChar.self),
                                       out.baseAddress?.assumingMemoryBound(to: CChar.self),
                                       Int32(block.count), Int32(out.count))
        }
        guard result == Int32(rawCount) else {
            throw DecompressionError(message: result < 0
                ? "the LZ4 block is malformed (liblz4 error \(result))"
                : "the LZ4 block expands to \(result) bytes, \(rawCount) were declared")
        }
        return output
    }

    /// Decompresses one LZ4 block of exactly `rawCount` bytes.
    public static func decompress(_ block: [UInt8], rawCount: Int) throws(DecompressionError) -> [UInt8] {
        let result = block.withUnsafeBytes { buffer in
            Result { () throws(DecompressionError) in try decompress(buffer, rawCount: rawCount) }
        }
        return try result.get()
    }
}
