/// A frame ready to write: header bytes plus stored payload.
public struct EncodedFrame: Sendable {
    /// The header (with its checksum).
    public var header: FrameHeader
    /// Header bytes then stored payload bytes: exactly what goes on disk.
    public var bytes: [UInt8]
    /// Subject keys the frame touches.
    public var subjects: [String]
}

/// Making and reading frames (header + one LZ4 block).
public enum Frame {
    /// Compresses the encoder's payload into a frame.
    public static func seal(_ encoder: FrameEncoder, verify records: (any RecordCodec)? = nil) -> EncodedFrame {
        make(payload: encoder.buffer.bytes, firstSequence: encoder.firstSequence, eventCount: encoder.eventCount,
             minHLC: encoder.minHLC, maxHLC: encoder.lastHLC, subjects: encoder.subjects, pointsOnly: encoder.pointsOnly, verify: records)
    }

    /// Compresses `payload` into a frame (stored raw when LZ4 would not make it smaller). With
    /// `verify`, decodes the frame with that codec before returning it: the pair of the check done
    /// on every read.
    public static func make(payload: UnsafeRawBufferPointer, firstSequence: UInt64, eventCount: UInt32, minHLC: HLC, maxHLC: HLC,
                            subjects: [String], pointsOnly: Bool = false, verify records: (any RecordCodec)? = nil) -> EncodedFrame {
        let compressed = LZ4.compress(payload)
        let useLZ4 = compressed.count < payload.count
        let storedCount = useLZ4 ? compressed.count : payload.count
        let flags = (useLZ4 ? FrameHeader.flagLZ4 : 0) | (pointsOnly && eventCount > 0 ? FrameHeader.flagPointsOnly : 0)
        var header = FrameHeader(flags: flags, rawBytes: UInt32(payload.count), storedBytes: UInt32(storedCount),
                                 firstSequence: firstSequence, eventCount: eventCount, minHLC: minHLC, maxHLC: maxHLC)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(FrameHeader.sizeBytes + storedCount)
        if useLZ4 {
            compressed.withUnsafeBytes { stored in bytes.append(contentsOf: header.encode(payload: stored)) }
            bytes.append(contentsOf: compressed)
        } else {
            bytes.append(contentsOf: header.encode(payload: payload))
            bytes.append(contentsOf: payload)
        }
        header.crc = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: FrameHeader.crcOffset, as: UInt32.self)) }
        if let records {
            // Invariant: what is written reads back (tests; the writer calls `check` and fails instead).
            let ok = bytes.withUnsafeBytes { raw in (try? Frame.decode(raw, at: 0, path: "(frame being written)", records: records)) != nil }
            precondition(ok, "a frame failed to decode right after encoding")
        }
        return EncodedFrame(header: header, bytes: bytes, subjects: subjects)
    }

    /// Reads `frame` back as a reader would (checksum, decompression, every record), so that a
    /// frame no reader could read is never written, let alone acknowledged. Throws
    /// `corruptFrame` naming `path` when it does not read.
    public static func check(_ frame: EncodedFrame, path: String, records: any RecordCodec) throws(LogError) {
        let result = frame.bytes.withUnsafeBytes { raw in
            Result { () throws(LogError) in
                try Frame.read(raw, at: 0, path: path, checksumVerified: false) { (payload, header) throws(LogError) in
                    try FrameDecoder.validate(payload, header: header, records: records)
                }
            }
        }
        if case .failure(let error) = result {
            throw LogError(.corruptFrame, "a frame of events \(frame.header.firstSequence)..<\(frame.header.endSequence) would not read back "
                           + "(\(error.message)); it was not written", path: path)
        }
    }

    /// The payload of the frame whose bytes (header then stored payload) are `bytes`,
    /// decompressed, after checking its checksum.
    /// `checksumVerified` skips the CRC when the caller has just checked it (a segment scan).
    public static func payload(_ bytes: UnsafeRawBufferPointer, header: FrameHeader, path: String, offset: Int64,
                               checksumVerified: Bool = false) throws(LogError) -> [UInt8] {
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[0..<FrameHeader.sizeBytes])
        let stored = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.sizeBytes..<FrameHeader.sizeBytes + Int(header.storedBytes)])
        guard checksumVerified || FrameHeader.checksumMatches(header: headerBytes, payload: stored) else {
            throw LogError(.corruptFrame, "frame fails its CRC32C check", path: path, offset: offset)
        }
        if header.flags & FrameHeader.flagLZ4 == 0 { return Array(stored) }
        do {
            return try LZ4.decompress(stored, rawCount: Int(header.rawBytes))
        } catch {
            throw LogError(.corruptFrame, "frame payload does not decompress: \(error.message)", path: path, offset: offset)
        }
    }

    /// Decodes the frame at the start of `bytes` (which must hold all of it), checking its CRC
    /// unless `checksumVerified` says the caller just did; `records` reads the store's records.
    public static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int64, path: String, checksumVerified: Bool = false,
                              records: any RecordCodec) throws(LogError) -> DecodedFrame {
        try read(bytes, at: offset, path: path, checksumVerified: checksumVerified) { (payload, header) throws(LogError) in
            try FrameDecoder.decode(payload, header: header, records: records)
        }
    }

    /// Checks the header, the length and the checksum of the frame at the start of `bytes`,
    /// decompresses its payload and runs `body` on it; `body`'s errors name `path` and `offset`.
    private static func read<R>(_ bytes: UnsafeRawBufferPointer, at offset: Int64, path: String, checksumVerified: Bool,
                                _ body: (UnsafeRawBufferPointer, FrameHeader) throws(LogError) -> R) throws(LogError) -> R {
        let header: FrameHeader
        switch FrameHeader.decode(bytes) {
        case .success(let h): header = h
        case .failure(let problem): throw LogError(.corruptFrame, "not a frame header: \(problem.problem)", path: path, offset: offset)
        }
        guard bytes.count >= header.frameBytes else {
            throw LogError(.corruptFrame, "frame runs past the end of the data", path: path, offset: offset)
        }
        let payload = try Frame.payload(bytes, header: header, path: path, offset: offset, checksumVerified: checksumVerified)
        let result = payload.withUnsafeBytes { raw in Result { () throws(LogError) in try body(raw, header) } }
        switch result {
        case .success(let value): return value
        case .failure(let error):
            var e = error
            e.path = path
            e.offset = offset
            e.message += " (in the frame)"
            throw e
        }
    }
}
