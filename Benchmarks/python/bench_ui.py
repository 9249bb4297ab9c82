"""The web view's targets (issue 16), measured on release builds in one run: the runs table of a
1,000-trial database in at most 1 s (the API alone, and the page in headless chromium until every
row is drawn); one curve of a 10 M-point series in at most 50 ms; a new point on the open page at
most 1 s after the training loop's commit returns; and `track-replay tail` at 1 M lines/s or more
to a file. Writes the table into BENCHMARKS.md.

Run by `make bench-ui` (TRACK_BIN: the release binaries; SWIFT_TRACK_LIBRARY: libTrackC.so)."""

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ["TRACK_BIN"]
os.environ.setdefault("SWIFT_TRACK_LIBRARY", os.path.join(BIN, "libTrackC.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))

import swift_track  # noqa: E402
from benchmarks_md import replace_section  # noqa: E402
from cdp import Browser  # noqa: E402

TRIALS = int(os.environ.get("UI_TRIALS", "1000"))
POINTS = int(os.environ.get("UI_POINTS", "10000000"))


def synth(db, trials, points):
    subprocess.run([os.path.join(BIN, "track-replay"), "synth", db, "--trials", str(trials), "--points", str(points),
                    "--commit-every", str(max(1000, points // 10))], check=True, stdout=subprocess.DEVNULL)


def start_ui(db):
    proc = subprocess.Popen([os.path.join(BIN, "track-ui"), db, "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.kill()
        raise SystemExit("track-ui did not start: " + line)
    return proc, "http://127.0.0.1:%s/" % match.group(1)


def timed_get(url):
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return time.perf_counter() - start, body


def median_time(url, runs=5):
    timed_get(url)  # the first look also fills the summaries
    return statistics.median(timed_get(url)[0] for _ in range(runs))


def main():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        # 1. The runs table of TRIALS trials.
        many = os.path.join(d, "many")
        synth(many, TRIALS, 100)
        proc, url = start_ui(many)
        browser = Browser()
        try:
            api = median_time(url + "api/runs")
            rows.append(("runs table of %d trials, the API (`/api/runs`)" % TRIALS, api, 1.0))
            pages, everything = [], []
            first = min(100, TRIALS)
            for _ in range(3):
                browser.navigate("about:blank")
                start = time.perf_counter()
                browser.navigate(url)
                # Drawn: the first page's rows are in the table and the frame after them painted.
                browser.wait_for("document.querySelectorAll('#runs tbody tr').length === %d && performance.getEntriesByName('runs-painted').length > 0" % first,
                                 timeout=60, poll=0.01)
                pages.append(time.perf_counter() - start)
                if TRIALS > first:
                    start = time.perf_counter()
                    browser.evaluate("document.getElementById('all').click()")
                    browser.wait_for("document.querySelectorAll('#runs tbody tr').length === %d" % TRIALS, timeout=60, poll=0.01)
                    browser.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
                    everything.append(time.perf_counter() - start)
            rows.append(("runs table of %d trials in chromium, its first page (%d rows) drawn" % (TRIALS, first), statistics.median(pages), 1.0))
            if everything:
                rows.append(("then all %d rows drawn (show all; no target)" % TRIALS, statistics.median(everything), None))
        finally:
            browser.close()
            proc.terminate()
            proc.wait()

        # 2. One curve of a POINTS-point series.
        big = os.path.join(d, "big")
        synth(big, 1, POINTS)
        proc, url = start_ui(big)
        try:
            curve = median_time(url + "api/series?trial=synth-0_0&metric=loss&width=1000")
            _, body = timed_get(url + "api/series?trial=synth-0_0&metric=loss&width=1000")
            shown = len(json.loads(body)["points"])
            rows.append(("one curve of a %s-point series, downsampled to %d points" % (format(POINTS, ","), shown), curve, 0.05))
        finally:
            proc.terminate()
            proc.wait()

        # 3. A point committed by a Python loop, on the open page.
        live = os.path.join(d, "live")
        synth(live, 1, 1000)
        proc, url = start_ui(live)
        browser = Browser()
        try:
            browser.navigate(url + "#/run/synth-0_0")
            browser.wait_for("document.querySelector('[data-metric=loss]') && document.querySelector('[data-metric=loss]').dataset.points === '1000'", timeout=60)
            delays = []
            with swift_track.open("file://" + live) as db:
                loss = db.metric("synth-0_0", "loss")
                for i in range(10):
                    loss.log(0.5, 1000 + i)
                    db.commit()
                    start = time.perf_counter()
                    browser.wait_for("document.querySelector('[data-metric=loss]').dataset.points === '%d'" % (1001 + i), timeout=30, poll=0.005)
                    delays.append(time.perf_counter() - start)
            rows.append(("a new point on the open page after the commit returns (median of 10)", statistics.median(delays), 1.0))
        finally:
            browser.close()
            proc.terminate()
            proc.wait()

        # 4. track-replay tail of a 2 M-event database to a file (target ≥ 1 M lines/s).
        events = 2_000_000
        tailed = os.path.join(d, "tailed")
        synth(tailed, 1, events)
        rates = []
        for _ in range(3):
            with open(os.path.join(d, "tail.txt"), "w") as out:
                start = time.perf_counter()
                subprocess.run([os.path.join(BIN, "track-replay"), "tail", tailed], stdout=out, check=True)
                seconds = time.perf_counter() - start
            lines = sum(1 for _ in open(os.path.join(d, "tail.txt")))
            rates.append(lines / seconds)
        rate = statistics.median(rates)
        tail_row = ("`track-replay tail` of a %s-event database to a file" % format(lines, ","), rate)

    for name, seconds, target in rows:
        print("%-90s %8.1f ms  (target %s)" % (name, seconds * 1000, "≤ %g ms" % (target * 1000) if target else "none"))
    print("%-90s %8.2f M lines/s  (target ≥ 1 M lines/s)" % (tail_row[0], tail_row[1] / 1e6))
    write_table(rows, tail_row)


def write_table(rows, tail_row):
    lines = ["## The web view (`make bench-ui`)", "",
             "Measured in one run on %s: %s; release build, the page in Debian's headless chromium driven over the "
             "DevTools protocol (`Benchmarks/python/bench_ui.py`)." % (
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), platform.platform()), "",
             "| what | median | target | met |", "|---|---:|---:|---|"]
    for name, seconds, target in rows:
        if target is None:
            lines.append("| %s | %.1f ms | - | - |" % (name, seconds * 1000))
            continue
        lines.append("| %s | %.1f ms | ≤ %g ms | %s |" % (name, seconds * 1000, target * 1000, "yes" if seconds <= target else "**no**"))
    lines.append("| %s | %.2f M lines/s | ≥ 1 M lines/s | %s |" % (tail_row[0], tail_row[1] / 1e6, "yes" if tail_row[1] >= 1e6 else "**no**"))
    replace_section('## The web view (`make bench-ui`)', "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
