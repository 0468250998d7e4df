"""Fleet scale: readers and the dashboard over 10,000 runs and 1,000,000 windows loaded through
the real pipeline (issue 12's scale scenario).

Why: the readers are meant to cost what is on screen, not the history; only a hot store filled
the way production fills it (collector-shaped events -> Kafka -> the streaming job -> MongoDB)
shows whether they do. Steps:
1. ``--runs`` runs x ``--windows-per-run`` events, one event per ``window_s`` window (so one
   window document each), spread over the last ``--days`` days, written in time order to a
   topic of this bench's own (Spark's Kafka sink, as ``bench_pipeline.preload``);
2. the streaming job (``spark_jobs.stream``, default settings, its own database, cold store
   and checkpoint) drains the topic once (available-now) in batches of ``--batch`` events;
3. then, ``--rounds`` times each, interleaved: ``carbonpipe runs --json --limit 50`` and
   ``carbonpipe users --json`` (the console script, a new process: imports and connection
   included), and the dashboard's first complete paint in headless Debian chromium
   (Playwright; a new browser page, hence a new Streamlit session, each round).

Each round also paints ``bench/streamlit_floor.py`` (``streamlit_floor_s``): a page with the
Overview's kinds of elements and no data reads, served by the same Streamlit: what Streamlit and
chromium cost here, whatever the page reads.

"Complete paint" (``PAINTED_JS``): the Overview's header, its four metrics, the "Emissions per
zone" table (the last thing the page draws) are in the DOM and Streamlit's running indicator
(``stStatusWidget``) is gone; timed from ``page.goto`` to the first time all hold.

    python bench/bench_scale.py [--runs 10000] [--windows-per-run 100] [--keep]
    python bench/bench_scale.py --runs 200 --windows-per-run 20      # while developing
Writes bench/results/scale.json. Targets: runs and users <= 0.5 s, dashboard <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import machine, versions  # noqa: E402

TARGETS_S = {"cli_runs_limit50_s": 0.5, "cli_users_s": 0.5, "dashboard_complete_s": 2.0}
ZONES = ("GB", "DE", "FR", "US-CAL-CISO")
# The Overview is complete when its header, 4 metrics and the zone table (drawn last) are there
# and Streamlit no longer shows its running indicator.
PAINTED_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const text = main.innerText || '';
  const metrics = main.querySelectorAll('[data-testid="stMetric"]').length;
  const tables = main.querySelectorAll('[data-testid="stTable"]').length;
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  const busy = running !== null && running.offsetParent !== null
               && /running/i.test(running.innerText || running.textContent || '');
  return text.includes('Overview') && text.includes('Emissions per zone') && metrics >= 4
         && tables >= 3 && !busy;
}"""


