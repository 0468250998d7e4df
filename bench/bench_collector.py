"""Overhead of the carbonpipe collector beside CodeCarbon's EmissionsTracker.

Each tool runs in its own subprocess, sampling every ``--interval`` s for ``--duration`` s,
next to an idle workload (a sleeping process) and a busy one (one core spinning).

Measured per tool process:
* steady CPU s per hour of sampling: ``getrusage(RUSAGE_SELF)`` taken inside the tool's
  process (a probe thread, two calls) after ``--warmup`` s and just before the end, so
  start-up and shutdown are excluded and threads that come and go (CodeCarbon's timers)
  are included, at microsecond precision;
* total CPU s and peak RSS of the whole process (``wait4`` rusage, start-up included);
* RSS near the end (steady state).
A bare ``sleep`` row shows the interpreter's floor under the same probe.

"carbonpipe" is ``python -m collector collect --pid W --stdout`` (the lean entry point, stdout
to /dev/null, no Kafka); "carbonpipe-cli" is the same through the ``carbonpipe`` console
command, which imports every sub-command's module first. CodeCarbon runs offline
(OfflineEmissionsTracker, country GBR), measure_power_secs=interval, save_to_file=False,
tracking_mode "machine" (its default).

    python bench/bench_collector.py [--duration 60] [--interval 1]
Writes bench/results/collector.json and prints a table. Targets (issue #4): steady CPU at most
half of CodeCarbon's; RSS at most 40 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "collector.json"
RSS_TARGET_MB = 40.0
TOOLS = ("baseline", "carbonpipe", "carbonpipe-cli", "codecarbon")
SPIN = "import time\nwhile True:\n    sum(range(10000))\n"


# ---------------------------------------------------------------- inside the tool process
def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> int:
    """Run one tool in this process with a probe thread; the probe writes args.report."""
    done = threading.Event()

    def probe() -> None:
        time.sleep(args.warmup)
        c0, t0 = _cpu(), time.monotonic()
        time.sleep(max(0.0, args.duration - args.warmup))
        c1, t1 = _cpu(), time.monotonic()
        Path(args.report).write_text(
            json.dumps({"cpu_s": c1 - c0, "window_s": t1 - t0, "rss_end_mb": _rss_mb()})
        )
        done.set()
        if args.tool.startswith("carbonpipe"):
            os.kill(os.getpid(), signal.SIGTERM)  # clean stop: end event, spool flushed

    threading.Thread(target=probe, daemon=True).start()
    if args.tool.startswith("carbonpipe"):
        argv = [
            "collect",
            "--run-id",
            f"bench-{args.target}-{args.tool}",
            "--user",
            "bench",
            "--model",
            "bench",
            "--zone",
            "GB",
            "--interval",
            str(args.interval),
            "--stdout",
            "--pid",
            str(args.target),
        ]
        if args.tool == "carbonpipe-cli":
            from carbonpipe.cli import main as entry
        else:
            from collector.__main__ import main as entry
        return entry(argv)
    if args.tool == "codecarbon":
        from codecarbon import OfflineEmissionsTracker

        tracker = OfflineEmissionsTracker(
            country_iso_code="GBR",
            measure_power_secs=args.interval,
            save_to_file=False,
            log_level="error",
        )
        tracker.start()
        done.wait()
        tracker.stop()
        return 0
    done.wait()
    return 0


# ---------------------------------------------------------------- the driver
def run_one(tool: str, workload: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    target = subprocess.Popen(
        [sys.executable, "-c", SPIN if workload == "busy" else "import time; time.sleep(1e6)"]
    )
    report = tmp / f"{tool}-{workload}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        "--target",
        str(target.pid),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
        "--interval",
        str(args.interval),
        "--report",
        str(report),
    ]
    env = {
        **os.environ,
        "CARBONPIPE_HOME": str(tmp / "home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    finally:
        target.kill()
        target.wait()
    probe = json.loads(report.read_text()) if report.exists() else {}
    steady = probe.get("cpu_s", float("nan")) / probe.get("window_s", float("nan")) * 3600
    return {
        "tool": tool,
        "workload": workload,
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 2),
        "cpu_s_per_hour_steady": round(steady, 3),
        "cpu_s_total": round(ru.ru_utime + ru.ru_stime, 3),
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),  # Linux: KiB
        "rss_end_mb": round(probe.get("rss_end_mb", float("nan")), 1),
        "stderr_tail": err[-300:],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--target", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.tool = args.child
        return child(args)
    if args.duration <= args.warmup:
        ap.error("--duration must exceed --warmup")
    rows = []
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp:
        for workload in ("idle", "busy"):
            for tool in [t for t in args.tools.split(",") if t]:
                rows.append(run_one(tool, workload, args, Path(tmp)))
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
                "rss_target_met_peak": cp["peak_rss_mb"] <= RSS_TARGET_MB,
                "rss_target_met_steady": cp["rss_end_mb"] <= RSS_TARGET_MB,
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
        f"{'tool':<15} {'workload':<8} {'CPU s/h steady':>15} {'CPU s total':>12} "
        f"{'peak RSS MB':>12} {'RSS end MB':>11} {'rc':>3}"
    )
    for r in rows:
        print(
            f"{r['tool']:<15} {r['workload']:<8} {r['cpu_s_per_hour_steady']:>15.3f} "
            f"{r['cpu_s_total']:>12.3f} {r['peak_rss_mb']:>12.1f} {r['rss_end_mb']:>11.1f} "
            f"{r['exit_code']:>3}"
        )
    print(json.dumps(verdict))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
