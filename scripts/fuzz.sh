#!/usr/bin/env bash
# Run every cargo-fuzz target under fuzz/ for a bounded time (default 30 s each; FUZZ_SECONDS
# overrides), starting from the seeds in fuzz/seeds and the corpus kept from earlier runs.
# libFuzzer's limits make a hang or a large allocation a failure: 5 s per input, 512 MiB in
# all, 64 MiB per single allocation. Installs cargo-fuzz when missing. Works on stable Rust
# (no sanitizer: `-s none`; the code under test has no `unsafe`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-30}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/sideline/fuzz-target}"
CORPUS="${FUZZ_CORPUS:-$HOME/.cache/sideline/fuzz-corpus}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked --version 0.13.2
fi
cd fuzz
mkdir -p "$CARGO_TARGET_DIR"
targets=$(cargo fuzz list)
if [ "$#" -gt 0 ]; then targets="$*"; fi
# One build of every target (one cargo invocation shares the dependency graph and its jobs).
if [ "$#" -gt 0 ]; then build=("$@"); else build=(); fi
for t in "${build[@]:-}"; do
  if ! cargo fuzz build -s none -O ${t:+"$t"} >"$CARGO_TARGET_DIR/fuzz-build.log" 2>&1; then
    cat "$CARGO_TARGET_DIR/fuzz-build.log" >&2
    exit 1
  fi
done
failed=()
for t in $targets; do
  mkdir -p "$CORPUS/$t" "$CARGO_TARGET_DIR"
  echo "== fuzz $t for ${SECONDS_EACH} s"
  if ! cargo fuzz run -s none -O "$t" "$CORPUS/$t" "seeds/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout=5 -rss_limit_mb=512 -malloc_limit_mb=64 \
      -max_len=65536 -print_final_stats=1 2>"$CORPUS/$t.log"; then
    failed+=("$t")
    tail -40 "$CORPUS/$t.log" >&2
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done)' "$CORPUS/$t.log" || true
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes, hangs or limits exceeded in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: $(echo $targets | wc -w) targets, ${SECONDS_EACH} s each, no crash"
