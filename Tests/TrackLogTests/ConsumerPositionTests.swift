import Foundation
import Testing
import TrackLog
@testable import TrackStore

@Suite("SHIP.position, a consumer's position (a SQL buffer's shipper)")
struct ConsumerPositionTests {
    @Test("written and read back; a missing, damaged or impossible file reads as no position")
    func readWrite() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.db, withIntermediateDirectories: true)
        #expect(ConsumerPosition.read(dir.db).isEmpty)
        #expect(!ConsumerPosition.isPinned(dir.db))
        try ConsumerPosition.write(["s1": (base: 0, offset: 4096), "s2": (base: 77, offset: 32)], to: dir.db)
        let back = ConsumerPosition.read(dir.db)
        #expect(back.count == 2 && back["s1"]?.base == 0 && back["s1"]?.offset == 4096 && back["s2"]?.base == 77 && back["s2"]?.offset == 32)
        #expect(!FileManager.default.fileExists(atPath: dir.db + "/" + ConsumerPosition.fileName + ".tmp"))
        let path = dir.db + "/" + ConsumerPosition.fileName
        for damaged in ["", "{", "not json", #"{"streams": 3}"#] {
            try Data(damaged.utf8).write(to: URL(fileURLWithPath: path))
            #expect(ConsumerPosition.read(dir.db).isEmpty, "\(damaged)")
        }
        // An entry that cannot be a frame boundary is dropped; the others stay.
        try Data(#"{"streams": [{"stream": "a", "base": 0, "offset": 3}, {"stream": "b", "base": -1, "offset": 64}, {"stream": "c", "base": 5, "offset": 64}]}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        #expect(ConsumerPosition.read(dir.db).keys.sorted() == ["c"])
        FileManager.default.createFile(atPath: dir.db + "/" + ConsumerPosition.lockName, contents: nil)
        #expect(ConsumerPosition.isPinned(dir.db))
    }
}
