import ArgumentParser
import Foundation
import Track
import TrackLog
import TrackStore

/// `track-replay plot DB TRIAL... --metric NAME [--metric NAME...] -o FILE.svg`.
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw metrics of one or several trials as an SVG line plot, one panel per metric.",
        discussion: "With axes, ticks, labels and a legend. Points without a step are placed by their position. Non-finite values are left out (and, with --log, values that are not positive). Long series are thinned to at most 2,000 drawn points per trial, keeping each stretch's lowest and highest value.\n\n" + damageHelp)

    /// What the x axis shows.
    enum XAxis: String, ExpressibleByArgument, CaseIterable { case step, time }

    @Argument(help: "The database directory.")
    var database: String

    @Argument(help: "The trials: uids, unique uid prefixes, or unique names.")
    var trials: [String]

    @Option(help: "A metric to draw; repeat it for several, each in its own panel (--metric loss --metric accuracy).")
    var metric: [String]

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output: String

    @Option(help: "The x axis: the step, or the time since the first point drawn (seconds).")
    var x: XAxis = .step

    @Option(help: "Smoothing, 0 (none) to 0.99: each curve as an exponential moving average of this weight (debiased, as TensorBoard's).")
    var smooth = 0.0

    @Flag(help: "A logarithmic y axis.")
    var log = false

    @OptionGroup var reading: ReadingOptions

    func validate() throws {
        guard !trials.isEmpty else { throw ValidationError("give at least one trial") }
        guard !metric.isEmpty else { throw ValidationError("give at least one --metric") }
        guard output.hasSuffix(".svg") else { throw ValidationError("the output file must end in .svg") }
        guard smooth >= 0 && smooth < 1 else { throw ValidationError("--smooth \(smooth) must be at least 0 and below 1") }
    }

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let projection = replayed.projection
        let resolved = try trials.map { try resolveTrial($0, in: projection) }
        // Curves are labelled by what tells the trials apart: the parameters that differ.
        let differing = Trial.differingParameters(resolved)
        let labels = resolved.map { trial -> String in
            let parameters = differing.compactMap { key in trial.parameters[key].map { "\(key)=\(shortText($0))" } }
            return (trial.name ?? "trial") + " " + (parameters.isEmpty ? String(trial.hash.prefix(8)) : parameters.joined(separator: " "))
        }
        var panels: [SVGPlot.Panel] = []
        var origin = Double.infinity
        for name in metric {
            var curves: [[(Double, Double)]] = []
            var dropped = 0
            for trial in resolved {
                guard let series = trial.metrics[name] else {
                    // One trial without the metric does not spoil the plot of the others.
                    warn("note: trial \(trial.shortID) has no metric '\(name)' (\(trial.metrics.isEmpty ? "it has no metrics" : "it has: " + trial.metrics.keys.joined(separator: ", "))); left out")
                    curves.append([])
                    continue
                }
                var points: [(Double, Double)]
                switch x {
                case .step:
                    points = series.sortedByStep.enumerated().compactMap { i, p -> (Double, Double)? in
                        guard let y = p.value.doubleValue, y.isFinite else { return nil }
                        switch p.step {
                        case .int(let step)?: return (Double(step), y)
                        case .number(let step)?: return (step, y)
                        default: return (Double(i), y)  // no step, or a text step: its position
                        }
                    }
                case .time:
                    let columns = projection.columns(trial: trial.uid, metric: name) ?? MetricColumns()
                    points = (0..<columns.count).compactMap { i -> (Double, Double)? in
                        guard let y = columns.value(at: i).doubleValue, y.isFinite else { return nil }
                        return (HLC(rawValue: columns.hlcs[i]).seconds, y)
                    }
                    origin = min(origin, points.first?.0 ?? .infinity)
                }
                if log {
                    let before = points.count
                    points.removeAll { $0.1 <= 0 }
                    dropped += before - points.count
                }
                curves.append(SVGPlot.smoothed(points, weight: smooth))
            }
            if dropped > 0 { warn("note: \(dropped) values of '\(name)' that are not positive are left out of the log scale") }
            if curves.allSatisfy(\.isEmpty) {
                if resolved.allSatisfy({ $0.metrics[name] == nil }) { throw ToolError("none of the trials has a metric '\(name)'") }
                throw ToolError("no \(log ? "positive" : "finite") value of '\(name)' to draw")
            }
            panels.append(SVGPlot.Panel(name: name, curves: curves))
        }
        if x == .time && origin.isFinite {
            panels = panels.map { panel in
                var shifted = panel
                shifted.curves = panel.curves.map { $0.map { ($0.0 - origin, $0.1) } }
                return shifted
            }
        }
        // A trial with nothing drawn in any panel has no place in the legend.
        let kept = resolved.indices.filter { i in panels.contains { !$0.curves[i].isEmpty } }
        panels = panels.map { panel in SVGPlot.Panel(name: panel.name, curves: kept.map { panel.curves[$0] }) }
        let title = metric.joined(separator: ", ") + (smooth > 0 ? " (smoothed \(smooth))" : "")
        let svg = SVGPlot(title: title, xLabel: x == .step ? "step" : "seconds since the first point", labels: kept.map { labels[$0] }, panels: panels, logY: log).render()
        do { try Data(svg.utf8).write(to: URL(fileURLWithPath: output)) } catch {
            throw ToolError("cannot write '\(output)': \(error.localizedDescription)")
        }
        warn("wrote \(output)")
        try replayed.finish()
    }
}

