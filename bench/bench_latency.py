"""Freshness: event produced -> visible in its run's totals in the hot store, at a steady rate.

The real streaming job (default settings: trigger, MongoDB + Parquet, per-event archive) runs
against the local stack while a producer sends ``--rate`` events/s for ``--duration-s`` seconds
(``--runs`` concurrent runs, one host each, timestamps = now). Every ``--tick-s`` the producer
notes how many events of each run it has sent (after ``flush``: acknowledged by Kafka), and a
poller reads each run's ``n_events`` from the ``runs`` read model. An event's latency is the
first poll that shows its run's count reaching the producer's count, minus the time it was
acknowledged; the poll period bounds the error (reported). Events sent in the first
``--warmup-s`` (60 s) are reported apart (``warmup_latency_s``): the JVM is still compiling and
the backlog of the first batches drains; ``latency_s`` is the steady state after it. The job's
own per-batch log lines give where a batch's time goes (``timings_s``: state, reference, plan,
windows, mongo...).
The driver's memory (its Python process and its JVM) is sampled every 5 s: ``driver_rss_mb``;
the JVM's live heap after a full GC, once early and once at the end: ``driver_live_heap_mb``.

    python bench/bench_latency.py [--rate 1000] [--duration-s 300] [--runs 20]
Writes bench/results/latency.json. Target (issue 12): p95 <= 3 s at 1,000 events/s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def event(run: int, seq: int) -> bytes:
    from carbonpipe.core.timeutil import utc_iso

    return json.dumps({
        "schema_version": 1, "timestamp": utc_iso(datetime.now(timezone.utc)),
        "run_id": f"lat-{run}", "user_id": f"user-{run % 7}", "model_name": f"model-{run % 3}",
        "host": f"lat-host-{run}", "region": "GB", "interval_s": 1.0, "seq": seq,
        "cpu_energy_j": 50.0, "cpu_method": "estimated", "cpu_utilization_pct": 50.0,
        "ram_energy_j": 3.0, "ram_method": "estimated", "ram_used_mb": 8000.0,
        "tags": {"project": f"p{run % 4}"},
    }).encode()  # fmt: skip


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def memory_summary(samples: list[tuple[float, float, float]]) -> dict[str, Any]:
    """Median RSS of the driver's Python process and JVM in the first and the last minute of
    the run, and the largest seen: flat when the last is not above the first."""
    if not samples:
        return {}
    t0, t1 = samples[0][0], samples[-1][0]
    first = [s for s in samples if s[0] <= t0 + 60]
    last = [s for s in samples if s[0] >= t1 - 60]
    return {name: {"first_minute": round(statistics.median(s[i] for s in first), 1),
                   "last_minute": round(statistics.median(s[i] for s in last), 1),
                   "max": round(max(s[i] for s in samples), 1)}
            for i, name in ((1, "python"), (2, "jvm"))} | {"samples": len(samples)}  # fmt: skip


def live_heap_mb(jvm_pid: int) -> float | None:
    """The JVM's heap in use right after a full collection (``jcmd GC.run``, then
    ``GC.heap_info``): what the driver really keeps, unlike its RSS, which a JVM grows
    towards its maximum heap and does not give back. None where jcmd cannot attach."""
    import re
    import shutil
    import subprocess

    jcmd = shutil.which("jcmd")
    if not jcmd:
        return None
    try:
        subprocess.run([jcmd, str(jvm_pid), "GC.run"], capture_output=True, timeout=60,
                       check=True)  # fmt: skip
        info = subprocess.run([jcmd, str(jvm_pid), "GC.heap_info"], capture_output=True,
                              text=True, timeout=60, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"heap\s+total\s+\d+K,\s+used\s+(\d+)K", info)
    return round(int(m.group(1)) / 1024, 1) if m else None


def jvm_of(pid: int) -> int | None:
    import psutil

    try:
        return next((c.pid for c in psutil.Process(pid).children(recursive=True)
                     if "java" in c.name()), None)  # fmt: skip
    except psutil.Error:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=1000, help="events/s")
    ap.add_argument("--duration-s", type=float, default=300.0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tick-s", type=float, default=0.1)
    ap.add_argument("--warmup-s", type=float, default=60.0,
                    help="events sent this long after the rate starts are reported apart "
                         "(the JVM compiles and a backlog drains: not the steady state)")
    args = ap.parse_args()
    from kafka import KafkaProducer

    from carbonpipe.core.config import get_settings
    from carbonpipe.core.kafka_security import python_kwargs
    from carbonpipe.core.mongo import mongo_client
    from carbonpipe.services import stack
    from tests.spark_jobs.pipeline_harness import StreamJob

    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="carbonpipe-latency-"))
    base = get_settings()
    settings = base.model_copy(update={
        "metrics_topic": f"bench.latency.{tag}", "intensity_topic": f"bench.lat-intensity.{tag}",
        "dlq_topic": f"bench.lat-dlq.{tag}", "mongo_db": f"carbonpipe_latency_{tag}",
        "cold_store_uri": str(tmp / "cold"), "checkpoint_uri": str(tmp / "cp"),
    })  # fmt: skip
    print(f"[latency 1/3] services and topics ({settings.metrics_topic})", flush=True)
    stack.up(settings)
    db: Any = mongo_client(settings.mongo_uri)[settings.mongo_db]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                             linger_ms=5, **python_kwargs(settings))  # fmt: skip
    job = StreamJob(settings, tmp / "job.log")
    print("[latency 2/3] streaming job started; waiting for its first batch", flush=True)
    seqs = [0] * args.runs
    producer.send(settings.metrics_topic, key=b"lat-0", value=event(0, 0))
    producer.flush()
    seqs[0] = 1
    deadline = time.monotonic() + 300
    while not db["runs"].find_one({"_id": "lat-0"}):
        if not job.alive() or time.monotonic() > deadline:
            print(job.tail(), file=sys.stderr)
            return 2
        time.sleep(0.5)
    sent: list[tuple[float, list[int]]] = []  # (acknowledged at, cumulative count per run)
    seen: list[tuple[float, dict[str, int]]] = []
    stop = threading.Event()
    ids = [f"lat-{r}" for r in range(args.runs)]

    def poll() -> None:
        while not stop.is_set():
            t = time.monotonic()
            docs = {d["_id"]: int(d.get("n_events") or 0)
                    for d in db["runs"].find({"_id": {"$in": ids}}, {"n_events": 1})}  # fmt: skip
            seen.append((time.monotonic(), docs))
            stop.wait(max(0.0, args.tick_s - (time.monotonic() - t)))

    memory: list[tuple[float, float, float]] = []  # (t, driver's Python RSS MB, its JVM's)

    def sample_memory() -> None:
        """The job's driver: its Python process (the hot store's caches) and the JVM it runs
        Spark in, every 5 s: the state must not grow with the runs and windows seen."""
        import psutil

        proc = psutil.Process(job.proc.pid)
        while not stop.wait(5.0):
            try:
                py = proc.memory_info().rss
                jvm = sum(c.memory_info().rss for c in proc.children(recursive=True)
                          if "java" in c.name())  # fmt: skip
            except psutil.Error:
                return
            memory.append((time.monotonic(), py / 2**20, jvm / 2**20))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    live_heap: dict[str, float | None] = {}
    jvm_pid = jvm_of(job.proc.pid)
    print(f"[latency 3/3] {args.rate} events/s for {args.duration_s:.0f} s", flush=True)
    per_tick = max(1, int(args.rate * args.tick_s))
    t_end = time.monotonic() + args.duration_s
    nxt = time.monotonic()
    k = 0
    # the first forced GC (a pause) falls in the warm-up, whose latencies are reported apart
    heap_at = time.monotonic() + max(1.0, min(args.warmup_s - 10, args.duration_s / 4))
    while time.monotonic() < t_end:
        if jvm_pid and not live_heap and time.monotonic() >= heap_at:
            live_heap["after_first_minute"] = live_heap_mb(jvm_pid)
        for _ in range(per_tick):
            r = k % args.runs
            producer.send(settings.metrics_topic, key=f"lat-{r}".encode(), value=event(r, seqs[r]))
            seqs[r] += 1
            k += 1
        producer.flush()
        sent.append((time.monotonic(), list(seqs)))
        nxt += args.tick_s
        time.sleep(max(0.0, nxt - time.monotonic()))
    produced_s = time.monotonic() - (t_end - args.duration_s)
    drain = time.monotonic() + 120
    while time.monotonic() < drain:
        last = seen[-1][1] if seen else {}
        if all(last.get(f"lat-{r}", 0) >= seqs[r] for r in range(args.runs)):
            break
        time.sleep(0.5)
    stop.set()
    poller.join()
    sampler.join()
    if jvm_pid:
        live_heap["at_end"] = live_heap_mb(jvm_pid)
    job.stop()
    latencies: list[float] = []
    warmup: list[float] = []  # sent in the job's first ``--warmup-s`` at this rate
    steady_from = t_end - args.duration_s + args.warmup_s
    missing = 0
    j = 0
    for t_sent, counts in sent:
        for r in range(args.runs):
            while j < len(seen) and seen[j][0] < t_sent:
                j += 1
            hit = next((t for t, docs in seen[j:] if docs.get(f"lat-{r}", 0) >= counts[r]), None)
            if hit is None:
                missing += 1
            else:
                (latencies if t_sent >= steady_from else warmup).append(hit - t_sent)
    batches = []
    for line in (tmp / "job.log").read_text(errors="replace").splitlines():
        if " batch {" in line:
            batches.append(json.loads(line.split(" batch ", 1)[1]))
    steady = batches[2:] or batches
    stages: dict[str, float] = {}
    for b in steady:
        for k2, v in (b.get("timings_s") or {}).items():
            stages[k2] = stages.get(k2, 0.0) + v / len(steady)
    poll_periods = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
    result = {
        "scenario": {
            **vars(args),
            "trigger_s": settings.trigger_s,
            "achieved_rate": round(sum(seqs) / produced_s, 1),
        },
        "latency_s": {
            "p50": round(percentile(latencies, 0.5), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "max": round(max(latencies), 3),
            "n": len(latencies),
            "not_visible": missing,
        }
        if latencies
        else {"not_visible": missing},
        "warmup_latency_s": {
            "p50": round(percentile(warmup, 0.5), 3),
            "p95": round(percentile(warmup, 0.95), 3),
            "max": round(max(warmup), 3),
            "n": len(warmup),
        }
        if warmup
        else {},
        "poll_period_s": round(statistics.median(poll_periods), 3) if poll_periods else None,
        "batches": len(batches),
        "batch_seconds": {
            "median": round(statistics.median(b["seconds"] for b in steady), 3),
            # into the batch when readers could see it (MongoDB first, Parquet after)
            "visible_median": round(statistics.median(b.get("visible_s", b["seconds"])
                                                      for b in steady), 3),
            "compiled_median": statistics.median(b.get("compiled", 0) for b in steady),
        }
        if steady
        else {},
        "batch_stage_mean_s": {k2: round(v, 3) for k2, v in stages.items()},
        "driver_rss_mb": memory_summary(memory),
        # the JVM's live heap after a forced full GC, early and at the end (one GC pause each)
        "driver_live_heap_mb": live_heap,
        "target": {"p95_s": 3.0},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = ROOT / "bench" / "results" / "latency.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    mongo_client(settings.mongo_uri).drop_database(settings.mongo_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
