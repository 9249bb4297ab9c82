import Testing
import TrackModel

@Suite("Aggregators")
struct AggregatorTests {
    @Test("stat stream: Python's StatStream.update arithmetic, quirks included")
    func stat() {
        var s = StatStream(dropObservations: 2)
        for v in [100.0, 50.0, 1.0, 2.0, 3.0, 4.0] { s.append(v) }
        // Python: 100 dropped; 50 kept (index drop - 1) and made first_obs, then 1 made first_obs
        // again while count is still 1; min and max include 50.
        #expect(s.observationCount == 6)
        #expect(s.count == 4)
        #expect(s.firstObservation == 1 && s.sum == 6 && s.sumOfSquares == 14)
        #expect(abs(s.mean - 2.5) < 1e-12)
        #expect(abs(s.standardDeviation - 1.118033988749895) < 1e-12)
        #expect(s.min == 1 && s.max == 50)
        #expect(s.last == 4)
        let again = try? StatStream(trackJSON: s.trackJSON)
        #expect(again == s)
    }

    @Test("ChronoFinishedOnceKeepsTheObservation: with drop 1, one observation gives count 1 and first_obs, min and max hold it")
    func statOnce() {
        var s = StatStream(dropObservations: 1)
        s.append(5)
        #expect(s.trackJSON == ["dtype": "statstream", "sum": 0.0, "sum_sqr": 0.0, "first_obs": 5.0, "min": 5.0, "max": 5.0,
                                "current_count": 1, "current_obs": 0.0, "drop_obs": 1])
        #expect(s.count == 1 && s.mean == 5 && s.standardDeviation == 0 && s.last == 5)
        // A second observation is first_obs again (count is still 1), as in Python.
        s.append(7)
        #expect(s.firstObservation == 7 && s.min == 5 && s.max == 7 && s.count == 1 && s.mean == 7)
    }

    @Test("ring keeps the last n, oldest first")
    func ring() {
        var r = RingBuffer(capacity: 3)
        for i in 1...5 { r.append(.int(Int64(i))) }
        #expect(r.values == [3, 4, 5])
        var small = RingBuffer(capacity: 3)
        small.append(1)
        #expect(small.values == [1])
    }

    @Test("value keeps the last; time series keeps all")
    func valueAndSeries() {
        var v = Aggregator.value(nil)
        v.append(1); v.append(2)
        #expect(v == .value(2))
        #expect(v.trackJSON == 2)
        var t = Aggregator.timeSeries([])
        t.append(1); t.append("x")
        #expect(t.trackJSON == [1, "x"])
        var stat = Aggregator.stat(StatStream(dropObservations: 0))
        stat.append(2); stat.append("not a number"); stat.append(4)
        guard case .stat(let s) = stat else { Issue.record("still a stat"); return }
        #expect(s.count == 2 && s.mean == 3)
    }

    @Test("metric series as Python's log_trial_metrics keeps them: a step-keyed dict in arrival order, a step logged again replaced where it stands")
    func series() throws {
        var m = MetricSeries()
        m.record(step: 3, value: 3)
        m.record(step: 1, value: 1)
        m.record(step: 2, value: 2)
        m.record(step: 2, value: 20)
        #expect(m.points.map(\.step) == [3, 1, 2])
        #expect(m.points.map(\.value) == [3, 1, 20])
        #expect(JSON.encode(m.trackJSON) == #"{"3":3,"1":1,"2":20}"#)
        #expect(m.lastStep == 2)
        #expect(m.sortedByStep.map(\.step) == [1, 2, 3])
        var u = MetricSeries()
        u.record(step: nil, value: 1)
        u.record(step: nil, value: 1)
        #expect(u.trackJSON == [1, 1])
        #expect(try MetricSeries(trackJSON: m.trackJSON) == m)
    }

    @Test("StepsThatGoBack: a loop that restarts its steps replaces values where they stand; 5.0 and 5 are one key, as in Python's dict")
    func stepsThatGoBack() throws {
        var m = MetricSeries()
        for step in 0..<100 { m.record(step: .int(Int64(step)), value: .int(Int64(step))) }
        for step in 50..<150 { m.record(step: .int(Int64(step)), value: .int(Int64(-step))) }
        m.record(step: .text("warmup"), value: 1)
        m.record(step: 7, value: 70)
        m.record(step: .text("warmup"), value: 2)
        #expect(m.points.map { $0.step } == (0..<150).map { MetricStep.int(Int64($0)) } + [.text("warmup")])
        #expect(m.points[7].value == 70 && m.points[60].value == -60 && m.points[149].value == -149 && m.points[150].value == 2)
        // A whole float step and the integer are one key (`{5.0: 1}[5]` in Python); the first kept.
        var f = MetricSeries()
        f.record(step: .number(5.0), value: 1)
        f.record(step: 5, value: 2)
        f.record(step: .number(3.0), value: 3)
        f.record(step: 3, value: 4)
        #expect(f.points == [MetricPoint(step: .number(5.0), value: 2), MetricPoint(step: .number(3.0), value: 4)])
        // A point without a step after that turns the metric into a list; stepped points append.
        f.record(step: nil, value: 9)
        f.record(step: 5, value: 10)
        #expect(f.count == 4 && f.isList)
    }

    @Test("ListMetricsAsPython: a list metric appends [step, value] for a step in arrival order, and the bare value for step 0 (Python's `elif step:`)")
    func listMetricsAsPython() throws {
        var m = MetricSeries()
        m.record(step: nil, value: 0.1)
        m.record(step: 5, value: 0.5)
        m.record(step: 2, value: 0.2)
        m.record(step: 0, value: 0.0)
        m.record(step: 5, value: 0.55)
        #expect(JSON.encode(m.trackJSON) == "[0.1,[5,0.5],[2,0.2],0.0,[5,0.55]]")
        #expect(try MetricSeries(trackJSON: m.trackJSON) == m)
        // Step 0 first: a dict, keyed "0" (Python: `step is not None`).
        var d = MetricSeries()
        d.record(step: 0, value: 1)
        d.record(step: 1, value: 2)
        #expect(JSON.encode(d.trackJSON) == #"{"0":1,"1":2}"#)
        // A point without a step after stepped ones (Python raises): kept, the metric reads as a list.
        d.record(step: nil, value: 3)
        #expect(JSON.encode(d.trackJSON) == "[[0,1],[1,2],3]")
    }
}
