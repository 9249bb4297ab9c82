"""The drop-in backend of Python track (issue 15): `swifttrack://` registered at import, every
Protocol method answering as track's conformance facts say, no in-memory mirror with
`track_client`. Python track cannot be installed here: `fake_track/` stands in for the parts the
backend touches (register, get_protocol's multiplexer, serialization, TrackClient)."""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRACK_BIN", os.path.join(ROOT, ".build", "debug"))
os.environ.setdefault("SWIFT_TRACK_LIBRARY", os.path.join(BIN, "libTrackC.so"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fake_track"))
sys.path.insert(0, os.path.join(ROOT, "python"))

import swift_track  # noqa: E402
import track.persistence  # noqa: E402
from track.persistence.protocol import Protocol  # noqa: E402
from track.serialization import Project, Status, Trial, TrialGroup  # noqa: E402
from swift_track.track_backend import SwiftTrackProtocol, track_client  # noqa: E402
import track_wire as tw  # noqa: E402


def trial_object(name, parameters, project_id, group_id=None):
    t = tw.trial(name, parameters, project_id=project_id)
    t["group_id"] = group_id
    return Trial(**t)


def test_importing_registers_the_scheme():
    # In a process of its own: importing swift_track after track registers the scheme.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "python"), os.path.join(os.path.dirname(__file__), "fake_track")]))
    code = ("import track.persistence, swift_track; from swift_track.track_backend import SwiftTrackProtocol; "
            "assert track.persistence._protocols['swifttrack'] is SwiftTrackProtocol; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    missing = [m for m in Protocol.METHODS if not callable(getattr(SwiftTrackProtocol, m, None))]
    assert missing == []


def test_the_package_imports_without_track():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    code = "import swift_track, sys; assert 'track' not in sys.modules; assert not swift_track.track_backend.register(); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_training_run_through_the_protocol():
    with tempfile.TemporaryDirectory() as d:
        db_path = os.path.join(d, "db")
        client = track_client("swifttrack://" + db_path)
        proto = client.protocol
        assert isinstance(proto, SwiftTrackProtocol), "track_client leaves no multiplexer"
        project = proto.new_project(Project(**tw.project("vision", metadata={"owner": "me"})))
        assert project.uid == "vision" and project.metadata == {"owner": "me"}
        assert proto.get_project(Project(**tw.project("vision"))).name == "vision"
        group = proto.new_trial_group(TrialGroup(**tw.group("sweep", "vision")))
        assert group.project_id == "vision"
        assert proto.new_trial_group(TrialGroup(**tw.group("sweep", "vision"))) is None, "an existing group answers None, as track"
        trial = proto.new_trial(trial_object("mlp", {"lr": 0.1}, "vision", group.uid))
        proto.add_group_trial(group, trial)
        proto.log_trial_start(trial)
        proto.log_trial_arguments(trial, batch_size=32)
        proto.log_trial_metadata(trial, gpu="V100")
        proto.add_trial_tags(trial, hpo="grid")
        proto.set_trial_status(trial, Status(name="Running", value=101))
        for step in range(5000):
            proto.log_trial_metrics(trial, step=step, loss=1.0 / (step + 1))   # the handle path
        proto.log_trial_metrics(trial, step=None, acc=0.5)                       # the general path
        proto.log_trial_metrics(trial, step="final", acc=0.9)
        proto.log_trial_chrono_start(trial, "epoch")
        proto.log_trial_chrono_finish(trial, "epoch", None, None, None)
        proto.log_trial_finish(trial, None, None, None)
        [stored] = proto.get_trial(trial)
        assert isinstance(stored, Trial) and stored.uid == trial.uid
        assert len(stored.metrics["loss"]) == 5000 and stored.metrics["loss"]["4999"] == 1.0 / 5000
        assert stored.metrics["acc"] == [0.5, ["final", 0.9]]
        assert stored.parameters["batch_size"] == 32 and stored.metadata["gpu"] == "V100" and stored.tags["hpo"] == "grid"
        # track's reservation pattern: statuses compare as str(status).
        updated = proto.fetch_and_update_trial({"status": {"$in": ["new", "running"]}}, "set_trial_status",
                                               status=Status(name="Completed", value=102))
        assert updated.uid == trial.uid and updated.status["name"] == "Completed"
        assert [t.uid for t in proto.fetch_trials({"status": "completed"})] == [trial.uid]
        assert [g.uid for g in proto.fetch_groups({"project_id": "vision"})] == [group.uid]
        assert [p.uid for p in proto.fetch_projects({})] == ["vision"]
        proto.commit()
        proto.close()
        summary = subprocess.run([os.path.join(BIN, "track-replay"), "summary", db_path], capture_output=True, text=True)
        assert summary.returncode == 0, summary.stderr
        assert "mlp" in summary.stdout and "5002" in summary.stdout, summary.stdout


def test_protocol_answers_as_the_conformance_facts_say():
    """The facts of the Swift conformance suite (and the Python-compatibility points) that a
    Python caller sees, through the Protocol methods."""
    with tempfile.TemporaryDirectory() as d:
        proto = SwiftTrackProtocol("swifttrack://" + os.path.join(d, "db"))
        proto.new_project(Project(**tw.project("p")))
        trial = proto.new_trial(trial_object("run", {"lr": 0.1}, "p"))
        # An existing trial: None, as track; auto_increment makes the next revision.
        assert proto.new_trial(trial_object("run", {"lr": 0.1}, "p")) is None
        again = proto.new_trial(trial_object("run", {"lr": 0.1}, "p"), auto_increment=True)
        assert again.uid.endswith("_1") and again.uid.split("_")[0] == trial.uid.split("_")[0]
        assert len(proto.get_trial(trial)) == 2, "get_trial answers every revision of the hash"
        # Unknown objects: None, as track.
        assert proto.get_trial(trial_object("nothing", {"x": 1}, "p")) is None
        assert proto.get_project(Project(**tw.project("nope"))) is None
        # A strict database refuses a metric of a trial that does not exist, on either path.
        ghost = tw.trial("ghost", {"x": 2}, project_id="p")["uid"]
        for kwargs in ({"step": 1, "loss": 0.5}, {"step": None, "loss": 0.5}, {"step": 1, "a": 1.0, "b": 2.0}):
            try:
                proto.log_trial_metrics(ghost, **kwargs)
                proto.commit()
                raise AssertionError("a metric of a missing trial was accepted: %r" % (kwargs,))
            except swift_track.TrackError as e:
                assert "ghost" in str(e) or ghost in str(e) or "does not exist" in str(e), str(e)
        # Step-keyed metrics keep the order steps first came, the latest value of a step.
        for step, value in ((3, 0.3), (1, 0.1), (2, 0.2), (1, 0.15)):
            proto.log_trial_metrics(trial, step=step, acc=value)
        # A list metric: step=0 (falsy) keeps the bare value, as track's `elif step:`.
        proto.log_trial_metrics(trial, step=None, note=0.5)
        proto.log_trial_metrics(trial, step=0, note=0.7)
        proto.log_trial_metrics(trial, step=2, note=0.9)
        [stored, _] = sorted(proto.get_trial(trial), key=lambda t: t.uid)
        assert list(stored.metrics["acc"].items()) == [("3", 0.3), ("1", 0.15), ("2", 0.2)]
        assert stored.metrics["note"] == [0.5, 0.7, [2, 0.9]]
        # Statuses: a custom one is kept with its name and value; queries compare str(status).
        proto.set_trial_status(trial, Status(name="Paused", value=150))
        assert [t.uid for t in proto.fetch_trials({"status": "Paused"})] == [trial.uid]
        # A chrono finished once records one duration.
        proto.log_trial_chrono_start(trial, "epoch")
        proto.log_trial_chrono_finish(trial, "epoch", None, None, None)
        [stored, _] = sorted(proto.get_trial(trial), key=lambda t: t.uid)
        assert "epoch" in stored.chronos
        proto.close()
