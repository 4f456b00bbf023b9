#!/usr/bin/env bash
# The test suite, phase by phase, with each phase's wall time printed at the end whether it
# passed or not (so a slower suite shows in every CI log), then the ten slowest tests and the
# end-to-end figures.
#
#   scripts/test.sh          everything (`make test`, what CI runs):
#                            setup, fmt, clippy, build, unit, e2e, fuzz-smoke, doc-tests
#   scripts/test.sh check    the inner loop (`make check`): fmt, clippy, unit
#
# Phases after a failed one still run (a format error should not hide a failing test), except
# after a failed set-up or build, which would only fail again. The exit status is 0 only if
# every phase passed. The split between the unit and e2e phases is the test group `e2e` in
# .config/nextest.toml.
set -uo pipefail
cd "$(dirname "$0")/.."

mode="${1:-all}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sideline/target}"
CARGO="${CARGO:-cargo}"
logs="$CARGO_TARGET_DIR/test-logs"
mkdir -p "$logs"
report="$CARGO_TARGET_DIR/e2e-report.txt"
rm -f "$report" "$logs"/*.log

names=()
secs=()
results=()
failed=0
suite_start=$EPOCHREALTIME

# Seconds since $1 (an $EPOCHREALTIME).
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# phase NAME COMMAND...: run it, its output to the terminal and to $logs/NAME.log.
phase() {
    local name=$1
    shift
    echo "== $name: $*"
    local t0=$EPOCHREALTIME rc
    "$@" 2>&1 | tee "$logs/$name.log"
    rc=${PIPESTATUS[0]}
    names+=("$name")
    secs+=("$(since "$t0")")
    if [ "$rc" -eq 0 ]; then
        results+=("ok")
    else
        results+=("FAILED ($rc)")
        failed=1
    fi
    return "$rc"
}

summary() {
    local total
    total=$(since "$suite_start")
    echo
    if [ -f "$report" ]; then
        echo "== end-to-end figures"
        cat "$report"
        echo
    fi
    local runs
    runs=$(cat "$logs/unit.log" "$logs/e2e.log" 2>/dev/null)
    if [ -n "$runs" ]; then
        echo "== the ten slowest tests"
        # nextest's result lines: "PASS [  94.888s] (242/259) crate::binary test_name".
        echo "$runs" | sed -nE 's/^ *(PASS|FAIL|FLAKY|TIMEOUT|SIGKILL|SIGSEGV|ABORT)[^[]*\[ *([0-9.]+)s\] *(\([^)]*\))? *(.*)$/\2 \1 \4/p' |
            sort -rn | head -10 | awk '{ printf "  %8.1f s  %-5s %s %s\n", $1, $2, $3, $4 }'
        echo
    fi
    echo "== phases ($(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores)"
    local i
    for i in "${!names[@]}"; do
        printf "  %-11s %8.1f s  %s\n" "${names[$i]}" "${secs[$i]}" "${results[$i]}"
    done
    printf "  %-11s %8.1f s  (%s min)\n" "total" "$total" "$(awk -v t="$total" 'BEGIN { printf "%.1f", t / 60 }')"
    if [ "$failed" -eq 0 ]; then
        echo "all checks passed"
    else
        echo "FAILED: see the phases above (logs in $logs)"
    fi
}
trap summary EXIT

nextest() {
    if ! $CARGO nextest --version >/dev/null 2>&1; then
        echo "cargo-nextest not found (cargo install cargo-nextest --locked)" >&2
        return 1
    fi
    SIDELINE_E2E_REPORT="$report" $CARGO nextest run --workspace --locked --no-fail-fast "$@"
}

if [ "$mode" = "all" ]; then
    phase setup scripts/setup.sh || exit 1
fi
phase fmt bash -c "$CARGO fmt --all --check && cd fuzz && $CARGO fmt --check"
# Both clippy passes share the target directory: the second re-checks only sideline-cli
# without its default features (the lean binary `make demo` builds).
phase clippy bash -c "$CARGO clippy --workspace --all-targets --locked -- -D warnings && \
    $CARGO clippy -p sideline-cli --bins --locked --no-default-features -- -D warnings"
# Every test binary, and the `sideline` binary the end-to-end tests run as processes (built
# here for sideline-cli's integration tests, used by all of them: no second build).
phase build $CARGO nextest run --workspace --locked --no-run || exit 1
phase unit nextest -E 'not group(e2e)'
if [ "$mode" = "all" ]; then
    phase e2e nextest -E 'group(e2e)' --test-threads 8
    phase fuzz-smoke env FUZZ_SECONDS=5 scripts/fuzz.sh
    phase doc-tests $CARGO test --workspace --doc --locked
fi
exit "$failed"
