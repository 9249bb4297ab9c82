import TrackBackends
import TrackLog
import TrackStore
import TrackModel
import TrackServer

// The decoders of files and messages written by someone else, one fuzz target each: the libFuzzer
// binary (Fuzz/) and the corpus-replay test (Tests/TrackFuzzTests) feed them the same way.
// Checksums are recomputed first where a file has one, so the input reaches the structure behind
// them. Nothing may trap: every outcome must be a value or a thrown error.

/// One decoder to feed.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case frame, segment, index, snapshot, manifest, marker, request
}

/// `bytes` with its trailing CRC32C (of everything before it) recomputed.
func fixingTrailingCRC(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 4 else { return bytes }
    var b = bytes
    let crc = CRC32C.checksum(Array(b[0..<b.count - 4]))
    withUnsafeBytes(of: crc.littleEndian) { for i in 0..<4 { b[b.count - 4 + i] = $0[i] } }
    return b
}

/// Feeds inputs to one target; keeps the state a target needs between inputs (the logged-in
/// server session of `request`). One feeder per thread.
public final class FuzzFeeder {
    /// The decoder fed.
    public let target: FuzzTarget
    private var dispatcher: RPCDispatcher?
    private var session = Session()

    /// A feeder of `target`.
    public init(target: FuzzTarget) { self.target = target }

    /// Decodes `bytes` with the target's decoder; any outcome but a trap is fine.
    public func feed(_ bytes: [UInt8]) {
        switch target {
        case .frame:
            // The payload decoder behind a header that passes: event count from the first bytes.
            guard bytes.count >= 2 else { return }
            let count = UInt32(bytes[0]) | UInt32(bytes[1]) << 8
            let payload = Array(bytes.dropFirst(2))
            let frame = payload.withUnsafeBytes { Frame.make(payload: $0, firstSequence: 7, eventCount: count, minHLC: HLC(rawValue: 1 << 40),
                                                             maxHLC: HLC(rawValue: (1 << 40) + UInt64(count)), subjects: []) }
            _ = frame.bytes.withUnsafeBytes { try? Frame.decode($0, at: 0, path: "fuzz", records: .track) }
            _ = bytes.withUnsafeBytes { try? Frame.decode($0, at: 0, path: "fuzz", records: .track) }
        case .segment:
            bytes.withUnsafeBytes { raw in
                let scan = SegmentScanner.scan(raw, path: "fuzz")
                for location in scan.frames {
                    _ = try? Frame.decode(UnsafeRawBufferPointer(rebasing: raw[Int(location.offset)..<Int(location.endOffset)]), at: location.offset, path: "fuzz",
                                          checksumVerified: true, records: .track)
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
}