/// A line plot as SVG text: one panel per metric, stacked, sharing the legend of the trials
/// (curve `i` of every panel is trial `i`, in one colour).
struct SVGPlot {
    /// One metric: a curve per trial (empty when the trial lacks it).
    struct Panel {
        var name: String
        var curves: [[(Double, Double)]]
    }

    var title: String
    var xLabel: String
    var labels: [String]
    var panels: [Panel]
    var logY = false

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    let width = 900.0
    let left = 80.0, right = 230.0, top = 50.0, bottom = 60.0
    /// Between two panels: the upper one's tick labels.
    let gap = 40.0

    /// Legend rows: 20 px each up to 24 curves, 14 px beyond.
    var legendRow: Double { labels.count <= 24 ? 20 : 14 }
    /// Tall enough for every panel (430 px for one, 300 each for more) and the legend of every curve.
    var height: Double {
        let panelsHeight = panels.count <= 1 ? 430 : Double(panels.count) * 300 + Double(panels.count - 1) * gap
        return max(top + panelsHeight + bottom, top + 12 + Double(labels.count) * legendRow + bottom)
    }

    /// `points` as an exponential moving average of `weight` (0: unchanged), debiased so that it
    /// starts at the first value.
    static func smoothed(_ points: [(Double, Double)], weight: Double) -> [(Double, Double)] {
        guard weight > 0 else { return points }
        var average = 0.0, n = 0.0
        return points.map { point in
            average = average * weight + (1 - weight) * point.1
            n += 1
            return (point.0, average / (1 - pow(weight, n)))
        }
    }

    /// The colour of curve `i`: the ten of the palette, then hues a golden angle apart, in two
    /// lightnesses, so that no two curves share a colour.
    static func color(_ i: Int) -> String {
        if i < palette.count { return palette[i] }
        let hue = (Double(i - palette.count) * 137.508).truncatingRemainder(dividingBy: 360)
        return "hsl(\(Int(hue)),70%,\(i % 2 == 0 ? 38 : 55)%)"
    }

    /// A legend label cut to what the legend's width holds.
    static func legendText(_ label: String) -> String { label.count > 30 ? String(label.prefix(29)) + "…" : label }

