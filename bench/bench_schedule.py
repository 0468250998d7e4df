"""Time the evaluator: one year of 30-minute data, one job per hour, per policy.

The policies (and forecast errors) are the sides, interleaved round by round
(bench/harness.py); each time and each policy's time relative to ``threshold`` at the same
forecast error is reported as median and range over the rounds, after one unrecorded pass
(the first call pays for caches). Timing lives here, not in a pass/fail test, because wall time
depends on the machine.

    python bench/bench_schedule.py [TRACE] [--rounds 3]
Writes bench/results/schedule_bench.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BenchError,
    Measure,
    Run,
    add_common_args,
    interleave,
    main_guard,
    print_summary,
)
from carbonpipe.intensity.trace import shared_traces_dir  # noqa: E402
from carbonpipe.scheduling import evaluate as ev  # noqa: E402
from carbonpipe.scheduling.forecast import load_trace_forecast  # noqa: E402

POLICIES = ("threshold", "window", "interruptible", "multizone")
ERRORS = (0.0, 0.05)
BASELINE = "threshold"


def side_name(policy: str, err: float) -> str:
    return f"{policy}.err{err:g}"


def bench(args: argparse.Namespace, argv: list[str] | None) -> int:
    run = Run("schedule_bench", args, argv)
    trace = Path(args.trace) if args.trace else None
    if trace is None:
        root = shared_traces_dir()
        if root is None:
            raise BenchError(
                "no shared traces (../shared/data/carbon-intensity): pass a trace file"
            )
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
    shape: dict[str, dict[str, float]] = {}

    def timer(pol: str, err: float) -> Measure:
        base = aligned[fc.zone] if pol == "multizone" else fc

        def measure(_round: int) -> dict[str, float]:
            t = time.perf_counter()
            res = ev.evaluate(
                base,
                pol,
                args.duration_h * 3600,
                args.deadline_h * 3600,
                forecast_error=err,
                others=aligned or None,
            )
            elapsed = time.perf_counter() - t
            shape[side_name(pol, err)] = {
                "n_jobs": int(res.submit_idx.size),
                "slots": int(base.starts.size),
                "step_s": base.step_s,
            }
            return {"ms": elapsed * 1000}

        return measure

    policies = [p for p in POLICIES if p != "multizone" or aligned]
    sides = [(side_name(p, e), timer(p, e)) for p in policies for e in ERRORS]
    per_side = interleave(args.rounds, sides, warmup=True)
    figures = {f"{s}.ms": [r["ms"] for r in rows] for s, rows in per_side.items()}
    ratios = {
        f"{p}_vs_{BASELINE}.err{e:g}.time_ratio": (
            figures[f"{side_name(p, e)}.ms"],
            figures[f"{side_name(BASELINE, e)}.ms"],
        )
        for p in policies
        if p != BASELINE
        for e in ERRORS
    }
    doc = run.result(
        order=[s for s, _ in sides],
        config={"trace": trace.name, "duration_h": args.duration_h, "deadline_h": args.deadline_h},
        figures=figures,
        ratios=ratios,
        details={"load_trace_s": load_s, "shape": shape},
    )
    print_summary(doc)
    print(f"wrote {run.write(doc)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("trace", nargs="?", default=None, help="default: shared gb-2020.csv")
    ap.add_argument("--duration-h", type=float, default=4.0)
    ap.add_argument("--deadline-h", type=float, default=24.0)
    add_common_args(ap)
    args = ap.parse_args(argv)
    return main_guard("schedule", lambda: bench(args, argv))


if __name__ == "__main__":
    sys.exit(main())
