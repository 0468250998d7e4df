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

echo "[demo 3/5] two real training jobs (scikit-learn MLPs, ~${SECONDS_TRAIN}s and half that) under the collector: $RUN_ID, $RUN_ID-small"
$CP collect --run-id "$RUN_ID" --user demo --model mlp-sklearn --zone "$ZONE" --tag project=demo \
  -- .venv/bin/python examples/train_sklearn.py --seconds "$SECONDS_TRAIN" \
  || fail "the training job or the collector failed"
# a second, smaller run (another user, model and project) so trends and comparisons show two
$CP collect --run-id "$RUN_ID-small" --user demo2 --model mlp-small --zone "$ZONE" \
  --tag project=demo-small -- .venv/bin/python examples/train_sklearn.py \
  --seconds "$((SECONDS_TRAIN / 2))" --samples 5000 \
  || fail "the second training job or the collector failed"

echo "[demo 4/5] waiting for the streaming job to write both runs to MongoDB"
.venv/bin/python - "$RUN_ID" "$RUN_ID-small" <<'PY' || fail "the runs did not reach MongoDB within 240 s (.carbonpipe/logs/stream.log)"
import sys, time
from carbonpipe.core.config import get_settings
from carbonpipe.query import fetch_run
wanted, deadline = sys.argv[1:], time.monotonic() + 240
while time.monotonic() < deadline:
    try:
        runs = [fetch_run(get_settings(), run_id) for run_id in wanted]
    except Exception:
        runs = []
    if runs and all(r and r.get("ended") for r in runs):
        for r in runs:
            print(f"      {r['run_id']}: {r['energy_kwh']:.6f} kWh, {r['co2_g']:.3f} gCO2e, "
                  f"{r['mean_intensity_g_per_kwh']:.0f} g/kWh mean, method {r['method']}")
        sys.exit(0)
    time.sleep(2)
sys.exit(1)
PY

echo "[demo 5/5] running in the background:"
$CP apps status || true
cat <<MSG

  dashboard   http://localhost:$PORT            (Overview: both runs; Runs: the table and compare)
  the run     http://localhost:$PORT/run?run=$RUN_ID
  runs        .venv/bin/carbonpipe runs        (add --json for scripts)
  analytics   .venv/bin/carbonpipe sql "SELECT run_id, SUM(co2_g) FROM windows GROUP BY run_id"
  logs        .carbonpipe/logs/
  stop        make stop
MSG
