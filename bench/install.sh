#!/usr/bin/env bash
# Installs what the benchmarks compare against (pyproject's `bench` extra: CodeCarbon) into the
# project's venv, once: a stamp holding the extra's requirements skips it until they change.
# Only the extra's requirements are installed (the project itself is installed by setup), so
# this never re-resolves or re-points the editable install.
# Usage: bash bench/install.sh          (VENV=... to use another venv; default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-$PWD/.venv}
PY=$VENV/bin/python
die() { echo "bench: $*" >&2; exit 1; }
[ -x "$PY" ] || die "no venv at $VENV: run make setup first"

REQS=$("$PY" - <<'PYEOF'
import tomllib
with open("pyproject.toml", "rb") as fh:
    print("\n".join(tomllib.load(fh)["project"]["optional-dependencies"]["bench"]))
PYEOF
) || die "could not read the bench extra from pyproject.toml"
STAMP=$VENV/.carbonpipe-bench-installed
WANT=$(printf '%s' "$REQS" | sha256sum | cut -d' ' -f1)
present() {  # every requirement of the extra is installed (the stamp alone could be stale)
  "$PY" - "$@" <<'PYEOF'
import re, sys
from importlib import metadata
try:
    for req in sys.argv[1:]:
        metadata.version(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
except metadata.PackageNotFoundError:
    sys.exit(1)
PYEOF
}
mapfile -t ARGS <<<"$REQS"
if [ "$(cat "$STAMP" 2>/dev/null)" = "$WANT" ] && present "${ARGS[@]}"; then
  echo "[bench] bench extra up to date in $VENV ($(echo $REQS))"
  exit 0
fi
mkdir -p .carbonpipe/logs
LOG=$PWD/.carbonpipe/logs/bench-pip.log
T=$SECONDS
echo "[bench] installing the bench extra ($(echo $REQS)) into $VENV; log: $LOG"
"$PY" -m pip install --progress-bar off "${ARGS[@]}" >"$LOG" 2>&1 \
  || { tail -20 "$LOG"; die "pip install of the bench extra failed; full log: $LOG"; }
echo "$WANT" > "$STAMP"
echo "[bench] installed in $((SECONDS - T))s"
