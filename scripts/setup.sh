#!/usr/bin/env bash
# Idempotent set-up for Sideline's commands and tests. Safe to run again at any time: it only
# installs what is missing.
#
#   Rust ≥ 1.95         checked (install it with rustup)
#   mosquitto, openssl  Debian packages (MQTT broker and mosquitto_passwd; test certificates)
#   chromium            Debian package: the headless browser of the bench-page test
#   prometheus          Debian package: promtool for the alert rules' tests, and the server the
#                       dashboard test scrapes a running pipeline with
#   prometheus-alertmanager  Debian package: the shipped Alertmanager configuration's test
#   tansu 0.6.0         Kafka-protocol broker for tests, in ~/.cache/sideline/bin: unpacked from a
#                       prebuilt copy next to the checkout when there is one (../shared/bin),
#                       otherwise built with `cargo install` (20–35 min once, then cached)
#   postgresql-client   Debian package: psql, a client of the archive's PostgreSQL-protocol test
#   psycopg 3.2.10, pandas 2.2.3  (PyPI, in a virtualenv under ~/.cache/sideline): the Python
#                       clients of the same test
#   moto 5.2.1          an S3-protocol server (PyPI, in a virtualenv under ~/.cache/sideline): the
#                       object-store archive's tests write to it over HTTP
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache="${SIDELINE_CACHE:-$HOME/.cache/sideline}"
bin="$cache/bin"
mkdir -p "$bin" "${CARGO_TARGET_DIR:-$cache/target}"

say() { printf 'sideline setup: %s\n' "$*" >&2; }

# --- Rust -------------------------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found. Install Rust (https://rustup.rs), then re-run."
    exit 1
fi
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n1.95.0\n' "$have" | sort -V | head -1)" != "1.95.0" ]; then
    say "Rust $have found, 1.95 or newer needed (rustup update stable)."
    exit 1
fi

# --- Debian packages ----------------------------------------------------------------------
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
for pkg in mosquitto openssl chromium fonts-dejavu-core prometheus prometheus-alertmanager postgresql-client; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- tansu ----------------------------------------------------------------------------------
tansu_sha=aa775f2cc826e6079ffe7fd74e06fa131ebf5f68eb366111b0d24b9d2806df23
tansu_ok() { [ -x "$bin/tansu" ] && "$bin/tansu" --version 2>/dev/null | grep -q "tansu 0.6.0"; }
if ! tansu_ok; then
    prebuilt="$repo/../shared/bin/tansu-0.6.0-x86_64-linux.gz"
    if [ -f "$prebuilt" ]; then
        say "unpacking the prebuilt tansu 0.6.0"
        gunzip -c "$prebuilt" > "$bin/tansu.tmp"
        if [ "$(sha256sum "$bin/tansu.tmp" | awk '{print $1}')" = "$tansu_sha" ]; then
            chmod +x "$bin/tansu.tmp" && mv "$bin/tansu.tmp" "$bin/tansu"
        else
            say "prebuilt tansu has an unexpected checksum; building from crates.io instead"
            rm -f "$bin/tansu.tmp"
        fi
    fi
fi
if ! tansu_ok; then
    say "building tansu 0.6.0 from crates.io (20–35 minutes on 2 cores, once)"
    cargo install tansu --version 0.6.0 --locked --features libsql,dynostore --root "$cache/tansu" >&2
    ln -sf "$cache/tansu/bin/tansu" "$bin/tansu"
fi
tansu_ok || { say "tansu is not usable at $bin/tansu"; exit 1; }

# --- moto (S3-protocol server for the object-store archive's tests) --------------------------
moto_ok() { [ -x "$bin/moto_server" ] && "$cache/moto/bin/python" -c 'import moto, sys; sys.exit(moto.__version__ != "5.2.1")' 2>/dev/null; }
if ! moto_ok; then
    say "installing moto 5.2.1 (S3-protocol server for tests) into $cache/moto"
    python3 -m venv "$cache/moto"
    "$cache/moto/bin/pip" install -q 'moto[server]==5.2.1' >&2
    ln -sf "$cache/moto/bin/moto_server" "$bin/moto_server"
fi
moto_ok || { say "moto is not usable at $bin/moto_server"; exit 1; }

# --- Python SQL clients (psycopg, pandas) for the PostgreSQL-protocol test ----------------------
py_ok() { [ -x "$bin/sideline-pyclients-python" ] && "$bin/sideline-pyclients-python" -c 'import psycopg, pandas, sys; sys.exit(psycopg.__version__ != "3.2.10" or pandas.__version__ != "2.2.3")' 2>/dev/null; }
if ! py_ok; then
    say "installing psycopg 3.2.10 and pandas 2.2.3 (Python SQL clients for tests) into $cache/pyclients"
    python3 -m venv "$cache/pyclients"
    "$cache/pyclients/bin/pip" install -q 'psycopg[binary]==3.2.10' 'pandas==2.2.3' >&2
    # A wrapper, not a link: a linked venv interpreter does not find its venv.
    printf '#!/bin/sh\nexec "%s/pyclients/bin/python" "$@"\n' "$cache" > "$bin/sideline-pyclients-python"
    chmod +x "$bin/sideline-pyclients-python"
fi
py_ok || { say "the Python SQL clients are not usable at $bin/sideline-pyclients-python"; exit 1; }