def make_events(path: Path, runs: int, per_run: int, window_s: int, days: float) -> int:
    """Collector-shaped events, one per window of each run, in time order over ``days`` days
    ending an hour ago (recent enough for the Overview's default range and the lateness)."""
    span_s = per_run * window_s
    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=1)
    t0 = int(end.timestamp()) - int(days * 86_400) - span_s
    t0 -= t0 % window_s
    spacing = max(window_s, int(days * 86_400) // max(runs, 1) // window_s * window_s)
    rows: list[tuple[int, int, int]] = []  # (timestamp, run, seq)
    for r in range(runs):
        start = t0 + r * spacing
        rows.extend((start + w * window_s + window_s // 2, r, w) for w in range(per_run))
    rows.sort()
    with path.open("w", encoding="utf-8") as out:
        for ts, r, w in rows:
            out.write(json.dumps({
                "schema_version": 1,
                "timestamp": datetime.fromtimestamp(ts, timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"),
                "run_id": f"scale-{r}", "user_id": f"user-{r % 200}",
                "model_name": f"model-{r % 40}", "host": f"host-{r % 50}",
                "region": ZONES[r % len(ZONES)], "interval_s": float(window_s), "seq": w,
                "cpu_energy_j": 3_000.0, "cpu_method": "estimated", "cpu_utilization_pct": 50.0,
                "gpu_energy_j": 12_000.0, "gpu_method": "measured",
                "ram_energy_j": 180.0, "ram_method": "estimated", "ram_used_mb": 8_000.0,
                "tags": {"project": f"p{r % 20}", "team": f"t{r % 5}"},
            }) + "\n")  # fmt: skip
    return len(rows)


def load(settings: Any, files: Path) -> dict[str, Any]:
    """Preloads the topic, then the streaming job drains it once (available-now)."""
    from bench.bench_pipeline import preload
    from spark_jobs import stream
    from spark_jobs.hot_store import HotStore
    from spark_jobs.session import build_session

    spark = build_session(settings, "carbonpipe-bench-scale")
    produce_s = preload(spark, settings, files)
    print(f"[scale] preloaded the topic in {produce_s:.1f} s; the job drains it", flush=True)
    logging.basicConfig(level=logging.INFO, format="      %(message)s")
    class Processor(stream.BatchProcessor):
        def kafka_lag(self) -> int | None:
            """Not wanted here; and on an available-now query from the second batch on, the
            job's reading of Spark's offsets fails (a JSONDecodeError ends the query)."""
            return None

    store = HotStore(settings.mongo_uri, settings.mongo_db)
    proc = Processor(spark, settings, store)
    t = time.perf_counter()
    query = stream.start(spark, settings, proc, available_now=True)
    query.awaitTermination()
    job_s = time.perf_counter() - t
    events = sum(int(p["numInputRows"]) for p in query.recentProgress)
    spark.stop()
    # from the job's own batch stats: counting 1 M documents on FerretDB takes minutes
    windows = sum(int(b.get("windows_written") or 0) for b in proc.history)
    return {"produce_s": round(produce_s, 1), "job_s": round(job_s, 1), "events": events,
            "window_docs": windows,
            "events_per_s_wall": round(events / job_s, 1) if job_s else None}  # fmt: skip


def cli_env(settings: Any) -> dict[str, str]:
    env = {**os.environ, "CARBONPIPE_MONGO_DB": settings.mongo_db, "PYTHONPATH": str(ROOT)}
    if settings.mongo_uri:
        env["CARBONPIPE_MONGO_URI"] = settings.mongo_uri
    return env


def cli_s(exe: str, env: dict[str, str], *argv: str) -> tuple[float, Any]:
    """Wall time of one ``carbonpipe`` command as a user runs it, and its JSON output."""
    t = time.perf_counter()
    out = subprocess.run([exe, *argv], capture_output=True, text=True, check=True, cwd=ROOT,
                         env=env)  # fmt: skip
    return time.perf_counter() - t, json.loads(out.stdout)


def paint_s(browser: Any, url: str) -> float:
    """From navigation to the Overview's complete paint (``PAINTED_JS``), in a new page."""
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_function(PAINTED_JS, timeout=120_000, polling=50)
    s = time.perf_counter() - t
    page.close()
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--windows-per-run", type=int, default=100)
    ap.add_argument("--days", type=float, default=60.0, help="the runs' starts span these days")
    ap.add_argument("--batch", type=int, default=50_000, help="events per micro-batch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the bench database and topic")
    ap.add_argument(
        "--reuse",
        metavar="DB",
        help="time over a database a --keep run loaded "
        "(its --runs and --windows-per-run must be given again); no load",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = ap.parse_args()
    from carbonpipe.core.config import load_settings
    from carbonpipe.core.mongo import mongo_client
    from carbonpipe.services import stack
    from carbonpipe.services.apps import wait_http
    from dashboard.cli import command

    started = datetime.now(timezone.utc)
    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="carbonpipe-scale-"))
    base = load_settings()
    settings = base.model_copy(update={
        "metrics_topic": f"bench.scale.{tag}", "intensity_topic": f"bench.scale-int.{tag}",
        "dlq_topic": f"bench.scale-dlq.{tag}", "mongo_db": args.reuse or f"carbonpipe_scale_{tag}",
        "cold_store_uri": str(tmp / "cold"), "checkpoint_uri": str(tmp / "cp"),
        "max_offsets_per_trigger": args.batch, "spark_driver_memory": "4g",
        # the per-event Parquet archive is not read by any reader timed here; without it the
        # load is about 40 % faster on this shared machine
        "cold_events": False,
    })  # fmt: skip
    exe = shutil.which("carbonpipe", path=str(Path(sys.executable).parent))
    if not exe:
        print("the carbonpipe console script is not installed: run make setup", file=sys.stderr)
        return 2
    n = args.runs * args.windows_per_run
    if args.reuse:
        stack.up(settings, services=("mongo",), spark_jars=False)
        # what the --keep run that loaded it wrote (its window_docs: the job's batch stats)
        loaded: dict[str, Any] = {"reused": args.reuse, "events": n, "window_docs": n}
    else:
        print(f"[scale 1/4] services and topic {settings.metrics_topic}", flush=True)
        stack.up(settings)
        files = tmp / "events"
        files.mkdir()
        n = make_events(files / "events.json", args.runs, args.windows_per_run,
                        settings.window_s, args.days)  # fmt: skip
        print(f"[scale 2/4] {n:,} events ({args.runs:,} runs) through the pipeline into "
              f"{settings.mongo_db}", flush=True)  # fmt: skip
        loaded = load(settings, files)
    db: Any = mongo_client(settings.mongo_uri)[settings.mongo_db]
    total = db["totals"].find_one({"_id": "all|all"}) or {}
    loaded["runs_in_totals"] = int(total.get("runs") or 0)
    print(f"[scale 3/4] loaded: {json.dumps(loaded)}", flush=True)
    if loaded["events"] != n or loaded["runs_in_totals"] != args.runs:
        print(f"the job counted {loaded['events']:,} of {n:,} events and "
              f"{loaded['runs_in_totals']:,} of {args.runs:,} runs", file=sys.stderr)  # fmt: skip
        return 2
    env = cli_env(settings)
    port, floor_port = _free_port(), _free_port()
    dash = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    # Streamlit's own floor: the same kinds of elements, no reads (bench/streamlit_floor.py)
    floor_cmd = [*command(floor_port)]
    floor_cmd[floor_cmd.index("run") + 1] = str(ROOT / "bench" / "streamlit_floor.py")
    floor = subprocess.Popen(floor_cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    rows: dict[str, list[float]] = {k: [] for k in [*TARGETS_S, "streamlit_floor_s"]}
    details: dict[str, Any] = {}
    try:
        if not all(wait_http(f"http://127.0.0.1:{p}/_stcore/health", 120)
                   for p in (port, floor_port)):  # fmt: skip
            print("the dashboard did not start", file=sys.stderr)
            return 2
        from playwright.sync_api import sync_playwright

        from tests.dashboard.test_dashboard_browser import launch

        print(f"[scale 4/4] timing readers and the dashboard, {args.rounds} rounds", flush=True)
        with sync_playwright() as pw:
            browser = launch(pw)
            details["dashboard_first_paint_cold_s"] = round(
                paint_s(browser, f"http://127.0.0.1:{port}/"), 3
            )  # unrecorded: server warm-up
            paint_s(browser, f"http://127.0.0.1:{floor_port}/")
            for r in range(args.rounds):
                s, out = cli_s(exe, env, "runs", "--json", "--limit", "50")
                assert len(out) == 50, len(out)
                rows["cli_runs_limit50_s"].append(s)
                s, out = cli_s(exe, env, "users", "--json")
                assert len(out) == min(200, args.runs), len(out)
                rows["cli_users_s"].append(s)
                rows["dashboard_complete_s"].append(paint_s(browser, f"http://127.0.0.1:{port}/"))
                rows["streamlit_floor_s"].append(
                    paint_s(browser, f"http://127.0.0.1:{floor_port}/"))
                print(
                    f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items()),
                    flush=True,
                )
            browser.close()
    finally:
        for p in (dash, floor):
            p.terminate()
            p.wait(30)
    summary: dict[str, dict[str, Any]] = {
        k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3),
            "max": round(max(v), 3), "rounds": [round(x, 3) for x in v]}
        for k, v in rows.items()}  # fmt: skip
    result = {
        "bench": "scale",
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join(["bench/bench_scale.py", *sys.argv[1:]]),
        "scenario": {
            "runs": args.runs,
            "windows_per_run": args.windows_per_run,
            "events": n,
            "days": args.days,
            "batch": args.batch,
            "rounds": args.rounds,
            "window_s": settings.window_s,
        },
        "store": (
            f"embedded FerretDB ({base.mongo_backend})" if base.uses_embedded_mongo else "MONGO_URI"
        ),
        "machine": {**machine(), "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(),
        "load": loaded,
        "figures": summary,
        "details": details,
        "targets": TARGETS_S,
        "complete_paint": "Overview header, 4 metrics, >= 3 tables incl. 'Emissions per zone', "
        "no running indicator",
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n{'':28s} {'median':>8s} {'min':>8s} {'max':>8s} {'target':>8s}")
    for k, v in summary.items():
        target = TARGETS_S.get(k)
        ok = "" if target is None else "met" if v["median"] <= target else "NOT MET"
        print(f"{k:28s} {v['median']:8.3f} {v['min']:8.3f} {v['max']:8.3f} "
              f"{'' if target is None else f'{target:8.1f}':>8s}  {ok}")  # fmt: skip
    if not args.keep and not args.reuse:
        mongo_client(settings.mongo_uri).drop_database(settings.mongo_db)
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_topics(settings)
    else:
        print(f"kept: database {settings.mongo_db}, topic {settings.metrics_topic}, {tmp}")
    return 0


def _drop_topics(settings: Any) -> None:
    from kafka.admin import KafkaAdminClient

    from carbonpipe.core.kafka_security import python_kwargs

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             **python_kwargs(settings))  # fmt: skip
    try:
        topics = {settings.metrics_topic, settings.intensity_topic, settings.dlq_topic}
        admin.delete_topics(sorted(topics & set(admin.list_topics())))
    finally:
        admin.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
