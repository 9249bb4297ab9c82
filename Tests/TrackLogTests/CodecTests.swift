import Foundation
import Testing
import TrackLog
@testable import TrackStore
import TrackModel

@Suite("Event codec and frames")
struct CodecTests {
    @Test("every record kind and scalar points round-trip through a frame")
    func roundTrip() throws {
        let records = try sampleRecords()
        let encoder = FrameEncoder(firstSequence: 100)
        var clock = HybridClock()
        for r in records { encoder.appendRecord(r, hlc: clock.tick(precise: true)) }
        let loss = encoder.seriesID(subject: "a_0", name: "loss")
        let acc = encoder.seriesID(subject: "a_0", name: "acc")
        let values: [Double] = [2.3, 2.2999, .nan, .infinity, -0.0, 0, 1e-300, -5]
        for (i, v) in values.enumerated() {
            encoder.appendPoint(series: loss, step: Int64(i * 3 - 2), value: v, hlc: clock.tick(), continues: false)
            encoder.appendPoint(series: acc, step: Int64(i * 3 - 2), value: Double(i), hlc: clock.last, continues: true)
        }
        encoder.appendPoint(series: loss, step: nil, value: 9, hlc: clock.tick(), continues: false)
        let frame = Frame.seal(encoder, verify: .track)
        let decoded = try frame.bytes.withUnsafeBytes { try Frame.decode($0, at: 0, path: "test") }
        #expect(decoded.header.firstSequence == 100)
        #expect(Int(decoded.header.eventCount) == records.count + values.count + 1)
        var recordIndex = 0
        var pointIndex = 0
        var lastHLC = HLC.zero
        var lastSequence: UInt64 = 99
        for e in decoded.events {
            #expect(e.hlc >= lastHLC)
            #expect(e.sequence >= lastSequence)
            lastHLC = e.hlc
            lastSequence = e.sequence
            switch e.kind {
            case .record(let r):
                #expect(r as? LogRecord == records[recordIndex], "record \(recordIndex)")
                recordIndex += 1
            case .point(let series, let step, let value):
                let names = decoded.seriesNames(series)
                if pointIndex < values.count * 2 {
                    let i = pointIndex / 2
                    #expect(step == Int64(i * 3 - 2))
                    if pointIndex % 2 == 0 {
                        #expect(names.name == "loss")
                        #expect(value.bitPattern == values[i].bitPattern)
                    } else {
                        #expect(names.name == "acc" && value == Double(i))
                    }
                } else {
                    #expect(step == nil && value == 9)
                }
                pointIndex += 1
            }
        }
        #expect(recordIndex == records.count)
        #expect(pointIndex == values.count * 2 + 1)
        #expect(decoded.subjects.contains("a_0"))
        #expect(decoded.events.last?.hlc == decoded.header.maxHLC)
        #expect(decoded.header.endSequence == 100 + UInt64(decoded.header.eventCount))
    }

