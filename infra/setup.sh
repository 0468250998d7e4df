#!/usr/bin/env bash
# One-time (and re-runnable) setup of a carbonpipe checkout, no Docker needed:
#   venv + editable install, Kafka and Spark-connector jars (Maven), FerretDB (Go),
#   Debian's chromium for the browser tests. Every step skips what is already done.
# Usage: bash infra/setup.sh          (from anywhere; it cds to the repo root)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PY=$VENV/bin/python
TOTAL=$SECONDS

step() { STEP_T=$SECONDS; echo "[$1/5] $2"; }
done_step() { echo "      done in $((SECONDS - STEP_T))s"; }
die() { echo "setup: $*" >&2; exit 1; }

step 1 "Python venv and carbonpipe[spark,dashboard,schedule,dev] in $VENV"
if [ ! -x "$PY" ]; then
  BASE=$(command -v python3.11 || command -v python3) || die "python3.11 not found: apt-get install -y python3 python3-venv"
  "$BASE" -m venv "$VENV" || die "venv failed: apt-get install -y python3-venv"
fi
STAMP=$VENV/.carbonpipe-installed
WANT=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  mkdir -p .carbonpipe/logs
  LOG=.carbonpipe/logs/setup-pip.log
  { "$PY" -m pip install --upgrade pip \
      && "$PY" -m pip install -e '.[spark,dashboard,schedule,dev]'; } >"$LOG" 2>&1 \
    || { tail -20 "$LOG"; die "pip install failed; full log: $LOG"; }
  echo "$WANT" > "$STAMP"
else
  echo "      up to date (pyproject.toml unchanged)"
fi
done_step

build() {  # the same code path as `carbonpipe up`, so the two never disagree
  "$PY" - "$@" <<'PYEOF'
import sys
from carbonpipe.core.config import load_settings
from carbonpipe.services.build import StackError, ensure_built
try:
    ensure_built(load_settings(), sys.argv[1:])
except StackError as exc:
    sys.exit(f"setup: {exc}")
PYEOF
}

step 2 "Kafka 4.1 jars and Spark's Kafka connector jars (Maven Central -> .carbonpipe/jars)"
command -v java >/dev/null || die "Java 17 not found: apt-get install -y openjdk-17-jre-headless"
command -v mvn >/dev/null || die "mvn not found: apt-get install -y maven"
build kafka spark
done_step

step 3 "FerretDB 1.24 embedded (go build -> .carbonpipe/bin/ferretdb-embedded)"
command -v go >/dev/null || die "go not found: install Go >= 1.24 from https://go.dev/dl/"
build mongo
done_step

step 4 "Debian chromium for the Playwright browser tests (never a browser download)"
if [ -x /usr/bin/chromium ]; then
  echo "      /usr/bin/chromium present"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
else
  echo "      skipped: not root; browser tests need: sudo apt-get install -y chromium"
fi
done_step

step 5 "checks"
"$VENV/bin/carbonpipe" --help >/dev/null || die "carbonpipe CLI does not start"
java -version 2>&1 | head -1 | sed 's/^/      /'
ls "$ROOT/.carbonpipe/jars/kafka" | wc -l | sed 's/^/      kafka jars: /'
ls "$ROOT/.carbonpipe/jars/spark" | sed 's/^/      spark jar: /'
done_step
echo "setup complete in $((SECONDS - TOTAL))s; next: make up  (or .venv/bin/carbonpipe up)"
