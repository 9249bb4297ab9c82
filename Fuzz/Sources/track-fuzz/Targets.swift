import Foundation
import TrackBackends
import TrackLog
import TrackModel
import TrackServer

// One binary, one target per decoder, chosen by the environment variable TRACK_FUZZ_TARGET.
// Each target feeds the fuzzer's bytes to a decoder that reads files or messages written by
// someone else; checksums are recomputed first where a file has one, so the input reaches the
// structure behind them. Nothing may trap: every outcome must be a value or a thrown error.

enum Target: String, CaseIterable {
    case frame, segment, index, snapshot, manifest, marker, request
}

nonisolated(unsafe) var target = Target.frame
nonisolated(unsafe) var dispatcher: RPCDispatcher?
nonisolated(unsafe) var session = Session()

/// `bytes` with its trailing CRC32C (of everything before it) recomputed.
func fixingTrailingCRC(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 4 else { return bytes }
    var b = bytes
    let crc = CRC32C.checksum(Array(b[0..<b.count - 4]))
    withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { b[b.count - 4 + i] = $0[i] } }
    return b
}

func run(_ bytes: [UInt8]) {
    switch target {
    case .frame:
        // The payload decoder behind a header that passes: event count from the first bytes.
        guard bytes.count >= 2 else { return }
        let count = UInt32(bytes[0]) | UInt32(bytes[1]) << 8
        let payload = Array(bytes.dropFirst(2))
        let frame = payload.withUnsafeBytes { Frame.make(payload: $0, firstSequence: 7, eventCount: count, minHLC: HLC(rawValue: 1 << 40),
                                                         maxHLC: HLC(rawValue: (1 << 40) + UInt64(count)), trials: []) }
        _ = frame.bytes.withUnsafeBytes { try? Frame.decode($0, at: 0, path: "fuzz") }
        _ = bytes.withUnsafeBytes { try? Frame.decode($0, at: 0, path: "fuzz") }
    case .segment:
        bytes.withUnsafeBytes { raw in
            let scan = SegmentScanner.scan(raw, path: "fuzz")
            for location in scan.frames {
                _ = try? Frame.decode(UnsafeRawBufferPointer(rebasing: raw[Int(location.offset)..<Int(location.endOffset)]), at: location.offset, path: "fuzz",
                                      checksumVerified: true)
            }
        }
    case .index:
        _ = fixingTrailingCRC(bytes).withUnsafeBytes { SegmentIndex.decode($0, path: "fuzz") }
    case .snapshot:
        _ = try? Snapshot.decode(fixingTrailingCRC(bytes), path: "fuzz")
    case .manifest:
        _ = try? Manifest.decode(fixingTrailingCRC(bytes), path: "fuzz")
    case .marker:
        var b = bytes
        if b.count == SyncMarker.sizeBytes {
            let crc = CRC32C.checksum(Array(b[0..<44]))
            withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { b[44 + i] = $0[i] } }
        }
        _ = b.withUnsafeBytes { SyncMarker.decode($0) }
    case .request:
        // A logged-in session over a small in-memory store, fed one message at a time.
        if dispatcher == nil {
            let d = RPCDispatcher(backend: MemoryBackend(), credentials: AnyCredentials())
            _ = d.reply(toMessage: Array(#"{"__rpc__": "authenticate", "username": "fuzz", "password": "x"}"#.utf8), session: &session)
            _ = d.reply(toMessage: Array(#"{"__rpc__": "new_project", "project": "p"}"#.utf8), session: &session)
            _ = d.reply(toMessage: Array(#"{"__rpc__": "new_trial", "trial": {"dtype": "trial", "name": "t", "project_id": "p", "parameters": {}}}"#.utf8), session: &session)
            dispatcher = d
        }
        _ = dispatcher!.reply(toMessage: bytes, session: &session)
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>>>) -> Int32 {
    let name = ProcessInfo.processInfo.environment["TRACK_FUZZ_TARGET"] ?? "frame"
    guard let t = Target(rawValue: name) else {
        FileHandle.standardError.write(Data("track-fuzz: unknown TRACK_FUZZ_TARGET '\(name)'; one of \(Target.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    target = t
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
