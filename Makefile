# Sideline — developer entry points. Everything installs what it needs itself (idempotently).
#
#   make demo    the main job (zero setup): the whole pipeline in one process with a simulated
#                match at 10x real time, alerts on the console, the live bench view in a browser
#   make analyze the engine on the bundled real tracking data and on the synthetic match, with
#                the at-risk player's strain-risk timeline
#   make test    the whole test suite: format, lints, unit, property, real-data, end-to-end,
#                fuzz smoke and doc tests, with each phase's wall time at the end (scripts/test.sh)
#   make check   the inner loop (≤ 5 min warm): format, lints, unit, property and real-data
#                tests and the short broker tests; no end-to-end phase
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS each (default 60; `make test` runs 10)
#   make bench   the benchmarks: engine, ingest and processor through real brokers, the alert
#                budget, archive write rate and a season query (BENCHMARKS.md)
#
# Builds go to a persistent target directory outside the clone, so a fresh clone does not
# rebuild every dependency: override with CARGO_TARGET_DIR=...

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/sideline/target
CARGO ?= cargo
SIDELINE := $(CARGO_TARGET_DIR)/release/sideline
ZXY := tests/data/zxy_alfheim/zxy_tromso_anzhi_2013-11-07_excerpt_long.csv.gz

.PHONY: demo analyze test check bench setup build build-lean fmt lint budget fuzz fuzz-smoke

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --locked -p sideline-cli

# The demo's binary without the archive commands (no DataFusion): a much shorter first build.
build-lean: setup
	$(CARGO) build --release --locked -p sideline-cli --no-default-features

demo: build-lean
	@echo "== Sideline demo: a simulated match at 10x real time; open the bench view it prints (Ctrl-C stops) =="
	$(SIDELINE) demo --speed 10

analyze: build-lean
	@echo "== Real data: ZXY radio tracking, Tromsø IL vs Anzhi (2013-11-07), 10.5 min excerpt =="
	$(SIDELINE) analyze --format zxy $(ZXY)
	@echo
	@echo "== Synthetic match: 22 players x 90 min, 13 M samples through the same engine =="
	$(SIDELINE) analyze --format sim --seed 7 --timeline home-07

fmt:
	$(CARGO) fmt --all --check
	cd fuzz && $(CARGO) fmt --check

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p sideline-cli --bins --locked --no-default-features -- -D warnings

# Every fuzz target for a bounded time: no crash, no hang (5 s/input), no allocation over
# 64 MiB, at most 512 MiB in all. Longer runs: make fuzz FUZZ_SECONDS=3600.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

fuzz-smoke:
	FUZZ_SECONDS=10 scripts/fuzz.sh

# The phases, their order and the summary are in scripts/test.sh.
test:
	@scripts/test.sh all

check: setup
	@scripts/test.sh check

bench: setup
	$(CARGO) bench --locked -p sideline-cli --bench engine
	$(CARGO) bench --locked -p sideline-cli --bench ingest
	SIDELINE_QUIX_PYTHON=$$(bash scripts/quix-venv.sh) $(CARGO) bench --locked -p sideline-processor --bench processor
	$(CARGO) bench --locked -p sideline-alerter --bench budget
	$(CARGO) bench --locked -p sideline-archive --bench archive
	$(CARGO) build --release --locked -p sideline-cli
	SIDELINE_BIN=$(SIDELINE) $(CARGO) bench --locked -p sideline-e2e --bench e2e

budget:
	$(CARGO) bench --locked -p sideline-alerter --bench budget
