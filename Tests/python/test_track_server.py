"""Python `track` clients against swift-track's `track-server` (issue 13): a training run logged
through the socket protocol as track's SocketClient sends it, with and without credentials and
with TLS, and the behaviours Python users rely on. Run by `make test` (pytest in .venv) with
TRACK_SERVER set to the built binary."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import track_wire as tw

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.environ.get("TRACK_SERVER", os.path.join(ROOT, ".build", "debug", "track-server"))
FIXTURES = os.path.join(ROOT, "Tests", "TrackServerTests", "Fixtures")
SHARED = os.environ.get("TRACK_SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))


class Server:
    """A track-server on 127.0.0.1 and a free port, over a fresh file:// database."""

    def __init__(self, *arguments):
        self.dir = tempfile.mkdtemp(prefix="swift-track-pytest-")
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.process = subprocess.Popen(
            [SERVER, "serve", "--listen", "127.0.0.1:0", "--backend", "file://" + self.dir + "/db", *arguments],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        self.port = None
        while self.port is None:
            self.log.seek(0)
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log.read())
            if found:
                self.port = int(found.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError("track-server did not start: " + self.log.read())
            else:
                time.sleep(0.05)

    def uri(self, credentials="", query=""):
        return "socket://%s127.0.0.1:%d%s" % (credentials, self.port, query)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def anonymous():
    server = Server("--allow-anonymous")
    yield server
    server.stop()


def test_compute_hash_matches_track():
    """The client's compute_hash agrees with the vectors made by track itself."""
    path = os.path.join(SHARED, "hash_vectors.json")
    if not os.path.exists(path):
        pytest.skip("reference data not found at " + path)
    for v in json.load(open(path)):
        if v["kind"] == "trial":
            run = lambda: tw.compute_hash(v["name"], v["version"], **v["parameters"])
            expected = v["expected_hash"]
        elif v["kind"] == "group":
            run = lambda: tw.compute_hash(v["name"], v["project_id"])
            expected = v["expected_group_uid"]
        else:
            continue
        if v.get("expected_error"):
            with pytest.raises(Exception):
                run()
        else:
            assert run() == expected, v["id"]


def log_training_run(client, name="mlp"):
    """A training loop as track's TrialLogger drives it: 50 steps, two epochs timed."""
    client.new_project(tw.project("vision"))
    g = client.new_trial_group(tw.group("sweep", "vision"))
    t = tw.trial(name, {"lr": 0.01, "batch": 32}, project_id="vision", group_id=g["uid"], version="1.0")
    created = client.new_trial(t)
    assert created["uid"] == t["uid"]
    uid = t["uid"]
    client.set_trial_status(uid, "Running", 101)
    client.log_trial_start(uid)
    for epoch in range(2):
        client.log_trial_chrono_start(uid, "epoch")
        for step in range(epoch * 25, epoch * 25 + 25):
            client.log_trial_metrics(uid, step=step, loss=1.0 / (step + 1))
        client.log_trial_chrono_finish(uid, "epoch")
    client.log_trial_metrics(uid, accuracy=0.9)
    client.log_trial_finish(uid)
    client.set_trial_status(uid, "Completed", 302)
    client.commit()
    return uid


def test_training_run_without_credentials(anonymous):
    """TrackClient('socket://host:port') sends null credentials; --allow-anonymous accepts them."""
    client = tw.Client(anonymous.uri())
    uid = log_training_run(client)
    [stored] = client.get_trial({"dtype": "trial", "uid": uid, "hash": uid.split("_")[0], "revision": 0, "parameters": {}})
    assert stored["status"] == {"name": "Completed", "value": 302}
    loss = stored["metrics"]["loss"]
    assert len(loss) == 50 and loss["0"] == 1.0 and loss["49"] == 1.0 / 50
    assert stored["metrics"]["accuracy"] == [0.9]
    assert stored["chronos"]["runtime"] >= 0
    # Queries compare a status with str(status), as Python does.
    assert [t["uid"] for t in client.fetch_trials({"status": "completed"})] == [uid]
    assert client.fetch_trials({"status": "Completed"}) == []
    client.close()


def test_training_run_with_credentials():
    with tempfile.TemporaryDirectory() as d:
        users = os.path.join(d, "users")
        subprocess.run([SERVER, "add-user", "alice", "--users", users, "--iterations", "1000"],
                       input=b"secret\n", check=True, capture_output=True)
        server = Server("--users", users)
        try:
            client = tw.Client(server.uri("alice:secret@"))
            log_training_run(client)
            client.close()
            with pytest.raises(tw.ServerError):
                tw.Client(server.uri("alice:wrong@"))
            with pytest.raises(tw.ServerError, match="credentials"):
                tw.Client(server.uri())
        finally:
            server.stop()


def test_training_run_over_tls():
    server = Server("--allow-anonymous", "--tls-cert", os.path.join(FIXTURES, "server.pem"),
                    "--tls-key", os.path.join(FIXTURES, "server.key"))
    try:
        client = tw.Client(server.uri(query="?security_layer=ssl&ca=" + os.path.join(FIXTURES, "test-ca.pem")))
        log_training_run(client)
        client.close()
    finally:
        server.stop()


def test_training_run_over_the_aes_layer():
    """?security_layer=AES, which Python track's client offers: the server speaks it with --aes-layer."""
    server = Server("--allow-anonymous", "--aes-layer")
    try:
        client = tw.Client(server.uri(query="?security_layer=AES"))
        uid = log_training_run(client)
        [stored] = client.get_trial({"dtype": "trial", "uid": uid, "hash": uid.split("_")[0], "revision": 0, "parameters": {}})
        assert len(stored["metrics"]["loss"]) == 50
        client.close()
    finally:
        server.stop()


def test_what_python_code_relies_on(anonymous):
    client = tw.Client(anonymous.uri())
    client.new_project(tw.project("p"))
    # new_trial_group on an existing group answers None.
    assert client.new_trial_group(tw.group("g", "p"))["name"] == "g"
    assert client.new_trial_group(tw.group("g", "p")) is None
    # A trial named by a uid whose revision is a string (Python's uid setter) is found.
    t = tw.trial("t", {"x": 1}, project_id="p")
    client.new_trial(t)
    found = client.get_trial({"dtype": "trial", "uid": t["uid"], "hash": t["hash"], "revision": "0", "parameters": {}})
    assert [x["uid"] for x in found] == [t["uid"]]
    # track's reservation pattern picks the interrupted trial.
    client.set_trial_status(t["uid"], "Interrupted", 201)
    reserved = client.fetch_and_update_trial({"status": {"$in": ["new", "suspended", "interrupted"]}}, "set_trial_status",
                                             status={"name": "Running", "value": 101})
    assert reserved["uid"] == t["uid"] and reserved["status"]["name"] == "Running"
    # A chrono finished once keeps its observation, as Python's StatStream does.
    client.log_trial_chrono_start(t["uid"], "epoch")
    client.log_trial_chrono_finish(t["uid"], "epoch")
    [stored] = client.get_trial({"dtype": "trial", "uid": t["uid"], "hash": t["hash"], "revision": 0, "parameters": {}})
    assert stored["chronos"]["epoch"]["current_count"] == 1
    client.close()
