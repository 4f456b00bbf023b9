#!/usr/bin/env bash
# The Python environment of the benchmark's peer (issue 31): Quix Streams and protoc's Python
# plugin, pinned, in a venv cached outside the clone. Idempotent: a second run only checks.
# Prints the venv's python on stdout.
set -euo pipefail
VENV="${SIDELINE_QUIX_VENV:-$HOME/.cache/sideline/quix}"
WANT="quixstreams==3.28.1 grpcio-tools==1.85.4"
STAMP="$VENV/.sideline-installed"
if [[ ! -f "$STAMP" ]] || [[ "$(cat "$STAMP")" != "$WANT" ]]; then
  echo "sideline bench: installing $WANT into $VENV" >&2
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q $WANT >&2
  echo "$WANT" > "$STAMP"
fi
echo "$VENV/bin/python"
