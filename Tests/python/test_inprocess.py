"""The Python package over the C ABI (issue 15, first step): a training loop logs into a file://
database in-process, the event log every other writer and reader uses."""

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRACK_BIN", os.path.join(ROOT, ".build", "debug"))
os.environ.setdefault("SWIFT_TRACK_LIBRARY", os.path.join(BIN, "libTrackC.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))

import swift_track  # noqa: E402
import track_wire as tw  # noqa: E402


def new_trial(db):
    """A project "p" and a trial "t" in it; the trial's JSON."""
    db.request("new_project", project=tw.project("p"))
    t = tw.trial("t", {}, project_id="p")
    db.request("new_trial", trial=t)
    return t


def stored_trial(db, t):
    """The trial `t` as the database holds it."""
    [stored] = db.request("get_trial", trial={"dtype": "trial", "uid": t["uid"], "hash": t["hash"], "revision": 0, "parameters": {}})
    return stored


def test_a_training_loop_logs_in_process_and_track_replay_reads_it():
    with tempfile.TemporaryDirectory() as d:
        db_path = os.path.join(d, "db")
        with swift_track.open("file://" + db_path) as db:
            db.request("new_project", project=tw.project("vision"))
            t = tw.trial("mlp", {"lr": 0.01}, project_id="vision")
            assert db.request("new_trial", trial=t)["uid"] == t["uid"]
            db.request("set_trial_status", trial=t["uid"], status={"name": "Running", "value": 101})
            loss = db.metric(t["uid"], "loss")
            for step in range(10_000):
                loss.log(1.0 / (step + 1), step)
            acc = db.metric(t["uid"], "acc")
            acc.log_many(list(range(100)), [i / 100 for i in range(100)])
            db.request("log_trial_metrics", trial=t["uid"], step=None, note=0.5)
            db.commit()
            stored = stored_trial(db, t)
            assert len(stored["metrics"]["loss"]) == 10_000 and stored["metrics"]["loss"]["9999"] == 1.0 / 10_000
            assert len(stored["metrics"]["acc"]) == 100
            assert [x["uid"] for x in db.request("fetch_trials", query={"status": "running"})] == [t["uid"]]
        summary = subprocess.run([os.path.join(BIN, "track-replay"), "summary", db_path], capture_output=True, text=True)
        assert summary.returncode == 0, summary.stderr
        # 10,000 + 100 + 1 points, the last step 9999.
        assert "mlp" in summary.stdout and "10101" in summary.stdout and "9999" in summary.stdout


def test_errors_are_exceptions_with_the_engines_message():
    with tempfile.TemporaryDirectory() as d:
        with pytest.raises(swift_track.TrackError, match="URI|scheme"):
            swift_track.open("nosuchscheme://x")
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            with pytest.raises(swift_track.NotFound, match="does not exist"):
                db.metric("0" * 64 + "_0", "loss").log(1.0, 1)
            with pytest.raises(swift_track.TrackError, match="reserved"):
                t = new_trial(db)
                db.metric(t["uid"], "loss").log(1.0, -2**63)
            with pytest.raises(swift_track.TrackError, match="unknown operation"):
                db.request("no_such_rpc")
        with pytest.raises(swift_track.TrackError, match="closed"):
            db.commit()


def test_buffered_points_keep_their_order_with_other_calls_and_reach_the_disk():
    with tempfile.TemporaryDirectory() as d:
        db_path = os.path.join(d, "db")
        with swift_track.open("file://" + db_path) as db:
            db.request("new_project", project=tw.project("p"))
            t = tw.trial("t", {"lr": 0.1}, project_id="p")
            db.request("new_trial", trial=t)
            loss = db.metric(t["uid"], "loss")
            n = 3 * swift_track.Metric.BUFFER_POINTS + 7  # full buffers and a partial one
            for step in range(n):
                loss.log(float(step), step)
            loss.log(0.5, "warmup")      # a text step: the general path, after the buffered points
            loss.log(0.25, 1.5)          # a float step
            loss.log(2, n)               # an int value
            # A request from this thread sees every point logged before it.
            stored = stored_trial(db, t)
            keys = list(stored["metrics"]["loss"])
            assert len(keys) == n + 3 and keys[:3] == ["0", "1", "2"] and keys[-3:] == ["warmup", "1.5", str(n)]
            for step in range(n + 1, n + 11):
                loss.log(1.0, step)      # left in the buffer: close() sends them
        summary = subprocess.run([os.path.join(BIN, "track-replay"), "summary", db_path], capture_output=True, text=True)
        assert summary.returncode == 0, summary.stderr
        assert str(n + 13) in summary.stdout, summary.stdout


def test_bad_points_are_refused_at_the_call():
    with tempfile.TemporaryDirectory() as d:
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            t = new_trial(db)
            loss = db.metric(t["uid"], "loss")
            loss.log(1.0, 0)
            with pytest.raises(swift_track.TrackError, match="reserved"):
                loss.log(1.0, -2**63)
            with pytest.raises(swift_track.TrackError, match="64-bit"):
                loss.log(1.0, 2**64)
            with pytest.raises(TypeError, match="number"):
                loss.log("high", 1)
            with pytest.raises(TypeError, match="step"):
                loss.log(1.0, [1])
            with pytest.raises(TypeError, match="step"):
                loss.log(1.0, True)
            loss.log(2.0, 1)
            class NumpyLikeInteger:             # numpy.int64 is no int subclass, but has __index__
                def __index__(self):
                    return 2
            loss.log(3.0, NumpyLikeInteger())   # an integer step (raised TypeError before)
            db.commit()
            stored = stored_trial(db, t)
            assert stored["metrics"]["loss"] == {"0": 1.0, "1": 2.0, "2": 3.0}


def _child_logs(db, uid, start):
    """A multiprocessing worker (fork): logs through the database its parent opened, never commits."""
    metric = db.metric(uid, "loss")
    for step in range(start, start + 100):
        metric.log(2.0, step)


def _spawned_child_logs(path, uid, start):
    """A spawned worker opens the database itself."""
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import swift_track as st
    with st.open("file://" + path) as db:
        metric = db.metric(uid, "loss")
        for step in range(start, start + 100):
            metric.log(3.0, step)


def test_a_forked_child_gets_its_own_stream_and_spawn_works():
    import multiprocessing
    with tempfile.TemporaryDirectory() as d:
        db_path = os.path.join(d, "db")
        with swift_track.open("file://" + db_path) as db:
            t = new_trial(db)
            loss = db.metric(t["uid"], "loss")
            for step in range(10):
                loss.log(1.0, step)          # step 0 is sent, steps 1..9 wait in the buffer across the forks
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    for step in range(1000, 1100):
                        loss.log(5.0, step)  # the parent's metric, in the child: the child's own stream
                    db.commit()
                except BaseException:
                    code = 1
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert status == 0
            fork = multiprocessing.get_context("fork").Process(target=_child_logs, args=(db, t["uid"], 2000))
            fork.start(); fork.join()
            assert fork.exitcode == 0
            spawn = multiprocessing.get_context("spawn").Process(target=_spawned_child_logs, args=(db_path, t["uid"], 3000))
            spawn.start(); spawn.join()
            assert spawn.exitcode == 0
            db.commit()
            stored = stored_trial(db, t)
            steps = sorted(int(k) for k in stored["metrics"]["loss"])
            assert steps == list(range(10)) + list(range(1000, 1100)) + list(range(2000, 2100)) + list(range(3000, 3100)), \
                "each point once: the parent's buffered points are not sent again by a child"
        # The children wrote streams of their own (a later child may continue a finished child's
        # stream); the parent's stream was never theirs: it was held all along.
        streams = os.listdir(os.path.join(db_path, "streams"))
        assert len(streams) >= 2 and any("-%d-" % os.getpid() in s for s in streams), streams


def test_the_engine_refuses_a_parents_writer_in_a_forked_child():
    """Below the Python package: a C caller that uses its parent's handles after fork gets an
    error naming the fork (the engine's ForkGuard), never a write into the parent's stream."""
    import signal
    import time
    with tempfile.TemporaryDirectory() as d:
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            t = new_trial(db)
            loss = db.metric(t["uid"], "loss")
            loss.log(1.0, 0)
            pid = os.fork()
            if pid == 0:
                ok = swift_track._lib.st_metric_log_step(loss._handle, 1, 1.0) != 0 and b"fork" in swift_track._lib.st_last_error()
                ok = ok and swift_track._lib.st_commit(db._handle) != 0 and b"fork" in swift_track._lib.st_last_error()
                os._exit(0 if ok else 1)
            deadline = time.time() + 30
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.time() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    raise AssertionError("the forked child hung")
                time.sleep(0.01)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the child's writes were not refused"
            loss.log(2.0, 1)
            db.commit()
            stored = stored_trial(db, t)
            assert stored["metrics"]["loss"] == {"0": 1.0, "1": 2.0}


def test_a_series_reads_back_into_arrays_in_tracks_order():
    with tempfile.TemporaryDirectory() as d:
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            t = new_trial(db)
            loss = db.metric(t["uid"], "loss")
            for step in [5, 2, 7]:
                loss.log(step / 10, step)
            loss.log(0.55, 5)                      # replaced where it stands
            steps, values = db.series(t["uid"], "loss")
            assert list(steps) == [5, 2, 7] and list(values) == [0.55, 0.2, 0.7]
            db.request("log_trial_metrics", trial=t["uid"], step=None, acc=0.1)
            db.request("log_trial_metrics", trial=t["uid"], step="end", acc="text")
            steps, values = db.series(t["uid"], "acc")
            assert list(steps) == [-2**63, -2**63] and values[0] == 0.1 and values[1] != values[1]  # NaN
            assert len(db.series(t["uid"], "nothing")[0]) == 0
            with pytest.raises(swift_track.NotFound):
                db.series("0" * 64 + "_0", "loss")


def test_log_many_stops_at_a_refused_point_and_spans_frames():
    import array
    with tempfile.TemporaryDirectory() as d:
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            t = new_trial(db)
            loss = db.metric(t["uid"], "loss")
            n = 300_000  # several frames in one call
            loss.log_many(array.array("q", range(n)), array.array("d", (float(i) for i in range(n))))
            with pytest.raises(swift_track.TrackError, match="reserved"):
                loss.log_many([n, n + 1, -2**63, n + 3], [1.0, 2.0, 3.0, 4.0])
            steps, values = db.series(t["uid"], "loss")
            assert len(steps) == n + 2 and list(steps[-3:]) == [n - 1, n, n + 1] and values[12345] == 12345.0


def test_the_object_api_makes_or_picks_projects_groups_and_trials():
    with tempfile.TemporaryDirectory() as d:
        with swift_track.open("file://" + os.path.join(d, "db")) as db:
            project = db.project("vision", description="image models")
            assert db.project("vision").uid == project.uid == "vision"
            group = project.group("sweep")
            assert project.group("sweep").uid == group.uid
            run = group.trial("mlp", parameters={"lr": 0.1})
            again = project.trial("mlp", parameters={"lr": 0.1}, group=group)
            assert again.uid == run.uid and run.uid.endswith("_0")
            other = project.trial("mlp", parameters={"lr": 0.2})
            assert other.uid != run.uid
            loss = run.metric("loss")
            with run.chrono("train"):
                for step in range(100):
                    loss.log(1.0 / (step + 1), step)
            run.log(step=100, loss=0.001, acc=0.9)
            run.set_status("Completed")
            run.log_arguments(epochs=10)
            run.add_tags(kind="baseline")
            with pytest.raises(ValueError):
                run.set_status("Done")
            steps, values = run.series("loss")
            assert list(steps)[:3] == [0, 1, 2] and len(steps) == 101 and values[100] == 0.001
            stored = run.json()
            assert run.status == "Completed" and stored["group_id"] == group.uid and stored["project_id"] == "vision"
            assert "train" in stored["chronos"] and stored["tags"]["kind"] == "baseline"
            assert sorted(t.uid for t in project.trials()) == sorted([run.uid, other.uid])


def test_the_readme_python_example_runs_as_written(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme[readme.index("## From Python, in-process"):]
    code = section[section.index("```python\n") + len("```python\n"):]
    code = code[:code.index("```")]
    assert "db.project(" in code
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    ran = subprocess.run([sys.executable, "-c", code + "\nassert len(steps) == 2002, len(steps)\n"],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    summary = subprocess.run([os.path.join(BIN, "track-replay"), "summary", str(tmp_path / "runs" / "db")], capture_output=True, text=True)
    assert summary.returncode == 0 and "mlp" in summary.stdout, summary.stdout + summary.stderr


def test_reopening_a_database_prints_nothing(tmp_path):
    """Every run of a training script reopens its database and continues the stream its last run
    closed: routine, so nothing is printed (the notice used to appear on every reopen)."""
    script = ("import swift_track\n"
              "db = swift_track.open('file://%s')\n"
              "db.project('p').trial('t').metric('loss').log(0.5, 0)\n"
              "db.close()\n") % (tmp_path / "db")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    for run in range(2):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", "run %d printed: %s" % (run, done.stderr)


WRITER = """
import sys, swift_track
db = swift_track.open("file://" + sys.argv[1])
run = db.project("p").trial(sys.argv[2])
loss = run.metric("loss")
points, commit_every = int(sys.argv[3]), int(sys.argv[4])
for step in range(points):
    loss.log(1.0 / (step + 1), step)
    if commit_every and (step + 1) % commit_every == 0:
        db.commit()
        print("committed", step + 1, flush=True)
print("done", flush=True)
if len(sys.argv) > 5:
    sys.stdin.readline()  # held open until the test kills it
"""


def start_writer(db_path, trial, points, commit_every=0, hold=False):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    args = [sys.executable, "-c", WRITER, db_path, trial, str(points), str(commit_every)] + (["hold"] if hold else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, env=env)


def test_several_processes_write_one_database_at_once_and_a_reader_follows(tmp_path):
    db_path = str(tmp_path / "db")
    with swift_track.open("file://" + db_path) as db:
        db.project("p")
    writers = [start_writer(db_path, "w%d" % i, 20_000, commit_every=2_000) for i in range(4)]
    # A reader in this process while they write: what it sees only grows.
    seen = {}
    with swift_track.open("file://" + db_path) as reader:
        while any(w.poll() is None for w in writers):
            for trial in reader.project("p").trials():
                n = len(reader.series(trial.uid, "loss")[0])
                assert n >= seen.get(trial.uid, 0), "a reader saw a series shrink"
                seen[trial.uid] = n
        for w in writers:
            assert w.wait() == 0 and w.stdout.read().strip().endswith("done")
        trials = reader.project("p").trials()
        assert sorted(t.name for t in trials) == ["w0", "w1", "w2", "w3"]
        for t in trials:
            steps, values = reader.series(t.uid, "loss")
            assert len(steps) == 20_000 and list(steps[:3]) == [0, 1, 2] and values[-1] == 1.0 / 20_000


def test_a_killed_process_keeps_what_it_committed(tmp_path):
    db_path = str(tmp_path / "db")
    writer = start_writer(db_path, "victim", 45_000, commit_every=10_000, hold=True)
    committed = 0
    for line in writer.stdout:
        if line.startswith("committed"):
            committed = int(line.split()[1])
        if line.startswith("done"):
            break
    writer.kill()  # SIGKILL: no exit handler runs
    writer.wait()
    assert committed == 40_000  # the last 5,000 points were never committed
    with swift_track.open("file://" + db_path) as db:
        [trial] = db.project("p").trials()
        assert len(db.series(trial.uid, "loss")[0]) >= committed
