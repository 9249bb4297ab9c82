import Testing
import TrackModel
@testable import TrackBackends

@Suite("the fast path for one-metric requests reads what the JSON parser reads, or steps aside")
struct FastMetricTests {
    @Test("accepted shapes match the general parse")
    func accepted() throws {
        let cases = [
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "loss": 0.5, "step": 3}"#,
            #"{"__rpc__":"log_trial_metrics","step":null,"trial":"ab_0","acc":1e-05}"#,
            #" { "trial" : "ab_0" , "__rpc__" : "log_trial_metrics" , "v" : -2.5E+3 , "step" : -1 } "#,
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "x": NaN}"#,
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "x": -Infinity, "step": 0}"#,
        ]
        for text in cases {
            let m = try #require(FastMetric.parse(Array(text.utf8)), "\(text)")
            let v = try JSON.decode(text)
            #expect(m.trial == v["trial"]?.stringValue)
            #expect(m.step == v["step"]?.intValue)
            let general = try #require(v[m.name])
            if case .double(let d) = general { #expect(d == m.value || (d.isNaN && m.value.isNaN), "\(text)") } else { Issue.record("\(text): \(general)") }
        }
    }

    @Test("everything else takes the general path")
    func declined() {
        let cases = [
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "loss": 1, "step": 3}"#,          // integer metric
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 0.5, "b": 0.5}"#,           // two metrics
            #"{"__rpc__": "log_trial_metrics", "trial": "a\"b_0", "a": 0.5}"#,                   // escape
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": [0.5]}"#,                   // nested
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 0.5, "step": 1.5}"#,        // fractional step
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 0.5"#,                      // truncated
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 0.5} x"#,                   // trailing bytes
            #"{"__rpc__": "log_trial_metadata", "trial": "ab_0", "a": 0.5}"#,                    // another rpc
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "__rpc__": "commit", "a": 0.5}"#, // repeated key
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 1.0.0}"#,                   // not a number
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "a": 1e999}"#,                   // overflows
            #"{"__rpc__": "log_trial_metrics", "trial": "ab_0", "naïve": 1.0}"#,                 // not ASCII
        ]
        for text in cases { #expect(FastMetric.parse(Array(text.utf8)) == nil, "\(text)") }
        #expect(FastMetric.parse([0x7B, 0x22, 0xFF, 0x22]) == nil)
    }
}
