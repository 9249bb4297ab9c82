"""The wheel `make python` builds (issue 15, point 4): its library needs nothing a manylinux wheel
may not rely on, and it installs into a fresh venv where a training loop logs through it with no
Swift toolchain on any path; track-replay reads the result. Runs when SWIFT_TRACK_WHEEL names the
wheel (make test builds it and sets it)."""

import glob
import os
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRACK_BIN", os.path.join(ROOT, ".build", "debug"))
WHEEL = os.environ.get("SWIFT_TRACK_WHEEL")

pytestmark = pytest.mark.skipif(not WHEEL, reason="SWIFT_TRACK_WHEEL is not set (make test builds the wheel with make python and sets it)")

# What a manylinux wheel may link against outside itself (PEP 599/600), plus the vDSO.
ALLOWED = {"linux-vdso.so.1", "libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libpthread.so.0",
           "libdl.so.2", "librt.so.1", "libutil.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def clean_env(tmp_path):
    """An environment with no Swift toolchain, no library path and no hint where the library is."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}


def test_the_library_needs_only_what_a_manylinux_wheel_may(tmp_path):
    with zipfile.ZipFile(WHEEL) as z:
        z.extractall(tmp_path)
    library = tmp_path / "swift_track" / "libTrackC.so"
    out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, env=clean_env(tmp_path), check=True).stdout
    outside = []
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        name = os.path.basename(parts[0])
        target = parts[2] if len(parts) > 2 and parts[1] == "=>" else ""
        if name in ALLOWED or target.startswith(str(tmp_path)):
            continue
        outside.append(line.strip())
    assert not outside, "libTrackC.so needs libraries a wheel may not rely on:\n" + "\n".join(outside)
    assert "libswift" not in out and "libFoundation" not in out and "/opt/swift" not in out, out
    assert os.path.basename(WHEEL).split("-")[-1].startswith("manylinux_2_")


def test_the_wheel_installs_in_a_fresh_venv_and_a_loop_logs_through_it(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--disable-pip-version-check", WHEEL],
                   check=True, env=clean_env(tmp_path))
    db = tmp_path / "db"
    script = f"""
import os, swift_track
assert swift_track.__file__.startswith({str(venv)!r}), swift_track.__file__
with swift_track.open("file://{db}") as db:
    run = db.project("wheel").trial("loop", parameters={{"lr": 0.1}})
    loss = run.metric("loss")
    for step in range(5000):
        loss.log(1.0 / (step + 1), step)
    db.commit()
print("logged")
"""
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, env=clean_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0 and "logged" in done.stdout, done.stderr
    summary = subprocess.run([os.path.join(BIN, "track-replay"), "summary", str(db)], capture_output=True, text=True)
    assert summary.returncode == 0, summary.stderr
    assert "loop" in summary.stdout and "5000" in summary.stdout, summary.stdout
