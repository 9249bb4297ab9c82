# Set-up and the two jobs of the README. Every target installs what the system lacks first.
#
#   make demo   build (release) and run the demo training loop, logged and read back
#   make test   build and run every test
#
# System packages needed: liblz4-dev, pkg-config and binutils (Debian); lz4 and pkg-config (Homebrew).

SWIFT ?= swift
SYSTEM_PACKAGES_APT := liblz4-dev pkg-config

.PHONY: all deps deps-postgres deps-python deps-gdb deps-ui ui bench-ui deps-compare demo test bench compare compare-python build release clean help fuzz fuzz-build crash python

all: test

help:
	@echo "make demo    run the demo training loop (installs liblz4-dev, pkg-config and binutils if missing)"
	@echo "make test    run every test (installs liblz4-dev, pkg-config, binutils, postgresql, openssl, gdb, chromium, libjs-dygraphs and a Python venv with pytest if missing)"
	@echo "make bench   run the benchmark suite (release build, several minutes)"
	@echo "make compare compare with SQLite, track's FileProtocol strategy and JSON lines; writes BENCHMARKS.md"
	@echo "make python  build the Python wheel (dist/swift_track-*.whl): libTrackC with the Swift runtime linked in, liblz4 beside it"
	@echo "make compare-python  Python loops: swift-track in-process and over socket:// vs tensorboardX, wandb, Aim, MLflow; writes BENCHMARKS.md"
	@echo "make fuzz    run every fuzz target (libFuzzer) for FUZZ_SECONDS each (default 60); a crash input is kept"
	@echo "make crash   the crash and power-loss tests with more kills and cut points (CRASH_SCALE=10)"
	@echo "make bench-ui  the web view's targets (1,000-trial table, 10 M-point curve, live point) in headless chromium; writes BENCHMARKS.md"
	@echo "make ui      build the web view (track-ui DB serves it on 127.0.0.1:8080; installs libjs-dygraphs if missing)"
	@echo "make build   debug build; make release: release build; make clean: remove .build"

# Installs liblz4-dev, pkg-config and binutils (objdump and strip, for the wheel) when they are missing, saying what it installs.
deps:
	@missing=""; \
	command -v pkg-config >/dev/null 2>&1 || missing="$$missing pkg-config"; \
	if ! pkg-config --exists liblz4 2>/dev/null && [ ! -f /usr/include/lz4.h ]; then missing="$$missing liblz4-dev"; fi; \
	command -v objdump >/dev/null 2>&1 && command -v strip >/dev/null 2>&1 || missing="$$missing binutils"; \
	if [ -z "$$missing" ]; then \
	  echo "deps: liblz4-dev, pkg-config and binutils are installed"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing system packages:$$missing (apt-get)"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	elif command -v brew >/dev/null 2>&1; then \
	  echo "deps: installing lz4 pkg-config (brew)"; brew install lz4 pkg-config; \
	else \
	  echo "deps: missing$$missing and no apt-get or brew to install them; install liblz4 (with headers) and pkg-config" >&2; exit 1; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product track-replay

demo: release
	$$($(SWIFT) build -c release --show-bin-path)/track-replay demo

# The SQL store's tests run a real PostgreSQL server (initdb into a temporary folder, as the
# postgres user when run as root); Debian's postgresql package provides it, under
# /usr/lib/postgresql/<version>/bin.
deps-postgres:
	@missing=""; \
	if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "$$PG_BIN" ]; then \
	  echo "deps: PostgreSQL server binaries are installed"; else missing="postgresql"; fi; \
	if command -v openssl >/dev/null 2>&1; then :; else missing="$$missing openssl"; fi; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing system packages:$$missing (apt-get), for the SQL tests (openssl makes their TLS certificates)"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "deps: missing$$missing and there is no apt-get; install PostgreSQL (set PG_BIN to the folder holding initdb and pg_ctl) and openssl" >&2; exit 1; \
	fi

# The web view's charting library (Debian's libjs-dygraphs, served by track-ui) and, for its
# tests, a headless browser (Debian's chromium).
deps-ui:
	@missing=""; \
	[ -f /usr/share/javascript/dygraphs/dygraph.min.js ] || missing=" libjs-dygraphs"; \
	if [ "$(UI_BROWSER)" = yes ] && ! command -v chromium >/dev/null 2>&1; then missing="$$missing chromium"; fi; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing$$missing (apt-get): libjs-dygraphs draws the web view's charts, chromium runs its tests"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: missing $$missing and there is no apt-get; install dygraphs (give track-ui --dygraphs DIR) and chromium" >&2; exit 1; fi
UI_BROWSER ?= no

