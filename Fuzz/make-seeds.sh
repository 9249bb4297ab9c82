#!/usr/bin/env bash
# Writes the seed corpus of every fuzz target (Fuzz/corpus/<target>/) from a small database made
# by track-replay and from the socket transcript Python track recorded (../shared/data). Run from
# the repository root after a build: bash Fuzz/make-seeds.sh [path/to/track-replay]
set -euo pipefail
tool="${1:-.build/debug/track-replay}"
out=Fuzz/corpus
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$tool" synth "$work/db" --trials 2 --points 3000 --commit-every 300 --segment-bytes 8192 >/dev/null
rm -rf "$out"; mkdir -p "$out"/{frame,segment,index,snapshot,manifest,marker,request}
stream="$(ls "$work/db/streams" | head -1)"
i=0
for f in "$work/db/streams/$stream"/*.log; do
  # Segments: the whole file (small ones only), and each frame alone (for the frame target).
  [ "$(stat -c %s "$f")" -le 16384 ] && cp "$f" "$out/segment/seg$i"
  python3 - "$f" "$out/frame/f$i" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
offset, n = 32, 0
while offset + 64 <= len(data) and n < 3:
    stored = struct.unpack_from('<I', data, offset + 12)[0]
    open(f"{sys.argv[2]}-{n}", 'wb').write(data[offset:offset + 64 + stored])
    offset += 64 + stored; n += 1
PY
  i=$((i+1))
done
for f in "$work/db/streams/$stream"/*.idx; do cp "$f" "$out/index/$(basename "$f")"; done
cp "$work/db/streams/$stream/SYNCED" "$out/marker/synced"
"$tool" compact "$work/db" >/dev/null
"$tool" synth "$work/db" --trials 1 --points 500 --commit-every 100 --prefix more >/dev/null 2>&1
"$tool" compact "$work/db" >/dev/null
for f in "$work/db/snapshots"/*.snap; do cp "$f" "$out/snapshot/$(basename "$f")"; done
cp "$work/db/MANIFEST" "$out/manifest/current"; cp "$work/db/MANIFEST.prev" "$out/manifest/previous"
python3 - "$out/request" <<'PY'
import json, sys
for n, line in enumerate(open('../shared/data/socket_transcript.jsonl')):
    open(f"{sys.argv[1]}/r{n:03}", 'w').write(json.loads(line)["request_text"])
PY
du -sh "$out"
