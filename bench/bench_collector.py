"""Overhead of the carbonpipe collector beside CodeCarbon's EmissionsTracker.

Each tool runs in its own subprocess, sampling every ``--interval-s`` next to an idle
workload (a sleeping process) and a busy one (one core spinning). The tools run one after
another, interleaved round by round (bench/harness.py), and the summary gives each figure and
the carbonpipe/CodeCarbon ratios as median and range over the rounds: only ratios from the
same round mean something on a machine whose speed swings 2x within an hour.

Measured per tool process:
* steady CPU s per hour of sampling: ``getrusage(RUSAGE_SELF)`` taken inside the tool's
  process (a probe thread, two calls) ``--warmup-s`` after the tool has started and
  ``--window-s`` later, so import, start-up and shutdown are excluded and threads that come
  and go (CodeCarbon's timers) are included;
* peak RSS of the whole process (``wait4`` rusage, start-up included) and RSS at the end.
A bare ``baseline`` row (an interpreter that only sleeps) shows the floor under the same probe.

"carbonpipe" is ``python -m collector collect --pid W --stdout`` (the lean entry point, stdout
to /dev/null, no Kafka); "carbonpipe-cli" (optional, ``--tools``) is the same through the
``carbonpipe`` console command. CodeCarbon runs offline (OfflineEmissionsTracker, country GBR),
measure_power_secs=interval, save_to_file=False, tracking_mode "machine" (its default).
CodeCarbon missing or failing is an error (exit 2, nothing written), never a NaN row.

    python bench/bench_collector.py [--rounds 3] [--window-s 15] [--warmup-s 5] [--tools ...]
Writes bench/results/collector.json. Targets (issue #4): steady CPU at most half of
CodeCarbon's; RSS at most 40 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BenchError,
    Run,
    add_common_args,
    interleave,
    main_guard,
    print_summary,
    require_peer,
)

RSS_TARGET_MB = 40.0
CPU_RATIO_TARGET = 0.5
TOOLS = ("baseline", "carbonpipe", "carbonpipe-cli", "codecarbon")
DEFAULT_TOOLS = ("carbonpipe", "codecarbon")
WORKLOADS = ("idle", "busy")
SPIN = "import time\nwhile True:\n    sum(range(10000))\n"
FIGURES = ("cpu_s_per_h_steady", "peak_rss_mb", "rss_end_mb")


# ---------------------------------------------------------------- inside the tool process
def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(args: argparse.Namespace) -> int:
    """Run one tool in this process; a probe thread, started once the tool is up, writes
    args.report (so both tools are measured from the same point: started, not importing)."""
    done = threading.Event()

    def probe() -> None:
        time.sleep(args.warmup_s)
        c0, t0 = _cpu_s(), time.monotonic()
        time.sleep(args.window_s)
        c1, t1 = _cpu_s(), time.monotonic()
        Path(args.report).write_text(
            json.dumps({"cpu_s": c1 - c0, "window_s": t1 - t0, "rss_end_mb": _rss_mb()})
        )
        done.set()
        if args.tool.startswith("carbonpipe"):
            # Only once ``collect`` has installed its handler: on a loaded machine a tiny
            # window can end while it is still starting, and a default SIGTERM kills it.
            deadline = time.monotonic() + 60
            while signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)  # clean stop: end event, spool flushed

    start_probe = threading.Thread(target=probe, daemon=True).start
    if args.tool.startswith("carbonpipe"):
        argv = ["collect", "--run-id", f"bench-{args.target}-{args.tool}", "--user", "bench",
                "--model", "bench", "--zone", "GB", "--interval", str(args.interval_s),
                "--stdout", "--pid", str(args.target)]  # fmt: skip
        if args.tool == "carbonpipe-cli":
            from carbonpipe.cli import main as entry
        else:
            from collector.__main__ import main as entry
        start_probe()  # the collector's first sample follows within milliseconds
        return entry(argv)
    if args.tool == "codecarbon":
        from codecarbon import OfflineEmissionsTracker

        tracker = OfflineEmissionsTracker(
            country_iso_code="GBR",
            measure_power_secs=args.interval_s,
            save_to_file=False,
            log_level="error",
        )
        tracker.start()
        start_probe()
        done.wait()
        tracker.stop()
        return 0
    start_probe()
    done.wait()
    return 0


# ---------------------------------------------------------------- the driver
def child_env(tmp: Path) -> dict[str, str]:
    """The tools' environment: this checkout first on the path, a scratch CARBONPIPE_HOME."""
    return {
        **os.environ,
        "CARBONPIPE_HOME": str(tmp / "home"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def run_one(tool: str, workload: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    """One tool beside one workload; a failed tool raises BenchError (never a NaN row)."""
    target = subprocess.Popen(
        [sys.executable, "-c", SPIN if workload == "busy" else "import time; time.sleep(1e6)"]
    )
    report = tmp / f"{tool}-{workload}.json"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool,
           "--target", str(target.pid), "--window-s", str(args.window_s),
           "--warmup-s", str(args.warmup_s), "--interval-s", str(args.interval_s),
           "--report", str(report)]  # fmt: skip
    try:
        proc = subprocess.Popen(
            cmd, env=child_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        t0 = time.monotonic()
        _, status, ru = os.wait4(proc.pid, 0)
        wall_s = time.monotonic() - t0
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    finally:
        target.kill()
        target.wait()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0 or not report.exists():
        tail = "\n    ".join(err.strip().splitlines()[-6:]) or "(no stderr)"
        raise BenchError(
            f"{tool} ({workload}) could not be measured: exit status {rc}, "
            f"{'no' if not report.exists() else 'a'} probe report. Its stderr ends:\n    {tail}"
        )
    probe = json.loads(report.read_text())
    return {
        "cpu_s_per_h_steady": probe["cpu_s"] / probe["window_s"] * 3600,
        "peak_rss_mb": ru.ru_maxrss / 1024,  # Linux: KiB
        "rss_end_mb": probe["rss_end_mb"],
        "cpu_s_total": ru.ru_utime + ru.ru_stime,
        "wall_s": wall_s,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_args(ap)
    ap.add_argument("--window-s", type=float, default=15.0, help="measured seconds per run")
    ap.add_argument("--warmup-s", type=float, default=5.0, help="seconds after start, unmeasured")
    ap.add_argument("--interval-s", type=float, default=1.0, help="sampling interval of both tools")
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help=f"from {','.join(TOOLS)}")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    ap.add_argument("--target", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--report", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.child:
        args.tool_list = [t for t in args.tools.split(",") if t]
        args.workload_list = [w for w in args.workloads.split(",") if w]
        if unknown := set(args.tool_list) - set(TOOLS):
            ap.error(f"unknown tools {sorted(unknown)}; choose from {','.join(TOOLS)}")
        if not {"carbonpipe", "codecarbon"} <= set(args.tool_list):
            ap.error("--tools must include carbonpipe and codecarbon: the ratio is the result")
        if unknown := set(args.workload_list) - set(WORKLOADS):
            ap.error(f"unknown workloads {sorted(unknown)}; choose from {','.join(WORKLOADS)}")
        if args.window_s <= 0 or args.warmup_s < 0:
            ap.error("--window-s must be > 0 and --warmup-s >= 0")
    return args


def bench(args: argparse.Namespace, argv: list[str] | None) -> int:
    run = Run("collector", args, argv)
    with tempfile.TemporaryDirectory(prefix="cp-bench-") as tmp_s:
        tmp = Path(tmp_s)
        cc_version = require_peer("codecarbon", child_env(tmp))
        sides = [
            (f"{tool}/{w}", lambda _r, tool=tool, w=w: run_one(tool, w, args, tmp))
            for w in args.workload_list
            for tool in args.tool_list
        ]
        per_side = interleave(args.rounds, sides)
    figures = {
        f"{side.replace('/', '.')}.{fig}": [r[fig] for r in rows]
        for side, rows in per_side.items()
        for fig in FIGURES
    }
    ratios = {}
    for w in args.workload_list:
        cp, cc = per_side[f"carbonpipe/{w}"], per_side[f"codecarbon/{w}"]
        for fig, ratio in (("cpu_s_per_h_steady", "cpu_ratio"), ("peak_rss_mb", "peak_rss_ratio")):
            ratios[f"carbonpipe_vs_codecarbon.{w}.{ratio}"] = (
                [r[fig] for r in cp],
                [r[fig] for r in cc],
            )
    doc = run.result(
        order=[s for s, _ in sides],
        config={
            "window_s": args.window_s,
            "warmup_s": args.warmup_s,
            "interval_s": args.interval_s,
            "tools": args.tool_list,
            "workloads": args.workload_list,
        },
        figures=figures,
        ratios=ratios,
        targets={"cpu_ratio_max": CPU_RATIO_TARGET, "rss_mb_max": RSS_TARGET_MB},
        details={"per_round": per_side},
        codecarbon=cc_version,
    )
    verdict = {}
    for w in args.workload_list:
        cpu = doc["ratios"][f"carbonpipe_vs_codecarbon.{w}.cpu_ratio"]["median"]
        verdict[w] = {
            "cpu_target_met": cpu <= CPU_RATIO_TARGET,
            "rss_target_met_peak":
                doc["figures"][f"carbonpipe.{w}.peak_rss_mb"]["median"] <= RSS_TARGET_MB,
            "rss_target_met_steady":
                doc["figures"][f"carbonpipe.{w}.rss_end_mb"]["median"] <= RSS_TARGET_MB,
        }  # fmt: skip
    doc["verdict"] = verdict
    print_summary(doc)
    print(f"  verdict (medians): {json.dumps(verdict)}")
    print(f"wrote {run.write(doc)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        args.tool = args.child
        return child(args)
    return main_guard("collector", lambda: bench(args, argv))


if __name__ == "__main__":
    sys.exit(main())