    /// Round tick positions covering `low...high` (steps of 1, 2 or 5 times a power of ten).
    static func ticks(_ low: Double, _ high: Double, count: Int = 6) -> [Double] {
        var lo = low, hi = high
        if lo == hi { lo -= 1; hi += 1 }
        let raw = (hi - lo) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        // The round step nearest the raw one (in ratio), so there are about `count` ticks.
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.min { abs(log($0 / raw)) < abs(log($1 / raw)) }!
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// Ticks of a log axis, in log10 units, for values from 10^`low` to 10^`high`: the powers
    /// of ten when the range spans more than a decade, round values (1, 2, 5 × 10^k) within it
    /// otherwise.
    static func logTicks(_ low: Double, _ high: Double) -> [Double] {
        if high - low >= 1 {
            let decades = Array(stride(from: floor(low), through: ceil(high), by: 1))
            // At most about 8 labels: every other decade, or fewer, over a wide range.
            let every = max(1, Int((Double(decades.count) / 8).rounded(.up)))
            return decades.enumerated().filter { $0.offset % every == 0 }.map(\.element)
        }
        return ticks(pow(10, low), pow(10, high)).filter { $0 > 0 }.map { Foundation.log10($0) }
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.1e", v) }
        if v == v.rounded() { return String(Int64(v)) }
        return String(format: "%g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// At most `limit` points, keeping each bucket's lowest and highest value in order.
    static func thin(_ points: [(Double, Double)], limit: Int = 2000) -> [(Double, Double)] {
        guard points.count > limit else { return points }
        let buckets = limit / 2
        var out: [(Double, Double)] = []
        for b in 0..<buckets {
            let slice = points[(b * points.count / buckets)..<((b + 1) * points.count / buckets)]
            guard let lo = slice.min(by: { $0.1 < $1.1 }), let hi = slice.max(by: { $0.1 < $1.1 }) else { continue }
            if lo.0 <= hi.0 { out.append(lo); if hi.0 != lo.0 { out.append(hi) } } else { out.append(hi); out.append(lo) }
        }
        return out
    }

    func render() -> String {
        let plotWidth = width - left - right
        let plotHeight = (height - top - bottom - Double(panels.count - 1) * gap) / Double(max(1, panels.count))
        let xs = panels.flatMap { $0.curves.flatMap { $0.map(\.0) } }
        let xTicks = SVGPlot.ticks(xs.min()!, xs.max()!)
        let x0 = min(xTicks.first!, xs.min()!), x1 = max(xTicks.last!, xs.max()!)
        func px(_ x: Double) -> Double { left + (x1 == x0 ? 0.5 : (x - x0) / (x1 - x0)) * plotWidth }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
        <text x="\(f(left + plotWidth / 2))" y="28" text-anchor="middle" font-size="16" font-weight="bold">\(SVGPlot.escape(title))</text>

        """
        for (index, panel) in panels.enumerated() {
            let panelTop = top + Double(index) * (plotHeight + gap)
            // With a log scale the panel is drawn in log10 of the values; the ticks say 10^t.
            let transform: (Double) -> Double = logY ? { Foundation.log10($0) } : { $0 }
            let ys = panel.curves.flatMap { $0.map { transform($0.1) } }
            let yTicks = logY ? SVGPlot.logTicks(ys.min()!, ys.max()!) : SVGPlot.ticks(ys.min()!, ys.max()!)
            let y0 = min(yTicks.first!, ys.min()!), y1 = max(yTicks.last!, ys.max()!)
            func py(_ y: Double) -> Double { panelTop + plotHeight - (y1 == y0 ? 0.5 : (transform(y) - y0) / (y1 - y0)) * plotHeight }
            func pyTick(_ t: Double) -> Double { panelTop + plotHeight - (y1 == y0 ? 0.5 : (t - y0) / (y1 - y0)) * plotHeight }
            let bottomOfPlot = panelTop + plotHeight
            svg += "<g class=\"panel\" data-metric=\"\(SVGPlot.escape(panel.name))\">\n"
            svg += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n"
            for t in xTicks { svg += "<line x1=\"\(f(px(t)))\" y1=\"\(f(panelTop))\" x2=\"\(f(px(t)))\" y2=\"\(f(bottomOfPlot))\"/>\n" }
            for t in yTicks { svg += "<line x1=\"\(f(left))\" y1=\"\(f(pyTick(t)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(pyTick(t)))\"/>\n" }
            svg += "</g>\n<g class=\"axes\" stroke=\"black\" stroke-width=\"1\">\n"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(bottomOfPlot))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(bottomOfPlot))\"/>\n"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(panelTop))\" x2=\"\(f(left))\" y2=\"\(f(bottomOfPlot))\"/>\n"
            for t in xTicks { svg += "<line x1=\"\(f(px(t)))\" y1=\"\(f(bottomOfPlot))\" x2=\"\(f(px(t)))\" y2=\"\(f(bottomOfPlot + 5))\"/>\n" }
            for t in yTicks { svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(pyTick(t)))\" x2=\"\(f(left))\" y2=\"\(f(pyTick(t)))\"/>\n" }
            svg += "</g>\n<g class=\"tick-labels\" fill=\"black\">\n"
            for t in xTicks { svg += "<text x=\"\(f(px(t)))\" y=\"\(f(bottomOfPlot + 20))\" text-anchor=\"middle\">\(SVGPlot.label(t))</text>\n" }
            for t in yTicks { svg += "<text x=\"\(f(left - 8))\" y=\"\(f(pyTick(t) + 4))\" text-anchor=\"end\">\(SVGPlot.label(logY ? pow(10, t) : t))</text>\n" }
            svg += "</g>\n"
            let middle = panelTop + plotHeight / 2
            svg += "<text class=\"y-label\" x=\"20\" y=\"\(f(middle))\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(f(middle)))\">\(SVGPlot.escape(panel.name + (logY ? " (log)" : "")))</text>\n"
            svg += "<g class=\"series\" fill=\"none\" stroke-width=\"1.5\">\n"
            for (i, curve) in panel.curves.enumerated() where !curve.isEmpty {
                let coordinates = SVGPlot.thin(curve).map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
                svg += "<polyline stroke=\"\(SVGPlot.color(i))\" points=\"\(coordinates)\"><title>\(SVGPlot.escape(labels[i]))</title></polyline>\n"
            }
            svg += "</g>\n</g>\n"
        }
        svg += "<text class=\"x-label\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">\(SVGPlot.escape(xLabel))</text>\n"
        svg += "<g class=\"legend\">\n"
        let legendX = left + plotWidth + 20
        svg += "<rect x=\"\(f(legendX - 8))\" y=\"\(f(top - 8))\" width=\"\(f(right - 24))\" height=\"\(f(Double(labels.count) * legendRow + 12))\" fill=\"white\" stroke=\"#999\"/>\n"
        let fontSize = legendRow >= 20 ? 12 : 10
        for (i, label) in labels.enumerated() {
            let y = top + 6 + Double(i) * legendRow
            let color = SVGPlot.color(i)
            svg += "<line x1=\"\(f(legendX))\" y1=\"\(f(y))\" x2=\"\(f(legendX + 24))\" y2=\"\(f(y))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
            svg += "<text x=\"\(f(legendX + 30))\" y=\"\(f(y + 4))\" font-size=\"\(fontSize)\"><title>\(SVGPlot.escape(label))</title>\(SVGPlot.escape(SVGPlot.legendText(label)))</text>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }
}
