"""Time the evaluator: one year of 30-minute data, one job per hour, per policy.

Writes bench/results/schedule_bench.json. Timing lives here, not in a pass/fail test, because
wall time depends on the machine. Usage: python bench/bench_schedule.py [TRACE] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from carbonpipe.intensity.trace import shared_traces_dir
from carbonpipe.scheduling import evaluate as ev
from carbonpipe.scheduling.forecast import load_trace_forecast

OUT = Path(__file__).resolve().parent / "results" / "schedule_bench.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("trace", nargs="?", default=None, help="default: shared gb-2020.csv")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--duration-h", type=float, default=4.0)
    ap.add_argument("--deadline-h", type=float, default=24.0)
    args = ap.parse_args()
    trace = Path(args.trace) if args.trace else None
    if trace is None:
        root = shared_traces_dir()
        if root is None:
            print("no shared traces: pass a trace file", file=sys.stderr)
            return 2
        trace = root / "gb-2020.csv"
    t0 = time.perf_counter()
    fc = load_trace_forecast(trace)
    load_s = time.perf_counter() - t0
    peers = [
        load_trace_forecast(trace.parent / n)
        for n in ("de-2020.csv", "fr-2020.csv")
        if (trace.parent / n).is_file() and n != trace.name
    ]
    aligned = {f.zone: f for f in ev.align([fc, *peers])} if peers else {}
    results = []
    for pol in ("threshold", "window", "interruptible", "multizone"):
        if pol == "multizone" and not aligned:
            continue
        base = aligned[fc.zone] if pol == "multizone" else fc
        for err in (0.0, 0.05):
            times, n = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                res = ev.evaluate(
                    base,
                    pol,
                    args.duration_h * 3600,
                    args.deadline_h * 3600,
                    forecast_error=err,
                    others=aligned or None,
                )
                times.append(time.perf_counter() - t)
                n = int(res.submit_idx.size)
            results.append(
                {
                    "policy": pol,
                    "forecast_error": err,
                    "n_jobs": n,
                    "slots": int(base.starts.size),
                    "step_s": base.step_s,
                    "median_s": statistics.median(times),
                    "min_s": min(times),
                    "max_s": max(times),
                }
            )
            print(
                f"{pol:14s} err={err:<4} {n} jobs over {base.starts.size} slots: "
                f"median {statistics.median(times) * 1000:.1f} ms"
            )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "trace": trace.name,
                "duration_h": args.duration_h,
                "deadline_h": args.deadline_h,
                "repeat": args.repeat,
                "load_trace_s": load_s,
                "results": results,
                "machine": {
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                },
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
