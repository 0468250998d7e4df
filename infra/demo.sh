#!/usr/bin/env bash
# `make demo`: start the whole stack, run a real small training job under the collector,
# serve the dashboard, and leave everything running in the background until `make stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
CP=.venv/bin/carbonpipe
ZONE=${CARBONPIPE_DEMO_ZONE:-US-CAL-CISO}   # the bundled (ODbL) Electricity Maps trace
RUN_ID=${CARBONPIPE_DEMO_RUN:-demo-$(date -u +%Y%m%dT%H%M%SZ)}
SECONDS_TRAIN=${CARBONPIPE_DEMO_SECONDS:-60}
PORT=$(.venv/bin/python -c 'from carbonpipe.core.config import get_settings; print(get_settings().dashboard_port)')
fail() { echo "demo: $*" >&2; echo "logs: .carbonpipe/logs/ ; stop everything with: make stop" >&2; exit 1; }

echo "[demo 1/5] Kafka (KRaft) and the MongoDB default (FerretDB), topics"
$CP up || fail "services did not start (see the message above)"

echo "[demo 2/5] feeder (grid intensity, trace replay for $ZONE), Spark streaming job, budget alerts, dashboard"
$CP apps up --zones "$ZONE"
.venv/bin/python - "$PORT" <<'PY' || fail "dashboard did not answer on port $1 within 120 s (.carbonpipe/logs/dashboard.log)"
import sys
from carbonpipe.services.apps import wait_http
sys.exit(0 if wait_http(f"http://127.0.0.1:{sys.argv[1]}/_stcore/health", 120) else 1)
PY

echo "[demo 3/5] a real training job (scikit-learn MLP, ~${SECONDS_TRAIN}s) under the collector, run $RUN_ID"
$CP collect --run-id "$RUN_ID" --user demo --model mlp-sklearn --zone "$ZONE" \
  -- .venv/bin/python examples/train_sklearn.py --seconds "$SECONDS_TRAIN" \
  || fail "the training job or the collector failed"

echo "[demo 4/5] waiting for the streaming job to write the run to MongoDB"
.venv/bin/python - "$RUN_ID" <<'PY' || fail "the run did not reach MongoDB within 240 s (.carbonpipe/logs/stream.log)"
import sys, time
from carbonpipe.core.config import get_settings
from carbonpipe.query import fetch_runs
run_id, deadline = sys.argv[1], time.monotonic() + 240
while time.monotonic() < deadline:
    try:
        runs = [r for r in fetch_runs(get_settings()) if r["run_id"] == run_id]
    except Exception:
        runs = []
    if runs and runs[0].get("ended"):
        r = runs[0]
        print(f"      {run_id}: {r['energy_kwh']:.6f} kWh, {r['co2_g']:.3f} gCO2e, "
              f"{r['mean_intensity_g_per_kwh']:.0f} g/kWh mean, method {r['method']}")
        sys.exit(0)
    time.sleep(2)
sys.exit(1)
PY

echo "[demo 5/5] running in the background:"
$CP apps status || true
cat <<MSG

  dashboard   http://localhost:$PORT
  runs        .venv/bin/carbonpipe runs        (add --json for scripts)
  analytics   .venv/bin/carbonpipe sql "SELECT run_id, SUM(co2_g) FROM windows GROUP BY run_id"
  logs        .carbonpipe/logs/
  stop        make stop
MSG
