"""Python training loops side by side (issue 15): one trial logging one scalar per step through
swift-track in-process (metric handle, array API, Python track's Protocol path), swift-track over
`socket://` (request-reply, as track's SocketClient does), and what Python users pick today:
tensorboardX `add_scalar`, wandb offline, Aim `Run.track`, MLflow's file store. Prints points per
second and bytes on disk per point for each and writes the table into BENCHMARKS.md.

Run by `make compare-python` (release library and server, a venv with the other systems);
ONLY=<substring> runs only the systems whose name contains it and leaves BENCHMARKS.md alone.
Each system logs up to POINTS points or for at most SECONDS seconds, whichever comes first; slow
systems are measured on what they managed, and the table says so.
"""

import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRACK_BIN", os.path.join(ROOT, ".build", "release"))
os.environ.setdefault("SWIFT_TRACK_LIBRARY", os.path.join(BIN, "libTrackC.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "Tests", "python"))

import swift_track  # noqa: E402
from benchmarks_md import replace_section  # noqa: E402
import track_wire as tw  # noqa: E402

POINTS = int(os.environ.get("POINTS", "1000000"))
SECONDS = float(os.environ.get("SECONDS", "20"))


def disk_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def loss(step):
    return 2.3 / (1 + step / 1000) + (step % 7) / 1000


def timed_loop(log, close):
    """Logs step by step until POINTS or SECONDS; returns (points, seconds)."""
    start = time.perf_counter()
    deadline = start + SECONDS
    step = 0
    while step < POINTS:
        end = min(POINTS, step + 1000)
        for s in range(step, end):
            log(loss(s), s)
        step = end
        if time.perf_counter() > deadline:
            break
    close()
    return step, time.perf_counter() - start


def new_trial(db):
    db.request("new_project", project=tw.project("bench"))
    t = tw.trial("run", {"lr": 0.01}, project_id="bench")
    db.request("new_trial", trial=t)
    return t["uid"]


def swift_handle(d):
    db = swift_track.open("file://" + d)
    metric = db.metric(new_trial(db), "loss")
    return timed_loop(metric.log, lambda: db.close())


def swift_array(d):
    import array
    db = swift_track.open("file://" + d)
    metric = db.metric(new_trial(db), "loss")
    start = time.perf_counter()
    chunk = min(100_000, POINTS)
    for base in range(0, POINTS, chunk):
        steps = array.array("q", range(base, min(POINTS, base + chunk)))
        values = array.array("d", (loss(s) for s in steps))
        metric.log_many(steps, values)
    db.close()
    # The values are computed in Python too; what the engine takes is measured alone below.
    return POINTS, time.perf_counter() - start


def swift_array_engine_only(d):
    import array
    db = swift_track.open("file://" + d)
    metric = db.metric(new_trial(db), "loss")
    chunk = 1_000_000
    values = array.array("d", (loss(s) for s in range(chunk)))
    n = max(POINTS, 10 * chunk)
    # The step arrays are made before the clock starts: only the engine's work is timed.
    all_steps = [array.array("q", range(base, base + chunk)) for base in range(0, n, chunk)]
    start = time.perf_counter()
    for steps in all_steps:
        metric.log_many(steps, values)
    db.close()
    return n, time.perf_counter() - start


def swift_protocol(d):
    from swift_track.track_backend import SwiftTrackProtocol
    proto = SwiftTrackProtocol("swifttrack://" + d)
    uid = new_trial(proto.db)
    log = proto.log_trial_metrics
    return timed_loop(lambda v, s: log(uid, step=s, loss=v), lambda: proto.close())


def swift_socket(d):
    port = free_port()
    server = subprocess.Popen([os.path.join(BIN, "track-server"), "--listen", "127.0.0.1:%d" % port,
                               "--backend", "file://" + d, "--allow-anonymous"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = None
        for _ in range(200):
            try:
                client = tw.Client("socket://127.0.0.1:%d" % port)  # authenticates, as track's SocketClient
                break
            except OSError:
                time.sleep(0.05)
        client.call("new_project", project=tw.project("bench"))
        t = tw.trial("run", {"lr": 0.01}, project_id="bench")
        client.call("new_trial", trial=t)
        uid = t["uid"]
        result = timed_loop(lambda v, s: client.call("log_trial_metrics", trial=uid, step=s, loss=v),
                            lambda: client.call("commit"))
        client.close()
        return result
    finally:
        server.terminate()
        server.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboardx(d):
    from tensorboardX import SummaryWriter
    writer = SummaryWriter(logdir=d)
    return timed_loop(lambda v, s: writer.add_scalar("loss", v, s), writer.close)


def wandb_offline(d):
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    import wandb
    run = wandb.init(project="bench", dir=d, settings=wandb.Settings(mode="offline", console="off"))
    return timed_loop(lambda v, s: run.log({"loss": v}, step=s), run.finish)


def aim_run(d):
    from aim import Run
    run = Run(repo=d, experiment="bench")
    return timed_loop(lambda v, s: run.track(v, name="loss", step=s), run.close)


def mlflow_file(d):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps its file store only on request
    import mlflow
    mlflow.set_tracking_uri("file://" + d)
    mlflow.start_run()
    return timed_loop(lambda v, s: mlflow.log_metric("loss", v, step=s), mlflow.end_run)


def swift_read_back(d):
    """Reading a series back into numpy (or array.array): 10 M points logged, the database
    reopened (so the read is not the writer's own catch-up), then read whole; the points/s column
    is the read's."""
    import array
    db = swift_track.open("file://" + d)
    uid = new_trial(db)
    metric = db.metric(uid, "loss")
    chunk = 1_000_000
    values = array.array("d", (loss(s) for s in range(chunk)))
    n = max(POINTS, 10 * chunk)
    for base in range(0, n, chunk):
        metric.log_many(array.array("q", range(base, base + chunk)), values)
    db.close()
    db = swift_track.open("file://" + d)
    best = None
    for _ in range(3):
        start = time.perf_counter()
        steps, _ = db.series(uid, "loss")
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    db.close()
    assert len(steps) == n
    return n, best


# The sweep: SWEEP_TRIALS trials x SWEEP_METRICS metrics, each step logs every metric of every trial.
SWEEP_TRIALS, SWEEP_METRICS = 16, 4


def sweep_loop(log, close):
    """log(trial, metric, value, step) for every trial and metric per step, up to POINTS points
    in all or SECONDS; returns (points, seconds)."""
    start = time.perf_counter()
    deadline = start + SECONDS
    points = step = 0
    while points < POINTS and time.perf_counter() < deadline:
        for _ in range(100):
            for t in range(SWEEP_TRIALS):
                for m in range(SWEEP_METRICS):
                    log(t, m, loss(step) + m, step)
            step += 1
        points = step * SWEEP_TRIALS * SWEEP_METRICS
    close()
    return points, time.perf_counter() - start


def swift_sweep(d):
    db = swift_track.open("file://" + d)
    db.request("new_project", project=tw.project("sweep"))
    handles = []
    for t in range(SWEEP_TRIALS):
        trial = tw.trial("run", {"lr": 0.001 * (t + 1)}, project_id="sweep")
        db.request("new_trial", trial=trial)
        handles.append([db.metric(trial["uid"], "m%d" % m) for m in range(SWEEP_METRICS)])
    return sweep_loop(lambda t, m, v, s: handles[t][m].log(v, s), db.close)


def tensorboardx_sweep(d):
    from tensorboardX import SummaryWriter
    writers = [SummaryWriter(logdir=os.path.join(d, "run%d" % t)) for t in range(SWEEP_TRIALS)]
    names = ["m%d" % m for m in range(SWEEP_METRICS)]
    return sweep_loop(lambda t, m, v, s: writers[t].add_scalar(names[m], v, s), lambda: [w.close() for w in writers])


def _process_worker(d, index, points, ready, go):
    db = swift_track.open("file://" + d)
    trial = tw.trial("run", {"worker": index}, project_id="bench")
    db.request("new_trial", trial=trial)
    metric = db.metric(trial["uid"], "loss")
    ready.put(index)
    go.wait()
    for s in range(points):
        metric.log(loss(s), s)
    db.close()


MEDIAN_RUNS = 3


def median_of_runs(run):
    """`run(d)` MEDIAN_RUNS times, a fresh database each time, keeping the median rate: one short
    run on a shared 2-core machine swings by a third (a segment roll's fsync alone takes 20-100 ms
    depending on what the disk is still flushing)."""
    def measured(d):
        results = []
        for n in range(MEDIAN_RUNS):
            if n:
                shutil.rmtree(d, ignore_errors=True)  # bytes on disk are the last run's
            results.append(run(d))
        results.sort(key=lambda r: r[0] / r[1])
        return results[len(results) // 2]
    return measured


def swift_processes(d, workers):
    """`workers` Python processes (spawned), each logging POINTS / 2 points of its own trial into
    one database through the handle API; the clock runs from when all are ready to when all exit."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    db = swift_track.open("file://" + d)
    db.request("new_project", project=tw.project("bench"))
    db.close()
    ready, go = ctx.Queue(), ctx.Event()
    per = max(1, POINTS // 2)
    procs = [ctx.Process(target=_process_worker, args=(d, i, per, ready, go)) for i in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a worker exited with %s" % p.exitcode)
    return per * workers, time.perf_counter() - start


SYSTEMS = [
    ("swift-track, metric handle (metric.log)", swift_handle),
    ("swift-track, array API (log_many, values computed in Python)", swift_array),
    ("swift-track, array API, engine only (log_many of ready arrays; median of 3 runs)", median_of_runs(swift_array_engine_only)),
    ("swift-track, reading a series back into numpy (10 M points, database reopened)", swift_read_back),
    ("swift-track, Python track's Protocol path (no mirror)", swift_protocol),
    ("swift-track over socket://, request-reply (as track's SocketClient)", swift_socket),
    # Before the other systems: wandb leaves its wandb-core service running (a child of this
    # process, still using CPU after finish()) until this process exits, which took CPU from the
    # four processes.
    ("swift-track, metric handle, 1 process (POINTS/2 points; median of 3 runs)", median_of_runs(lambda d: swift_processes(d, 1))),
    ("swift-track, metric handle, 4 processes into one database (POINTS/2 points each; median of 3 runs)",
     median_of_runs(lambda d: swift_processes(d, 4))),
    ("tensorboardX add_scalar", tensorboardx),
    ("wandb, offline", wandb_offline),
    ("Aim Run.track", aim_run),
    ("MLflow, file store", mlflow_file),
    ("sweep %dx%d: swift-track, metric handles" % (SWEEP_TRIALS, SWEEP_METRICS), swift_sweep),
    ("sweep %dx%d: tensorboardX add_scalar, a writer per trial" % (SWEEP_TRIALS, SWEEP_METRICS), tensorboardx_sweep),
]


def main():
    rows = []
    only = os.environ.get("ONLY")  # a substring: run only those systems, and leave BENCHMARKS.md alone
    for name, run in SYSTEMS:
        if only and only not in name:
            continue
        d = tempfile.mkdtemp(prefix="bench-python-")
        try:
            points, seconds = run(os.path.join(d, "store"))
            size = disk_bytes(d)
            rows.append((name, points, points / seconds, size / points if points else 0.0))
            print("%-70s %9d points %12.0f points/s %8.1f bytes/point" % rows[-1], flush=True)
        except Exception as e:  # a system that is not installed or fails: say so, go on
            rows.append((name, 0, 0.0, 0.0))
            print("%-70s failed: %s" % (name, e), flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if not only:
        write_table(rows)


def write_table(rows):
    handle = next(r for r in rows if r[0].startswith("swift-track, metric handle"))
    lines = ["## Python training loops, side by side (`make compare-python`)", "",
             "Measured in one run on %s: %s, Python %s; each system logs one scalar per step of one trial, "
             "up to %d points or %g s (fewer points: measured on what it logged)." % (
                 datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), platform.platform(),
                 platform.python_version(), POINTS, SECONDS), "",
             "| system | points | points/s | bytes/point on disk | swift-track's handle faster by |",
             "|---|---:|---:|---:|---:|"]
    for name, points, rate, per_point in rows:
        if not points:
            lines.append("| %s | - | failed or not installed | - | - |" % name)
            continue
        lines.append("| %s | %d | %s | %.1f | %s |" % (name, points, human(rate), per_point,
                                                       "-" if name == handle[0] else "%.1f×" % (handle[2] / rate)))
    one = next((r for r in rows if r[0].startswith("swift-track, metric handle, 1 process")), None)
    four = next((r for r in rows if r[0].startswith("swift-track, metric handle, 4 processes")), None)
    if one and four and one[2] and four[2]:
        lines += ["", "4 processes log %.2f× the points per second of one (target ≥ 1.5×; the machine has %d cores)." % (
            four[2] / one[2], os.cpu_count() or 0)]
    replace_section('## Python training loops, side by side', "\n".join(lines) + "\n")


def human(rate):
    if rate >= 1e6:
        return "%.2f M" % (rate / 1e6)
    if rate >= 1e3:
        return "%.1f k" % (rate / 1e3)
    return "%.0f" % rate


if __name__ == "__main__":
    main()
