#!/usr/bin/env bash
# Usage: Tools/watchdog.sh SECONDS COMMAND [ARGUMENT...]
#
# Runs COMMAND. If it is still running after SECONDS, prints the stack of every thread of the
# test processes it started (with gdb, when installed), ends them and exits 124: a hung test run
# becomes a failure that says where it hung, long before CI's own limit cuts it off silently.
# Otherwise exits with COMMAND's status.
set -u
limit="$1"; shift

descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do echo "$child"; descendants "$child"; done
}

fired="$(mktemp)"; rm -f "$fired"
"$@" &
pid=$!
(
  # Wakes every 5 s so that it ends soon after COMMAND does.
  waited=0
  while [ "$waited" -lt "$limit" ]; do
    sleep 5; waited=$((waited + 5))
    kill -0 "$pid" 2>/dev/null || exit 0
  done
  touch "$fired"
  echo "watchdog: '$*' is still running after $limit s; the stacks of its test processes follow" >&2
  for p in $(descendants "$pid"); do
    name="$(cat "/proc/$p/comm" 2>/dev/null)"
    case "$name" in
      *xctest*|*swift-testing*|*PackageTest*|*python*|track-*)
        echo "watchdog: process $p ($name): $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-200)" >&2
        if command -v gdb >/dev/null 2>&1; then
          gdb -p "$p" -batch -ex 'set pagination off' -ex 'thread apply all bt 30' 2>&1 | grep -E '^(Thread|#)' >&2
        else
          echo "watchdog: gdb is not installed; no stacks" >&2
        fi ;;
    esac
  done
  kill -- $(descendants "$pid") "$pid" 2>/dev/null
) &
watcher=$!
wait "$pid"
status=$?
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null
if [ -e "$fired" ]; then rm -f "$fired"; exit 124; fi
exit "$status"
