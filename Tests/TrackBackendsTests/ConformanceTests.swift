import Testing
import TrackBackends
import TrackConformance
import TrackModel

@Suite("Conformance on ephemeral:// and on a multiplexer of two memory backends")
struct ConformanceTests {
    @Test("MemoryBackend passes", arguments: Conformance.cases)
    func memoryBackend(_ check: ConformanceCase) throws {
        try check.run { strict in MemoryBackend(strict: strict) }
    }

    @Test("ephemeral:// from the registry passes", arguments: Conformance.cases)
    func ephemeralURI(_ check: ConformanceCase) throws {
        try check.run { strict in try makeBackend(uri: strict ? "ephemeral://" : "ephemeral://?strict=false") }
    }

    @Test("Multiplexer of two MemoryBackends passes", arguments: Conformance.cases)
    func multiplexer(_ check: ConformanceCase) throws {
        try check.run { strict in Multiplexer([MemoryBackend(strict: strict), MemoryBackend(strict: strict)]) }
    }
}

@Suite("The conformance suite notices broken backends")
struct ConformanceMutationTests {
    static let failuresByFault: [FaultyBackend.Fault: Set<String>] = {
        var result: [FaultyBackend.Fault: Set<String>] = [:]
        for fault in FaultyBackend.Fault.allCases {
            result[fault] = Set(Conformance.failures { strict in FaultyBackend(fault: fault, strict: strict) }.map(\.caseName))
        }
        return result
    }()

    @Test("every fault makes at least one check fail", arguments: FaultyBackend.Fault.allCases)
    func faultIsDetected(_ fault: FaultyBackend.Fault) {
        #expect(!(Self.failuresByFault[fault] ?? []).isEmpty, "no conformance check noticed \(fault)")
    }

    @Test("every check fails under at least one fault", arguments: Conformance.cases.map(\.name))
    func checkCanFail(_ name: String) {
        let faults = Self.failuresByFault.filter { $0.value.contains(name) }.map(\.key)
        #expect(!faults.isEmpty, "check \(name) passed under every fault: it cannot fail")
    }

    @Test("a fault-free wrapper passes every check")
    func controlPasses() {
        // The same wrapper with its fault in a code path the suite never reaches would be a control;
        // the plain MemoryBackend is the control here.
        #expect(Conformance.failures { MemoryBackend(strict: $0) }.isEmpty)
    }
}
