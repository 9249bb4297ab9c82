"""The web view (track-ui) in a real browser: a headless Chromium (Debian's, installed by make test)
opens the page track-ui serves on 127.0.0.1 while a Python training loop logs in-process; the runs
table lists the trials, the charts draw, and points logged during the test reach the page."""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRACK_BIN", os.path.join(ROOT, ".build", "debug"))
os.environ.setdefault("SWIFT_TRACK_LIBRARY", os.path.join(BIN, "libTrackC.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.dirname(__file__))

import swift_track  # noqa: E402
import track_wire as tw  # noqa: E402
from cdp import Browser  # noqa: E402



def start_ui(db_path, *arguments):
    proc = subprocess.Popen([os.path.join(BIN, "track-ui"), db_path, "--port", "0", *arguments],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        proc.kill()
        raise AssertionError(f"track-ui did not print its address: {line!r} {proc.stderr.read()!r}")
    return proc, f"http://127.0.0.1:{match.group(1)}/"


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def get_eventually(url, condition, timeout=20):
    """GET `url` until `condition` holds of its JSON (the view reads new events every 200 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            body = get(url)
            if condition(body):
                return body
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.fixture
def sweep():
    """A database with a project, three runs of a learning-rate sweep (200 loss points each,
    one with accuracy too), and the open database to keep logging into."""
    with tempfile.TemporaryDirectory() as d:
        db_path = os.path.join(d, "db")
        with swift_track.open("file://" + db_path) as db:
            db.request("new_project", project=tw.project("vision"))
            trials = []
            for i, lr in enumerate([0.1, 0.01, 0.001]):
                t = tw.trial("mlp", {"lr": lr, "layers": 2}, project_id="vision")
                db.request("new_trial", trial=t)
                db.request("set_trial_status", trial=t["uid"], status={"name": "Running", "value": 101})
                loss = db.metric(t["uid"], "loss")
                loss.log_many(list(range(200)), [1.0 / (s + 1) + i for s in range(200)])
                if i == 0:
                    db.metric(t["uid"], "accuracy").log_many(list(range(200)), [s / 200 for s in range(200)])
                trials.append(t)
            db.commit()
            yield db_path, db, trials


def test_the_api_answers_what_the_page_shows(sweep):
    db_path, db, trials = sweep
    proc, url = start_ui(db_path)
    try:
        runs = get(url + "api/runs")
        assert [r["uid"] for r in runs["runs"]] == [t["uid"] for t in trials]
        assert runs["differing"] == ["lr"] and runs["metrics"] == ["loss", "accuracy"]
        first = runs["runs"][0]["metrics"]["loss"]
        assert first["count"] == 200 and first["last"] == pytest.approx(1 / 200) and first["max"] == 1.0
        selected = get(url + "api/runs?where=" + urllib.parse.quote('{"parameters.lr": {"$lt": 0.05}}'))
        assert [r["uid"] for r in selected["runs"]] == [t["uid"] for t in trials[1:]]
        curve = get(url + f"api/series?trial={trials[0]['uid']}&metric=loss&width=20")
        assert curve["count"] == 200 and len(curve["points"]) <= 42 and curve["points"][0] == [0.0, 1.0]
        assert curve["points"][-1][0] == 199.0
        # Downsampling keeps spikes: a 10,000-point series with a spike and a dip, 50 slices wide.
        spiky = db.metric(trials[1]["uid"], "spiky")
        value = lambda s: 100.0 if s == 5000 else -50.0 if s == 7777 else (s % 97) / 97
        spiky.log_many(list(range(10_000)), [value(s) for s in range(10_000)])
        db.commit()
        curve = get_eventually(url + f"api/series?trial={trials[1]['uid']}&metric=spiky&width=50", lambda c: c["count"] == 10_000)
        assert len(curve["points"]) <= 101
        assert [5000.0, 100.0] in curve["points"] and [7777.0, -50.0] in curve["points"] and curve["points"][-1][0] == 9999.0
        assert all(y == value(int(x)) for x, y in curve["points"]) and [p[0] for p in curve["points"]] == sorted(p[0] for p in curve["points"])
        by_time = get(url + f"api/series?trial={trials[1]['uid']}&metric=spiky&width=50&x=time")
        assert 100.0 in [p[1] for p in by_time["points"]] and -50.0 in [p[1] for p in by_time["points"]]
        with pytest.raises(urllib.error.HTTPError) as bad:
            get(url + "api/runs?where=" + urllib.parse.quote("{not json"))
        assert bad.value.code == 400 and "query" in json.loads(bad.value.read())["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_page_lists_runs_draws_curves_and_shows_new_points_live(sweep, tmp_path):
    db_path, db, trials = sweep
    proc, url = start_ui(db_path)
    browser = Browser()
    shots = os.environ.get("TRACK_UI_SCREENSHOTS") or str(tmp_path)
    try:
        # The runs table: one row per trial, the parameter that differs and the metrics as columns.
        browser.navigate(url)
        browser.wait_for("document.querySelectorAll('#runs tbody tr').length === 3", what="three rows in the runs table")
        headers = browser.evaluate("[...document.querySelectorAll('#runs thead th')].map(th => th.textContent)")
        assert "lr" in headers and "loss" in headers and "accuracy" in headers, headers
        assert browser.evaluate("document.querySelector('#runs tbody tr').dataset.uid") == trials[0]["uid"]
        browser.wait_for("document.getElementById('live').classList.contains('on')", what="the live indicator")
        browser.screenshot(os.path.join(shots, "runs.png"))
        # Two runs ticked, then "Compare selected": the compare view of those two.
        browser.evaluate("document.querySelectorAll('#runs tbody input[type=checkbox]').forEach((c, i) => { if (i < 2) c.click(); })")
        browser.evaluate("document.getElementById('compare').click()")
        hash = browser.wait_for("location.hash.startsWith('#/compare') && location.hash", what="the compare view")
        assert urllib.parse.unquote(hash) == "#/compare?runs=" + ",".join(t["uid"] for t in trials[:2]), hash

        # A run page: a chart per metric, drawn (its canvas has coloured pixels).
        uid = trials[0]["uid"]
        browser.navigate(url + "#/run/" + uid)
        browser.wait_for("document.querySelector('[data-metric=loss]') && document.querySelector('[data-metric=loss]').dataset.points === '200'",
                         what="the loss chart with 200 points")
        drawn = browser.wait_for("""(() => {
            const canvas = document.querySelector('[data-metric=loss] canvas');
            if (!canvas) return 0;
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let inked = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) inked++;
            return inked;
        })()""", what="ink on the loss chart's canvas")
        assert drawn > 100
        png = browser.screenshot(os.path.join(shots, "run.png"))
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

        # Points logged now reach the open page.
        loss = db.metric(uid, "loss")
        loss.log_many(list(range(200, 250)), [0.001] * 50)
        db.commit()
        browser.wait_for("document.querySelector('[data-metric=loss]').dataset.points === '250'", timeout=20,
                         what="the 50 points logged while the page was open")
        db.request("set_trial_status", trial=uid, status={"name": "Completed", "value": 302})
        db.commit()
        browser.wait_for("document.getElementById('status').textContent === 'Completed'", what="the new status")

        # Compare: the three runs on one chart, then grouped by the parameter.
        browser.navigate(url + "#/compare?runs=" + ",".join(t["uid"] for t in trials) + "&metric=loss")
        browser.wait_for("document.getElementById('compare-chart').dataset.points === '" + str(250 + 400) + "'",
                         what="the comparison of three runs")
        labels = browser.wait_for("document.querySelector('#compare-chart canvas') && [...document.querySelectorAll('#metric option')].map(o => o.value)")
        assert labels == ["loss", "accuracy"]
        browser.screenshot(os.path.join(shots, "compare.png"))
    finally:
        browser.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_a_metric_two_writers_logged_into_reads_whole_by_time(tmp_path):
    # Two writers (two streams) log one metric in turns; by time, the curve holds every point's
    # count, at most 2 x width + 1 points, in time order, the extremes kept. (Replayed at once,
    # the points come in time order here, so this does not force the timestamps that go back
    # which the slicing is built to bound; it passes on the code before that change too.)
    db_path = str(tmp_path / "db")
    with swift_track.open("file://" + db_path) as first, swift_track.open("file://" + db_path) as second:
        first.request("new_project", project=tw.project("p"))
        t = tw.trial("t", {}, project_id="p")
        first.request("new_trial", trial=t)
        first.commit()
        for step in range(400):
            db = first if step % 2 == 0 else second
            db.metric(t["uid"], "loss").log(float(step % 7), step)
            db.commit()
    proc, url = start_ui(db_path)
    try:
        curve = get(url + f"api/series?trial={t['uid']}&metric=loss&width=10&x=time")
        assert curve["count"] == 400 and len(curve["points"]) <= 21, len(curve["points"])
        times = [p[0] for p in curve["points"]]
        assert times == sorted(times) and {p[1] for p in curve["points"]} == {0.0, 6.0}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_long_runs_table_comes_in_pages(tmp_path):
    db_path = str(tmp_path / "many")
    subprocess.run([os.path.join(BIN, "track-replay"), "synth", db_path, "--trials", "150", "--points", "2"],
                   check=True, capture_output=True)
    proc, url = start_ui(db_path)
    browser = Browser()
    rows = "document.querySelectorAll('#runs tbody tr').length"
    try:
        browser.navigate(url)
        browser.wait_for(rows + " === 100", what="the first page of 100 rows")
        browser.evaluate("document.getElementById('next').click()")
        browser.wait_for(rows + " === 50 && document.querySelector('#runs tbody tr').dataset.uid === 'synth-100_0'", what="the second page")
        browser.evaluate("document.getElementById('all').click()")
        browser.wait_for(rows + " === 150", what="every row")
    finally:
        browser.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_with_a_users_file_each_user_sees_the_projects_granted(sweep, tmp_path):
    db_path, _, trials = sweep
    users = str(tmp_path / "users")
    for name, grant in [("alice", "vision"), ("bob", "other")]:
        subprocess.run([os.path.join(BIN, "track-server"), "add-user", name, "--users", users, "--iterations", "1000", "--grant", grant],
                       input=name + "-password\n", text=True, check=True, capture_output=True)
    proc, url = start_ui(db_path, "--users", users)

    def runs(user=None, password=None):
        request = urllib.request.Request(url + "api/runs")
        if user:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return [r["uid"] for r in json.loads(response.read())["runs"]]
    try:
        for user, password in [(None, None), ("alice", "wrong"), ("carol", "carol-password")]:
            with pytest.raises(urllib.error.HTTPError) as refused:
                runs(user, password)
            assert refused.value.code == 401 and "Basic" in refused.value.headers["WWW-Authenticate"]
        assert runs("alice", "alice-password") == [t["uid"] for t in trials]
        assert runs("bob", "bob-password") == []
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_another_address_needs_a_users_file(sweep):
    db_path, _, _ = sweep
    refused = subprocess.run([os.path.join(BIN, "track-ui"), db_path, "--host", "0.0.0.0", "--port", "0"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "--users" in refused.stderr


def test_damage_is_shown_not_skipped_silently(sweep):
    db_path, db, trials = sweep
    db.commit()
    # A flipped byte in the middle of a segment: that frame is skipped, and the view says so.
    streams = os.path.join(db_path, "streams")
    segment = max((os.path.join(root, f) for root, _, files in os.walk(streams) for f in files if f.endswith(".log")),
                  key=os.path.getsize)
    with open(segment, "r+b") as f:
        size = os.path.getsize(segment)
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    proc, url = start_ui(db_path)
    try:
        info = get(url + "api/info")
        assert info["damage"] >= 1 and segment.split(os.sep)[-1] in info["damageText"], info
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_missing_database_is_one_clear_line():
    with tempfile.TemporaryDirectory() as d:
        missing = subprocess.run([os.path.join(BIN, "track-ui"), os.path.join(d, "nothing"), "--port", "0"],
                                 capture_output=True, text=True, timeout=30)
        assert missing.returncode != 0
        assert "nothing" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
