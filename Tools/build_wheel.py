#!/usr/bin/env python3
"""Builds the swift_track wheel from python/swift_track and a built libTrackC.so.

Usage: build_wheel.py --library PATH [--bundle PATH ...] [--out DIR] [--version V]

The wheel holds the pure-Python package, the C ABI library and the shared libraries given with
--bundle (liblz4), which the library finds beside itself (its RUNPATH is $ORIGIN). Its platform
tag is manylinux_2_N_<arch>, N being the newest glibc symbol version the shared objects need, so
pip installs it on any Linux machine with that glibc or newer, with no Swift toolchain. Only the
standard library is used (zipfile, hashlib).
"""

import argparse
import base64
import hashlib
import os
import platform
import re
import subprocess
import sys
import zipfile

NAME = "swift_track"
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.join(HERE, "..", "python", NAME)


def glibc_minor(paths):
    """The newest GLIBC_2.N symbol version the shared objects at `paths` need (objdump -T)."""
    newest = 17  # manylinux2014's floor
    for path in paths:
        out = subprocess.run(["objdump", "-T", path], check=True, capture_output=True, text=True).stdout
        for minor in re.findall(r"GLIBC_2\.(\d+)", out):
            newest = max(newest, int(minor))
    return newest


def record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description="Build the swift_track wheel.")
    parser.add_argument("--library", required=True, help="the built libTrackC.so (release, static Swift runtime)")
    parser.add_argument("--bundle", action="append", default=[], help="a shared library to ship beside it (liblz4.so.1)")
    parser.add_argument("--out", default="dist", help="where the wheel goes (default: dist)")
    parser.add_argument("--version", default="0.1.0", help="the package version")
    args = parser.parse_args()

    for path in [args.library] + args.bundle:
        if not os.path.isfile(path):
            sys.exit(f"build_wheel: {path} does not exist")
    arch = platform.machine()
    tag = f"py3-none-manylinux_2_{glibc_minor([args.library] + args.bundle)}_{arch}"
    dist_info = f"{NAME}-{args.version}.dist-info"
    files = []  # (arcname, bytes)
    for entry in sorted(os.listdir(PACKAGE_DIR)):
        if entry.endswith(".py"):
            with open(os.path.join(PACKAGE_DIR, entry), "rb") as f:
                files.append((f"{NAME}/{entry}", f.read()))
    with open(args.library, "rb") as f:
        files.append((f"{NAME}/libTrackC.so", f.read()))
    for path in args.bundle:
        with open(path, "rb") as f:
            files.append((f"{NAME}/{os.path.basename(path)}", f.read()))
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {args.version}",
        "Summary: swift-track in-process: log training metrics into the swift-track event log from Python",
        "Requires-Python: >=3.9",
        "License: see the swift-track repository",
        "",
    ])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: swift-track Tools/build_wheel.py", "Root-Is-Purelib: false", f"Tag: {tag}", ""])
    files.append((f"{dist_info}/METADATA", metadata.encode()))
    files.append((f"{dist_info}/WHEEL", wheel.encode()))
    files.append((f"{dist_info}/top_level.txt", f"{NAME}\n".encode()))
    record = [record_line(name, data) for name, data in files] + [f"{dist_info}/RECORD,,"]
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))

    os.makedirs(args.out, exist_ok=True)
    target = os.path.join(args.out, f"{NAME}-{args.version}-{tag}.whl")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o755 if name.endswith(".so") or ".so." in name else 0o644) << 16
            z.writestr(info, data)
    print(target)


if __name__ == "__main__":
    main()
