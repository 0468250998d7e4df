"""Overhead of the carbonpipe collector beside CodeCarbon's EmissionsTracker.

Each tool runs in its own subprocess, sampling every ``--interval`` s for ``--duration`` s,
next to an idle workload (a sleeping process) and a busy one (one core spinning). Measured
per tool process: total CPU seconds and peak RSS (``wait4`` rusage, includes start-up), and
steady-state CPU seconds per hour of sampling (psutil CPU time between ``--warmup`` s and the
end, scaled to 3600 s). A bare ``python -c sleep`` row shows the interpreter's own floor.

"carbonpipe" is ``python -m collector collect`` (the lean entry point); "carbonpipe-cli" is
the same through the ``carbonpipe`` console command, which imports every sub-command first.
CodeCarbon runs offline (OfflineEmissionsTracker, country GBR), measure_power_secs=interval,
save_to_file=False, tracking_mode machine (its default). carbonpipe runs
``collect --pid W --stdout`` with stdout to /dev/null (no Kafka in the loop).

    python bench/bench_collector.py --duration 60
Writes bench/results/collector.json and prints a table. Targets (issue #4): steady CPU at most
half of CodeCarbon's, peak RSS at most 40 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "collector.json"
RSS_TARGET_MB = 40.0

CODECARBON = """
import logging, sys, time
from codecarbon import OfflineEmissionsTracker
t = OfflineEmissionsTracker(country_iso_code="GBR", measure_power_secs={interval},
                            save_to_file=False, log_level="error")
t.start()
time.sleep({duration})
t.stop()
"""
SPIN = "import time\nwhile True:\n    sum(range(10000))\n"


def tool_cmd(tool: str, target: int, duration: float, interval: float) -> list[str]:
    py = sys.executable
    if tool.startswith("carbonpipe"):
        entry = "carbonpipe.cli" if tool == "carbonpipe-cli" else "collector"
        return [
            py,
            "-m",
            entry,
            "collect",
            "--run-id",
            f"bench-{target}-{tool}",
            "--user",
            "bench",
            "--model",
            "bench",
            "--zone",
            "GB",
            "--interval",
            str(interval),
            "--stdout",
            "--pid",
            str(target),
        ]
    if tool == "codecarbon":
        return [py, "-c", CODECARBON.format(interval=interval, duration=duration)]
    return [py, "-c", f"import time; time.sleep({duration})"]


def run_one(
    tool: str, workload: str, duration: float, interval: float, warmup: float, home: Path
) -> dict[str, Any]:
    target = subprocess.Popen(
        [sys.executable, "-c", SPIN if workload == "busy" else "import time; time.sleep(1e6)"]
    )
    env = {**os.environ, "CARBONPIPE_HOME": str(home)}
    try:
        proc = subprocess.Popen(
            tool_cmd(tool, target.pid, duration, interval),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ps = psutil.Process(proc.pid)
        t0 = time.monotonic()
        time.sleep(warmup)
        c0 = sum(ps.cpu_times()[:2])
        tw = time.monotonic()
        time.sleep(max(0.0, duration - warmup))
        c1 = sum(ps.cpu_times()[:2])
        t1 = time.monotonic()
        if tool.startswith("carbonpipe"):
            proc.send_signal(signal.SIGTERM)  # clean stop: end event, spool flushed
        _, status, ru = os.wait4(proc.pid, 0)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        target.kill()
        target.wait()
    return {
        "tool": tool,
        "workload": workload,
        "exit_code": proc.returncode,
        "wall_s": round(time.monotonic() - t0, 2),
        "cpu_s_total": round(ru.ru_utime + ru.ru_stime, 3),
        "cpu_s_per_hour_steady": round((c1 - c0) / (t1 - tw) * 3600, 2),
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),  # Linux: KiB
        "stderr_tail": err[-300:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--tools", default="baseline,carbonpipe,carbonpipe-cli,codecarbon")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        for workload in ("idle", "busy"):
            for tool in tools:
                rows.append(
                    run_one(tool, workload, args.duration, args.interval, args.warmup, Path(tmp))
                )
    by = {(r["tool"], r["workload"]): r for r in rows}
    verdict: dict[str, Any] = {}
    for w in ("idle", "busy"):
        cp, cc = by.get(("carbonpipe", w)), by.get(("codecarbon", w))
        if cp and cc:
            verdict[w] = {
                "cpu_ratio_vs_codecarbon": round(
                    cp["cpu_s_per_hour_steady"] / max(cc["cpu_s_per_hour_steady"], 1e-9), 3
                ),
                "cpu_target_met": cp["cpu_s_per_hour_steady"] <= cc["cpu_s_per_hour_steady"] / 2,
                "rss_target_met": cp["peak_rss_mb"] <= RSS_TARGET_MB,
            }
    result = {
        "duration_s": args.duration,
        "interval_s": args.interval,
        "warmup_s": args.warmup,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "results": rows,
        "verdict": verdict,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'tool':<11} {'workload':<8} {'CPU s/h steady':>15} {'CPU s total':>12} "
        f"{'peak RSS MB':>12} {'rc':>3}"
    )
    for r in rows:
        print(
            f"{r['tool']:<11} {r['workload']:<8} {r['cpu_s_per_hour_steady']:>15.2f} "
            f"{r['cpu_s_total']:>12.3f} {r['peak_rss_mb']:>12.1f} {r['exit_code']:>3}"
        )
    print(json.dumps(verdict))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
