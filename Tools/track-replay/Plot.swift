import ArgumentParser
import Foundation
import Track
import TrackLog

/// `track-replay plot DB TRIAL... --metric NAME -o FILE.svg`.
struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw one metric of one or several trials as an SVG line plot.",
        discussion: "With axes, ticks, labels and a legend. Points without a step are placed by their position. Non-finite values are left out. Long series are thinned to at most 2,000 drawn points per trial, keeping each stretch's lowest and highest value.\n\n" + damageHelp)

    @Argument(help: "The database directory.")
    var database: String

    @Argument(help: "The trials: uids, unique uid prefixes, or unique names.")
    var trials: [String]

    @Option(help: "The metric to draw.")
    var metric: String

    @Option(name: .shortAndLong, help: "The SVG file to write.")
    var output: String

    @OptionGroup var reading: ReadingOptions

    func validate() throws {
        guard !trials.isEmpty else { throw ValidationError("give at least one trial") }
        guard output.hasSuffix(".svg") else { throw ValidationError("the output file must end in .svg") }
    }

    func run() throws {
        let replayed = try replay(database, strict: reading.strict)
        let projection = replayed.projection
        var series: [(label: String, points: [(Double, Double)])] = []
        let resolved = try trials.map { try resolveTrial($0, in: projection) }
        // Curves are labelled by what tells the trials apart: the parameters that differ.
        let differing = Trial.differingParameters(resolved)
        for trial in resolved {
            guard let s = trial.metrics[metric] else {
                // One trial without the metric does not spoil the plot of the others.
                warn("note: trial \(trial.shortID) has no metric '\(metric)' (\(trial.metrics.isEmpty ? "it has no metrics" : "it has: " + trial.metrics.keys.joined(separator: ", "))); left out")
                continue
            }
            let points = s.sortedByStep.enumerated().compactMap { i, p -> (Double, Double)? in
                guard let y = p.value.doubleValue, y.isFinite else { return nil }
                switch p.step {
                case .int(let step)?: return (Double(step), y)
                case .number(let step)?: return (step, y)
                default: return (Double(i), y)  // no step, or a text step: its position
                }
            }
            let parameters = differing.compactMap { key in trial.parameters[key].map { "\(key)=\(shortText($0))" } }
            series.append(((trial.name ?? "trial") + " " + (parameters.isEmpty ? String(trial.hash.prefix(8)) : parameters.joined(separator: " ")), points))
        }
        guard !series.isEmpty else { throw ToolError("none of the trials has a metric '\(metric)'") }
        guard series.contains(where: { !$0.points.isEmpty }) else { throw ToolError("no finite value of '\(metric)' to draw") }
        let svg = SVGPlot(title: metric, xLabel: "step", yLabel: metric, series: series).render()
        do { try Data(svg.utf8).write(to: URL(fileURLWithPath: output)) } catch {
            throw ToolError("cannot write '\(output)': \(error.localizedDescription)")
        }
        warn("wrote \(output)")
        try replayed.finish()
    }
}

/// A line plot as SVG text.
struct SVGPlot {
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [(label: String, points: [(Double, Double)])]

    static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    let width = 900.0
    let left = 80.0, right = 230.0, top = 50.0, bottom = 60.0

    /// Legend rows: 20 px each up to 24 curves, 14 px beyond.
    var legendRow: Double { series.count <= 24 ? 20 : 14 }
    /// Tall enough for the legend of every curve.
    var height: Double { max(540, top + 12 + Double(series.count) * legendRow + bottom) }

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
        let all = series.flatMap(\.points)
        let xs = all.map(\.0), ys = all.map(\.1)
        let xTicks = SVGPlot.ticks(xs.min()!, xs.max()!)
        let yTicks = SVGPlot.ticks(ys.min()!, ys.max()!)
        let x0 = min(xTicks.first!, xs.min()!), x1 = max(xTicks.last!, xs.max()!)
        let y0 = min(yTicks.first!, ys.min()!), y1 = max(yTicks.last!, ys.max()!)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (x1 == x0 ? 0.5 : (x - x0) / (x1 - x0)) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - (y1 == y0 ? 0.5 : (y - y0) / (y1 - y0)) * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
        <text x="\(f(left + plotWidth / 2))" y="28" text-anchor="middle" font-size="16" font-weight="bold">\(SVGPlot.escape(title))</text>

        """
        svg += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n"
        for t in xTicks { svg += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotHeight))\"/>\n" }
        for t in yTicks { svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(py(t)))\"/>\n" }
        svg += "</g>\n<g class=\"axes\" stroke=\"black\" stroke-width=\"1\">\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(top + plotHeight))\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotHeight))\"/>\n"
        for t in xTicks { svg += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + plotHeight + 5))\"/>\n" }
        for t in yTicks { svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(py(t)))\" x2=\"\(f(left))\" y2=\"\(f(py(t)))\"/>\n" }
        svg += "</g>\n<g class=\"tick-labels\" fill=\"black\">\n"
        for t in xTicks { svg += "<text x=\"\(f(px(t)))\" y=\"\(f(top + plotHeight + 20))\" text-anchor=\"middle\">\(SVGPlot.label(t))</text>\n" }
        for t in yTicks { svg += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(SVGPlot.label(t))</text>\n" }
        svg += "</g>\n"
        svg += "<text class=\"x-label\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">\(SVGPlot.escape(xLabel))</text>\n"
        svg += "<text class=\"y-label\" x=\"20\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 20 \(f(top + plotHeight / 2)))\">\(SVGPlot.escape(yLabel))</text>\n"
        svg += "<g class=\"series\" fill=\"none\" stroke-width=\"1.5\">\n"
        for (i, s) in series.enumerated() where !s.points.isEmpty {
            let color = SVGPlot.color(i)
            let coordinates = SVGPlot.thin(s.points).map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            svg += "<polyline stroke=\"\(color)\" points=\"\(coordinates)\"><title>\(SVGPlot.escape(s.label))</title></polyline>\n"
        }
        svg += "</g>\n<g class=\"legend\">\n"
        let legendX = left + plotWidth + 20
        svg += "<rect x=\"\(f(legendX - 8))\" y=\"\(f(top - 8))\" width=\"\(f(right - 24))\" height=\"\(f(Double(series.count) * legendRow + 12))\" fill=\"white\" stroke=\"#999\"/>\n"
        let fontSize = legendRow >= 20 ? 12 : 10
        for (i, s) in series.enumerated() {
            let y = top + 6 + Double(i) * legendRow
            let color = SVGPlot.color(i)
            svg += "<line x1=\"\(f(legendX))\" y1=\"\(f(y))\" x2=\"\(f(legendX + 24))\" y2=\"\(f(y))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
            svg += "<text x=\"\(f(legendX + 30))\" y=\"\(f(y + 4))\" font-size=\"\(fontSize)\"><title>\(SVGPlot.escape(s.label))</title>\(SVGPlot.escape(SVGPlot.legendText(s.label)))</text>\n"
        }
        svg += "</g>\n</svg>\n"
        return svg
    }
}
