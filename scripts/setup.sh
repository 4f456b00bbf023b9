#!/usr/bin/env bash
# Idempotent set-up for Sideline's commands and tests. Safe to run again at any time: it only
# installs what is missing. Today the engine, importers and their tests need only Rust;
# brokers and browsers are added here as the services that need them arrive.
set -euo pipefail

need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "sideline setup: cargo not found. Install Rust (https://rustup.rs), then re-run." >&2
        exit 1
    fi
    local have
    have=$(rustc --version | awk '{print $2}')
    if [ "$(printf '%s\n1.95.0\n' "$have" | sort -V | head -1)" != "1.95.0" ]; then
        echo "sideline setup: Rust $have found, 1.95 or newer needed (rustup update stable)." >&2
        exit 1
    fi
}

need_rust
mkdir -p "${CARGO_TARGET_DIR:-$HOME/.cache/sideline/target}"