    @Test("a scalar point of a smooth series takes a few bytes")
    func compactPoints() {
        let encoder = FrameEncoder(firstSequence: 0)
        var clock = HybridClock()
        let series = encoder.seriesID(subject: String(repeating: "a", count: 64) + "_0", name: "loss")
        let before = encoder.buffer.count
        var state: UInt64 = 42
        for step in 0..<10_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let noise = Double(state >> 40) / Double(1 << 24) * 0.01
            encoder.appendPoint(series: series, step: Int64(step), value: 2.3 * exp(-Double(step) / 3000) + noise, hlc: clock.tick(), continues: false)
        }
        let perPoint = Double(encoder.buffer.count - before) / 10_000
        #expect(perPoint < 11, "raw bytes per point: \(perPoint)")
        let frame = Frame.seal(encoder)
        #expect(Double(frame.bytes.count) / 10_000 < 11)
    }

    @Test("malformed payloads are errors, never crashes (random and mutated input)")
    func malformedPayloads() throws {
        let encoder = FrameEncoder(firstSequence: 0)
        var clock = HybridClock()
        for r in try sampleRecords() { encoder.appendRecord(r, hlc: clock.tick()) }
        let s = encoder.seriesID(subject: "x_0", name: "m")
        for i in 0..<50 { encoder.appendPoint(series: s, step: Int64(i), value: Double(i) / 7, hlc: clock.tick(), continues: false) }
        let payload = encoder.buffer.toArray()
        let header = FrameHeader(flags: 0, rawBytes: UInt32(payload.count), storedBytes: UInt32(payload.count), firstSequence: 0,
                                 eventCount: encoder.eventCount, minHLC: encoder.minHLC, maxHLC: encoder.lastHLC)
        _ = try payload.withUnsafeBytes { try FrameDecoder.decode($0, header: header, records: .track) }
        var generator = SystemRandomNumberGenerator()
        var errors = 0
        for trial in 0..<3000 {
            var mutated = payload
            switch trial % 3 {
            case 0: mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            case 1: mutated = Array(mutated.prefix(Int.random(in: 0..<mutated.count, using: &generator)))
            default: mutated = (0..<Int.random(in: 0..<200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            do { _ = try mutated.withUnsafeBytes { try FrameDecoder.decode($0, header: header, records: .track) } } catch { errors += 1 }
        }
        #expect(errors > 1000)
    }

    @Test("values of every kind round-trip through the value codec, and depth is bounded")
    func valueCodec() throws {
        let value: Value = ["a": [1, -2, 3.5, "x", nil, true, false, ["deep": [[]]]], "b": .double(.infinity), "c": .int(.min)]
        let buffer = EncodeBuffer()
        ValueCodec.encode(value, into: buffer)
        var reader = ByteReader(buffer.bytes)
        #expect(try ValueCodec.decode(&reader) == value)
        #expect(reader.isAtEnd)
        // 100 nested lists exceed the depth limit.
        let deep = EncodeBuffer()
        for _ in 0..<100 { deep.append(6); deep.appendVarint(1) }
        deep.append(0)
        var deepReader = ByteReader(deep.bytes)
        #expect(throws: LogError.self) { try ValueCodec.decode(&deepReader) }
        // A count larger than the bytes left is refused before allocating.
        let huge = EncodeBuffer()
        huge.append(6); huge.appendVarint(1 << 40)
        var hugeReader = ByteReader(huge.bytes)
        #expect(throws: LogError.self) { try ValueCodec.decode(&hugeReader) }
    }

    @Test("CRC32C of known vectors")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        let split = CRC32C.checksum(Array("56789".utf8), continuing: CRC32C.checksum(Array("1234".utf8)))
        #expect(split == 0xE306_9283)
    }

    @Test("CRC32C: the crc32 instruction and the table agree on every length and alignment")
    func crcHardwareMatchesTable() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { raw in
            for start in 0..<9 {
                for end in stride(from: start, through: raw.count, by: 7) {
                    let piece = UnsafeRawBufferPointer(rebasing: raw[start..<end])
                    #expect(CRC32C.checksum(piece) == CRC32C.tableChecksum(piece), "bytes \(start)..<\(end)")
                    #expect(CRC32C.checksum(piece, continuing: 0xDEAD_BEEF) == CRC32C.tableChecksum(piece, continuing: 0xDEAD_BEEF))
                }
            }
        }
        #expect(CRC32C.tableChecksum(UnsafeRawBufferPointer(start: nil, count: 0)) == 0)
    }

    @Test("the hybrid clock never repeats or goes back, and follows observed timestamps")
    func clock() {
        var c = HybridClock()
        var last = HLC.zero
        for i in 0..<100_000 {
            let t = c.tick(precise: i % 1000 == 0)
            #expect(t > last)
            last = t
        }
        let future = HLC(microseconds: HybridClock.wallMicroseconds(precise: true) + 10_000_000)
        c.observe(future)
        #expect(c.tick() > future)
    }

    @Test("ColumnEdgeDeltas: steps and timestamps whose delta-of-delta is exactly 64, 256 or 2048 (each bucket's top) read back as written")
    func columnEdgeDeltas() throws {
        // Steps logged every 64 (the first delta-of-delta is 64), then the other bucket edges,
        // both signs, and random walks over every bucket.
        var cases: [[Int64]] = [[0, 64, 128, 192], [0, 256, 512], [0, 2048, 4096], [0, -63, -126], [0, -64], [0, -255], [0, -256], [0, -2047], [0, -2048],
                                [0, 65], [0, 257], [0, 2049], [0, Int64(Int32.max)], [0, Int64(Int32.min)], [Int64.min, 0, Int64.max]]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var v: Int64 = 0
            cases.append((0..<50).map { _ in v &+= Int64.random(in: -3000...3000, using: &generator); return v })
        }
        for values in cases {
            var w = BitWriter()
            ColumnCodec.writeIntegers(values, into: &w)
            let bytes = w.finish()
            let read = try bytes.withUnsafeBytes { raw in
                var r = BitReader(raw)
                return try ColumnCodec.readIntegers(values.count, &r)
            }
            #expect(read == values, "\(values.prefix(4))")
        }
    }
}
