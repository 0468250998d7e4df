"""Readers at fleet scale: ``carbonpipe runs/users`` over a hot store holding many runs.

Loads ``--runs`` runs (``--windows-per-run`` one-minute windows each, spread over
``--days`` days, ``--per-batch`` runs per micro-batch) through the job's own hot-store write
path (``spark_jobs.hot_store.HotStore.write_batch``: versions, read models, eviction; Spark is
left out: issue 12's full scenario feeds the same documents through Kafka and Spark), then
times, against the configured MongoDB (the embedded FerretDB by default):
* ``carbonpipe runs --json --limit 50`` and ``carbonpipe users --json`` as a user runs them
  (a new process each: imports and connection included), ``--repeat`` times;
* the same reads in-process (``fetch_runs``/``fetch_totals``) beside the pre-issue-12 reader
  (every version of every run fetched and folded in Python), in the same round, for a ratio.

    python bench/bench_readers.py [--runs 10000] [--windows-per-run 6] [--days 60]
Writes bench/results/readers.json. Targets (issue 12): runs and users <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def window(run: str, user: str, model: str, start_s: int, kwh: float) -> dict[str, Any]:
    return dict(
        run_id=run, user_id=user, model_name=model, host=f"h{hash(run) % 50}", zone="GB",
        window_start_s=start_s, window_s=60, energy_kwh=kwh, cpu_kwh=kwh, gpu_kwh=0.0,
        ram_kwh=0.0, measured_kwh=kwh, estimated_kwh=0.0, co2_g=200.0 * kwh, fallback_kwh=0.0,
        forecast_kwh=0.0, covered_s=60.0, n_events=6, first_ts_s=start_s,
        last_ts_s=start_s + 59, min_seq=0, max_seq=5, n_seq=6, seq_sum=15, seq_xor=1,
        sum_cpu_utilization_pct=300.0, ended=0, intensity_providers=["bench"],
        tags={"project": f"p{hash(run) % 20}", "team": f"t{hash(run) % 5}"},
    )  # fmt: skip


def load(settings: Any, args: argparse.Namespace) -> float:
    from spark_jobs.hot_store import HotStore

    store = HotStore(settings.mongo_uri, settings.mongo_db)
    t = time.perf_counter()
    spacing = args.days * 86_400 // args.runs
    for b in range(0, args.runs, args.per_batch):
        rows = []
        for i in range(b, min(b + args.per_batch, args.runs)):
            start = T0 + i * spacing
            rows += [window(f"run-{i}", f"user-{i % 200}", f"model-{i % 40}", start + 60 * w,
                            0.001) for w in range(args.windows_per_run)]  # fmt: skip
        store.write_batch(b // args.per_batch, rows, {"valid": 6 * len(rows)})
        if b and b % (args.per_batch * 50) == 0:
            print(f"[bench] loaded {b} runs ({time.perf_counter() - t:.0f} s)", flush=True)
    store.close()
    return time.perf_counter() - t


def cli_s(settings: Any, *argv: str) -> tuple[float, int]:
    env = {"CARBONPIPE_MONGO_DB": settings.mongo_db, "CARBONPIPE_MONGO_URI": settings.mongo_uri,
           "PATH": "/usr/bin:/bin"}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "carbonpipe.cli", *argv], capture_output=True,
                         text=True, check=True, cwd=ROOT, env=env)  # fmt: skip
    return time.perf_counter() - t, len(json.loads(out.stdout))


def old_reader(settings: Any) -> int:
    """Before issue 12: every version of every run, folded by key in Python."""
    from carbonpipe.core.mongo import mongo_client
    from carbonpipe.core.versions import newest

    db = mongo_client(settings.mongo_uri)[settings.mongo_db]
    return len(newest(db["run_versions"].find()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--windows-per-run", type=int, default=6)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--per-batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the bench database")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "readers.json")
    ap.add_argument("--store", default="", help="what the MongoDB is, for the result file")
    args = ap.parse_args()
    from carbonpipe.core.config import get_settings
    from carbonpipe.query import fetch_runs, fetch_totals
    from carbonpipe.services import stack

    base = get_settings()
    settings = base.model_copy(update={"mongo_db": f"bench_readers_{uuid.uuid4().hex[:8]}"})
    print("[bench] services (MongoDB default) ...", flush=True)
    stack.up(settings, services=("mongo",), spark_jars=False)
    print(f"[bench] loading {args.runs} runs into {settings.mongo_db} ...", flush=True)
    load_s = load(settings, args)
    rows: dict[str, list[float]] = {k: [] for k in (
        "cli_runs_limit50_s", "cli_users_s", "fetch_runs_limit50_s", "fetch_users_s",
        "old_reader_all_runs_s")}  # fmt: skip
    for _ in range(args.repeat):
        s, n = cli_s(settings, "runs", "--json", "--limit", "50")
        assert n == 50, n
        rows["cli_runs_limit50_s"].append(s)
        s, n = cli_s(settings, "users", "--json")
        rows["cli_users_s"].append(s)
        t = time.perf_counter()
        fetch_runs(settings, limit=50)
        rows["fetch_runs_limit50_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        fetch_totals(settings, "user")
        rows["fetch_users_s"].append(time.perf_counter() - t)
        t = time.perf_counter()
        n_old = old_reader(settings)
        rows["old_reader_all_runs_s"].append(time.perf_counter() - t)
        assert n_old == args.runs, n_old
    summary = {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3),
                   "max": round(max(v), 3)} for k, v in rows.items()}  # fmt: skip
    result = {
        "scenario": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "store": args.store or (f"embedded FerretDB ({base.mongo_backend})"
                                if base.uses_embedded_mongo else "MONGO_URI"),
        "load_s": round(load_s, 1),
        "results": summary,
        "targets": {"cli_runs_limit50_s": 0.5, "cli_users_s": 0.5},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = args.out
    out.write_text(json.dumps(result, indent=1) + "\n")
    for k, v in summary.items():
        print(f"{k:28s} median {v['median']:.3f} s  (range {v['min']:.3f}-{v['max']:.3f})")
    if not args.keep:
        from carbonpipe.core.mongo import mongo_client

        mongo_client(settings.mongo_uri).drop_database(settings.mongo_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