# The web view: track-ui DB serves a live view of DB on http://127.0.0.1:8080/.
ui: deps deps-ui
	$(SWIFT) build -c release --product track-ui
	@echo "run: $$($(SWIFT) build -c release --show-bin-path)/track-ui DATABASE   (then open http://127.0.0.1:8080/)"

# gdb, with which Tools/watchdog.sh shows where a hung test run hangs.
deps-gdb:
	@if command -v gdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing gdb (apt-get), so that a hung test run prints its threads' stacks"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends gdb; \
	else echo "deps: gdb is missing (a hung test run will not show its stacks)"; fi

# A Python venv with pytest, for the tests that speak to track-server as Python track's
# SocketClient does (Tests/python: a standard-library client and a pytest module).
VENV ?= .venv
deps-python:
	@missing=""; \
	command -v python3 >/dev/null 2>&1 || missing="python3 python3-venv"; \
	if [ -z "$$missing" ] && ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then missing="python3-venv"; fi; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing system packages: $$missing (apt-get), for the Python client tests"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "deps: missing $$missing and there is no apt-get; install Python 3 with its venv module" >&2; exit 1; \
	fi; \
	if [ -x $(VENV)/bin/pytest ] && $(VENV)/bin/python -c "import cryptography" >/dev/null 2>&1; then echo "deps: $(VENV) has pytest and cryptography"; \
	else echo "deps: creating the Python venv $(VENV) and installing pytest and cryptography (for the AES layer) into it (pip)"; \
	  rm -rf $(VENV) && python3 -m venv $(VENV) && $(VENV)/bin/pip install --quiet --disable-pip-version-check pytest cryptography; fi

# The tests use Swift Testing only, so XCTest's empty run is skipped. Without a sanitizer build,
# TrackFuzzTests feeds every decoder the seed corpus, Fuzz/regressions and seeded mutations.
# Then the Python tests: the socket client against the track-server swift test built, and the
# in-process package (python/) over the C ABI library (libTrackC.so), and the wheel (make python)
# installed into a fresh venv.
# A run still going after TEST_SECONDS_MAX (build included) is a hang: Tools/watchdog.sh prints
# the stacks of the test process (gdb) and fails it, instead of CI's limit cutting it off mute.
TEST_SECONDS_MAX ?= 2400
test: deps deps-postgres deps-python deps-gdb
	@$(MAKE) --no-print-directory deps-ui UI_BROWSER=yes
	Tools/watchdog.sh $(TEST_SECONDS_MAX) $(SWIFT) test --disable-xctest
	$(SWIFT) build --product TrackC
	$(MAKE) --no-print-directory python
	bin="$$($(SWIFT) build --show-bin-path)"; TRACK_BIN="$$bin" TRACK_SERVER="$$bin/track-server" SWIFT_TRACK_LIBRARY="$$bin/libTrackC.so" \
	  SWIFT_TRACK_WHEEL="$$(ls -t dist/swift_track-*.whl | head -1)" Tools/watchdog.sh 600 $(VENV)/bin/python -m pytest -q -p no:cacheprovider Tests/python

# The Python wheel: the C ABI library built in release with the Swift runtime linked in
# (-static-stdlib; its own scratch path, so the regular builds are not rebuilt), stripped, with
# liblz4 beside it (RUNPATH $$ORIGIN), and the python/ package: Tools/build_wheel.py. It installs
# with pip on a Linux machine without a Swift toolchain.
WHEEL_BUILD ?= .build-wheel
python: deps
	$(SWIFT) build -c release --product TrackC --scratch-path $(WHEEL_BUILD) -Xswiftc -static-stdlib -Xlinker -rpath -Xlinker '$$ORIGIN'
	rm -rf $(WHEEL_BUILD)/stage && mkdir -p $(WHEEL_BUILD)/stage
	cp $(WHEEL_BUILD)/release/libTrackC.so $(WHEEL_BUILD)/stage/ && strip --strip-unneeded $(WHEEL_BUILD)/stage/libTrackC.so
	lz4="$$(ldd $(WHEEL_BUILD)/stage/libTrackC.so | awk '/liblz4/ {print $$3}')"; \
	  if [ -z "$$lz4" ]; then echo "python: libTrackC.so does not list liblz4 (ldd)" >&2; exit 1; fi; \
	  cp -L "$$lz4" $(WHEEL_BUILD)/stage/ && \
	  python3 Tools/build_wheel.py --library $(WHEEL_BUILD)/stage/libTrackC.so --bundle $(WHEEL_BUILD)/stage/$$(basename "$$lz4") --out dist

