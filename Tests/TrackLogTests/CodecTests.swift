import Foundation
import Testing
@testable import TrackLog
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
        #expect(records.allSatisfy { LogRecord.kindNames.contains($0.kindName) }, "kindNames lists every kind")
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

    /// A payload with every shape of point the tight loop meets or must hand back: steps and no
    /// steps, continued points, ticks small and large (also before a continued point), series ids
    /// of one and two bytes, large step deltas, values of every width, and records between.
    private func mixedPayload() throws -> (payload: [UInt8], header: FrameHeader) {
        let encoder = FrameEncoder(firstSequence: 7)
        var clock = HybridClock()
        _ = clock.tick()
        let records = try sampleRecords()
        var series: [Int32] = []
        for i in 0..<200 { series.append(encoder.seriesID(subject: "s\(i % 3)_0", name: "m\(i)")) }
        var state: UInt64 = 1
        for i in 0..<3000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let r = state >> 33
            if r % 97 == 0 { encoder.appendRecord(records[Int(r) % records.count], hlc: clock.tick()); continue }
            let hlc = r % 5 == 0 ? clock.tick(wallMicroseconds: clock.last.microseconds + r % 100_000) : clock.next()
            let s = series[Int(r % 7 == 0 ? r % 200 : r % 4)]
            let value: Double
            switch r % 3 {
            case 0: value = Double(i)
            case 1: value = Double(bitPattern: state)
            default: value = 2.3 / Double(i + 1)
            }
            let step: Int64? = r % 11 == 0 ? nil : (r % 13 == 0 ? Int64(bitPattern: state) : Int64(i))
            encoder.appendPoint(series: s, step: step, value: value, hlc: hlc, continues: false)
            if r % 4 == 1 { encoder.appendPoint(series: series[Int(r % 150)], step: step, value: value / 3, hlc: hlc, continues: true) }
        }
        let payload = encoder.buffer.toArray()
        let header = FrameHeader(flags: 0, rawBytes: UInt32(payload.count), storedBytes: UInt32(payload.count), firstSequence: 7,
                                 eventCount: encoder.eventCount, minHLC: encoder.minHLC, maxHLC: encoder.lastHLC)
        return (payload, header)
    }

    /// Everything a decode gives, as text: events (points by bits) and the dictionary, or the error.
    private func outcome(_ payload: [UInt8], _ header: FrameHeader, tightLoop: Bool) -> String {
        do {
            let frame = try payload.withUnsafeBytes { try FrameDecoder.decode($0, header: header, records: .track, tightLoop: tightLoop) }
            let events = frame.events.map { e -> String in
                switch e.kind {
                case .point(let series, let step, let value): "\(e.sequence) \(e.hlc.rawValue) p\(series) \(step.map(String.init) ?? "-") \(value.bitPattern)"
                case .record(let r): "\(e.sequence) \(e.hlc.rawValue) \(r)"
                }
            }
            return "\(frame.subjects) \(frame.keys) \(frame.series.map { "\($0.subject)/\($0.key)" })\n" + events.joined(separator: "\n")
        } catch {
            return "error: \(error)"
        }
    }

    @Test("the tight loop for runs of points decodes what the general loop decodes, and refuses what it refuses")
    func tightLoopMatchesGeneralLoop() throws {
        let (payload, header) = try mixedPayload()
        let general = outcome(payload, header, tightLoop: false)
        #expect(!general.hasPrefix("error"), "\(general.prefix(300))")
        #expect(outcome(payload, header, tightLoop: true) == general)
        // Headers that declare fewer or more events than the payload holds.
        for delta in [-1, 1, -1000] {
            var wrong = header
            wrong.eventCount = UInt32(Int(header.eventCount) + delta)
            let expected = outcome(payload, wrong, tightLoop: false)
            #expect(expected.hasPrefix("error"))
            #expect(outcome(payload, wrong, tightLoop: true) == expected)
        }
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for trial in 0..<400 {
            var mutated = payload
            switch trial % 2 {
            case 0:
                for _ in 0...trial % 3 { mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
            default: mutated = Array(mutated.prefix(Int.random(in: 0..<mutated.count, using: &generator)))
            }
            let expected = outcome(mutated, header, tightLoop: false)
            if expected.hasPrefix("error") { refused += 1 }
            #expect(outcome(mutated, header, tightLoop: true) == expected, "mutation \(trial)")
        }
        #expect(refused > 200)
    }

    @Test("appending an array of points encodes exactly as appending them one at a time")
    func arrayAppendEncodesAsSinglePoints() throws {
        let n = 5000
        let steps = (0..<n).map { Int64($0 * 2 - 7) }
        let values = (0..<n).map { (i: Int) -> Double in 2.3 / Double(i + 1) + Double(i % 7) / 1000 }
        let now = HybridClock.wallMicroseconds(precise: true)
        for withSteps in [true, false] {
            let bulk = FrameEncoder(firstSequence: 3)
            let s = bulk.seriesID(subject: "a_0", name: "loss")
            _ = bulk.seriesID(subject: "a_0", name: "acc")
            bulk.appendPoint(series: 1, step: 5, value: 1, hlc: HLC(microseconds: now - 2_000_000), continues: false)
            var clock = HybridClock(after: HLC(microseconds: now - 1_000_000))
            var untilRead = 0
            var done = 0
            while done < n {
                // A small byte limit: the call stops early, as the writer's frames do.
                done += steps.withUnsafeBufferPointer { st in values.withUnsafeBufferPointer { v in
                    bulk.appendPoints(series: s, steps: withSteps ? st.baseAddress! + done : nil, values: v.baseAddress! + done, count: n - done,
                                      byteLimit: bulk.buffer.count + 3000, clock: &clock, appendsUntilClockRead: &untilRead, appendsPerClockRead: 64)
                } }
            }
            // The same points one at a time, at the timestamps the bulk call gave them.
            let header = FrameHeader(flags: 0, rawBytes: UInt32(bulk.buffer.count), storedBytes: UInt32(bulk.buffer.count), firstSequence: 3,
                                     eventCount: bulk.eventCount, minHLC: bulk.minHLC, maxHLC: bulk.lastHLC)
            let decoded = try bulk.buffer.toArray().withUnsafeBytes { try FrameDecoder.decode($0, header: header, records: .track) }
            #expect(decoded.events.count == n + 1)
            let single = FrameEncoder(firstSequence: 3)
            _ = single.seriesID(subject: "a_0", name: "loss")
            _ = single.seriesID(subject: "a_0", name: "acc")
            single.appendPoint(series: 1, step: 5, value: 1, hlc: HLC(microseconds: now - 2_000_000), continues: false)
            for i in 0..<n {
                single.appendPoint(series: s, step: withSteps ? steps[i] : nil, value: values[i], hlc: decoded.events[i + 1].hlc, continues: false)
            }
            #expect(single.buffer.toArray() == bulk.buffer.toArray())
            #expect(single.eventCount == bulk.eventCount && single.minHLC == bulk.minHLC && single.lastHLC == bulk.lastHLC)
            // The clock was read (a jump to wall time) and otherwise advanced by one.
            #expect(bulk.lastHLC.microseconds > now - 100_000)
        }
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
