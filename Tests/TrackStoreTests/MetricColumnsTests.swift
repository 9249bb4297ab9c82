import Testing
import TrackModel
@testable import TrackStore
import TrackLog

@Suite("a metric's columns read as Python track keeps the metric")
struct MetricColumnsTests {
    /// What `pythonPoints` must equal: `series` point by point.
    func expected(_ c: MetricColumns) -> (steps: [Int64], values: [Double]) {
        let points = c.series.points
        return (points.map { $0.step?.intValue ?? MetricColumns.noStep }, points.map { $0.value.doubleValue ?? .nan })
    }

    func columns(_ points: [(MetricStep?, Value)], hlcs: [UInt64]? = nil) -> MetricColumns {
        var c = MetricColumns()
        for (i, p) in points.enumerated() { c.record(step: p.0, value: p.1, hlc: HLC(rawValue: hlcs?[i] ?? UInt64(i + 1))) }
        return c
    }

    func same(_ a: (steps: [Int64], values: [Double]), _ b: (steps: [Int64], values: [Double])) -> Bool {
        a.steps == b.steps && a.values.count == b.values.count
            && zip(a.values, b.values).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }

    @Test("the fast path (increasing integer steps) and every other shape give what series gives")
    func pythonPointsMatchSeries() {
        let cases: [[(MetricStep?, Value)]] = [
            (0..<1000).map { (.int(Int64($0)), .double(1 / Double($0 + 1))) },             // a training loop
            [(.int(0), .double(1)), (.int(0), .double(2)), (.int(1), .double(3))],        // a repeated step
            [(.int(5), .double(1)), (.int(3), .double(2)), (.int(5), .double(9))],        // steps going back
            [(nil, .double(1)), (.int(2), .double(2)), (.int(0), .double(3))],            // a list
            [(.int(1), .double(1)), (nil, .double(2))],                                    // a dict that becomes a list
            [(.text("warmup"), .double(1)), (.int(1), .double(2))],                        // a text step
            [(.int(1), .string("x")), (.int(2), .double(.nan))],                           // values that are not numbers
            [(.int(Int64.max - 1), .double(1)), (.int(Int64.max), .double(2))],
            [],
        ]
        for points in cases {
            let c = columns(points)
            #expect(same(c.pythonPoints, expected(c)), "\(points)")
        }
        // Points recorded out of timestamp order (two streams): the columns reorder them.
        let c = columns([(.int(1), .double(1)), (.int(2), .double(2)), (.int(3), .double(3))], hlcs: [10, 30, 20])
        #expect(same(c.pythonPoints, expected(c)))
    }

    @Test("random metrics: the two reads agree")
    func randomMetrics() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let n = Int.random(in: 0...40, using: &rng)
            var step: Int64 = 0
            let points: [(MetricStep?, Value)] = (0..<n).map { _ in
                switch Int.random(in: 0..<10, using: &rng) {
                case 0: return (nil, .double(1))
                case 1: return (.int(Int64.random(in: -3...3, using: &rng)), .double(2))
                default: step += Int64.random(in: 0...2, using: &rng); return (.int(step), .double(Double(step)))
                }
            }
            let c = columns(points)
            #expect(same(c.pythonPoints, expected(c)), "\(points)")
        }
    }
}