# The crash, power-loss and damage tests with CRASH_SCALE times the kills, cut points and flips.
CRASH_SCALE ?= 10
crash: deps
	CRASH_SCALE=$(CRASH_SCALE) $(SWIFT) test --disable-xctest --filter "RandomKillTests|ServerCrashTests|PowerLossTests|FlipTests|DurabilityTests|ImportUnitTests"

# Coverage-guided fuzzing (libFuzzer from the Swift toolchain) of every decoder of files and
# messages: frames, segments, indices, snapshots, MANIFESTs, sync markers, server requests. Each
# target starts from its committed seed corpus (Fuzz/corpus, made by Fuzz/make-seeds.sh) and new
# inputs go to .build-fuzz/corpus; a crash leaves its input in .build-fuzz/artifacts and fails.
# Keep each crash input under Fuzz/regressions/<target>/ once fixed: make test replays them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := frame segment index snapshot manifest marker request
fuzz-build: deps
	cd Fuzz && $(SWIFT) build -c release --scratch-path ../.build-fuzz -Xswiftc -sanitize=fuzzer --product track-fuzz

fuzz: fuzz-build
	@mkdir -p .build-fuzz/artifacts
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  TRACK_FUZZ_TARGET=$$t .build-fuzz/release/track-fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 \
	    -artifact_prefix=.build-fuzz/artifacts/$$t- -print_final_stats=0 .build-fuzz/corpus/$$t Fuzz/corpus/$$t > .build-fuzz/$$t.log 2>&1 \
	    || { tail -40 .build-fuzz/$$t.log; echo "fuzz: target $$t crashed; its input is $$(ls -t .build-fuzz/artifacts/$$t-* 2>/dev/null | head -1) (copy it to Fuzz/regressions/$$t/ with the fix)" >&2; exit 1; }; \
	  grep -E "^Done [0-9]+ runs" .build-fuzz/$$t.log | tail -1 || true; \
	done
	@echo "fuzz: every target ran $(FUZZ_SECONDS) s without a crash"

# The benchmark suite is its own package (Benchmarks/), built in release mode.
bench: deps deps-postgres
	$(SWIFT) build -c release --product track-replay
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress --target TrackLogBenchmarks

# SQLite for the comparison baseline.
deps-compare: deps
	@if pkg-config --exists sqlite3 2>/dev/null; then echo "deps: libsqlite3-dev is installed"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	  echo "deps: installing system packages: libsqlite3-dev (apt-get)"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends libsqlite3-dev; \
	else echo "deps: install SQLite's development files (libsqlite3-dev)" >&2; exit 1; fi

# swift-track side by side with SQLite, track's FileProtocol strategy and a JSON-lines file; writes BENCHMARKS.md.
compare: deps-compare
	cd Benchmarks && $(SWIFT) run -c release track-compare

# The web view's targets (Benchmarks/python/bench_ui.py): a 1,000-trial runs table, a 10 M-point
# curve, a new point on the open page (headless chromium), and track-replay tail to a file; release
# builds; writes BENCHMARKS.md.
bench-ui: deps deps-python
	@$(MAKE) --no-print-directory deps-ui UI_BROWSER=yes
	$(SWIFT) build -c release --product track-ui
	$(SWIFT) build -c release --product track-replay
	$(SWIFT) build -c release --product TrackC
	bin="$$($(SWIFT) build -c release --show-bin-path)"; TRACK_BIN="$$bin" SWIFT_TRACK_LIBRARY="$$bin/libTrackC.so" $(VENV)/bin/python Benchmarks/python/bench_ui.py

clean:
	rm -rf .build Benchmarks/.build

# Python training loops side by side (Benchmarks/python/bench_python.py): swift-track's Python
# package (release libTrackC) and track-server against tensorboardX, wandb (offline), Aim and
# MLflow, installed from the package index into their own venv (.venv-bench).
BENCH_VENV ?= .venv-bench
compare-python: deps deps-python
	$(SWIFT) build -c release --product TrackC
	$(SWIFT) build -c release --product track-server
	@if [ -x $(BENCH_VENV)/bin/python ] && $(BENCH_VENV)/bin/python -c "import tensorboardX, wandb, aim, mlflow" >/dev/null 2>&1; then \
	  echo "deps: $(BENCH_VENV) has tensorboardX, wandb, aim and mlflow"; \
	else echo "deps: creating $(BENCH_VENV) and installing tensorboardX, wandb, aim, mlflow and numpy into it (pip; a few minutes)"; \
	  python3 -m venv $(BENCH_VENV) && $(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check tensorboardX wandb aim mlflow numpy; fi
	TRACK_BIN="$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_VENV)/bin/python Benchmarks/python/bench_python.py
