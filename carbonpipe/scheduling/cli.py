"""``carbonpipe schedule`` (decide, wait, run) and ``carbonpipe schedule evaluate`` (replay).

argparse cannot mix an optional sub-command with options before ``--``, so ``schedule`` takes
its arguments verbatim and dispatches on a leading ``evaluate`` itself.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from carbonpipe.scheduling.policies import (
    AllowedHours,
    Forecast,
    Plan,
    ScheduleError,
    best_window,
    interruptible,
    iso,
    multizone,
    threshold_defer,
)

_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([dhms])", re.IGNORECASE)
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """'4h', '90m', '1h30m', '2.5h', '45s', '1d'; a bare number is seconds."""
    t = text.strip()
    try:
        return float(t)
    except ValueError:
        pass
    parts = _DUR.findall(t)
    if not parts or _DUR.sub("", t).strip():
        raise ValueError(f"bad duration {text!r}: use e.g. 4h, 90m, 1h30m, 45s")
    return sum(float(n) * _UNIT[u.lower()] for n, u in parts)


def parse_time(text: str) -> datetime:
    t = text.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(t)
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _dur(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# ------------------------------------------------------------------------------ parsers
def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="gCO2e/kWh for --policy threshold (default: 30th percentile of the "
                        "forecast up to the deadline)")
    p.add_argument("--max-delay", type=_dur, default=None,
                   help="threshold policy: longest wait (default: deadline - duration)")
    p.add_argument("--allowed-hours", default=None, help="local window, e.g. 03:00-22:00")
    p.add_argument("--tz", default="UTC", help="time zone of --allowed-hours, e.g. Europe/London")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carbonpipe schedule",
        description="Run CMD in the greenest slots before a deadline (and log the decision). "
                    "'carbonpipe schedule evaluate -h' replays real traces.")
    p.add_argument("--zone", default=None, help="grid zone (default: CARBONPIPE_ZONE)")
    p.add_argument("--zones", default=None, help="multizone: comma-separated candidate zones")
    p.add_argument("--duration", type=_dur, required=True, help="expected run time, e.g. 4h")
    p.add_argument("--deadline", type=_dur, default=24 * 3600.0, help="finish within (24h)")
    p.add_argument("--policy", choices=("threshold", "window", "interruptible", "multizone"),
                   default=None, help="default: window (interruptible with --interruptible)")
    p.add_argument("--interruptible", action="store_true",
                   help="the job may be paused and resumed (SIGSTOP/SIGCONT or gate)")
    p.add_argument("--pause-mode", choices=("signal", "gate"), default="signal",
                   help="signal: SIGSTOP/SIGCONT the process group; gate: the job calls "
                        "carbonpipe.scheduling.pause_gate() between steps")
    p.add_argument("--power-w", type=float, default=None, help="expected mean draw, watts")
    _policy_args(p)
    p.add_argument("--trace", default=None,
                   help="replay forecast from trace file(s) (comma-separated for --zones)")
    p.add_argument("--trace-start", default=None,
                   help="trace instant that maps to now (default: same hour of the year)")
    p.add_argument("--poll", type=_dur, default=900.0,
                   help="re-plan check interval while waiting (15m)")
    p.add_argument("--time-scale", type=float, default=None,
                   help="run the clock this many times faster (demos and tests)")
    p.add_argument("--no-collect", action="store_true", help="run CMD directly, no collector")
    p.add_argument("--run-id", default=None)
    p.add_argument("--user", default=None)
    p.add_argument("--model", default="unknown")
    p.add_argument("--dry-run", action="store_true", help="decide and log, do not run")
    p.add_argument("--json", action="store_true", help="print the decision log as JSON")
    p.add_argument("cmd", nargs="*", help="command to run, after --")
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carbonpipe schedule evaluate",
        description="Replay a real trace: one job per hour (or --jobs CSV), placed by each "
                    "policy, scored on the true trace against starting immediately.")
    p.add_argument("--trace", default=None,
                   help="trace file; comma-separated files for multizone (first is home)")
    p.add_argument("--policy", default="threshold,window,interruptible",
                   help="comma-separated: threshold, window, interruptible, multizone")
    p.add_argument("--duration", type=_dur, default=4 * 3600.0)
    p.add_argument("--deadline", type=_dur, default=24 * 3600.0)
    p.add_argument("--jobs", default=None,
                   help="CSV submit_time,duration,deadline,interruptible instead of hourly jobs")
    p.add_argument("--forecast-error", type=float, default=0.0,
                   help="relative sd of Gaussian noise on the forecast the policy sees")
    p.add_argument("--seed", type=int, default=1)
    _policy_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--per-job", default=None, help="write per-job rows to this CSV")
    p.add_argument("--plot", default=None, help="PNG of reductions over the year")
    p.add_argument("--all-shared", action="store_true",
                   help="every shared trace x policy x {1,4,12}h x {8,24}h deadline")
    p.add_argument("--out-dir", default="bench/results", help="for --all-shared")
    p.add_argument("--study", default=None, choices=("lets-wait-awhile",),
                   help="reproduce a published study's experiments on --trace")
    p.add_argument("--scenario", default="nightly",
                   help="--study: nightly, next-workday or semi-weekly")
    p.add_argument("--interruptible", action="store_true", help="--study: interrupting jobs")
    p.add_argument("--seeds", default="0-9", help="--study: forecast-noise seeds (0-9)")
    p.add_argument("--window-h", type=float, default=None,
                   help="--study nightly: one window of +-W h (default: 0..8 h)")
    return p


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "schedule", prefix_chars="\x00", add_help=False,
        help="carbon-aware scheduling: run a job in green hours, or evaluate policies")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "evaluate":
        return evaluate_main(argv[1:])
    if argv and argv[0] == "advise":
        from carbonpipe.scheduling.advise_cli import advise_main

        return advise_main(argv[1:])
    return schedule_main(argv)


# ------------------------------------------------------------------------------ schedule
def _allowed(ns: argparse.Namespace) -> AllowedHours | None:
    return AllowedHours.parse(ns.allowed_hours, ns.tz) if ns.allowed_hours else None


def decide(ns: argparse.Namespace, forecasts: list[Forecast], now: datetime) -> Plan:
    """Apply the chosen policy on forecasts re-gridded to start at ``now``."""
    from carbonpipe.scheduling.forecast import shift_to

    forecasts = [shift_to(f, now) for f in forecasts]
    fc = forecasts[0]
    lead = (now - fc.t0).total_seconds()
    dl = ns.deadline + lead
    allowed = _allowed(ns)
    pol = ns.policy or ("interruptible" if ns.interruptible else "window")
    if pol == "multizone":
        return multizone({f.zone: f for f in forecasts}, ns.duration, dl, allowed=allowed,
                         power_w=ns.power_w,
                         inner="interruptible" if ns.interruptible else "window")
    if pol == "interruptible":
        return interruptible(fc, ns.duration, dl, allowed=allowed, power_w=ns.power_w)
    if pol == "threshold":
        delay = ns.max_delay if ns.max_delay is not None else max(ns.deadline - ns.duration, 0)
        return threshold_defer(fc, ns.duration, ns.threshold, delay + lead, deadline_s=dl,
                               allowed=allowed, power_w=ns.power_w)
    return best_window(fc, ns.duration, dl, allowed=allowed, power_w=ns.power_w)


def _forecasts(ns: argparse.Namespace, now: datetime, clock_dt: Any) -> list[Forecast]:
    from carbonpipe.config import get_settings
    from carbonpipe.scheduling.forecast import provider_forecast, replay_forecast

    settings = get_settings()
    zones = [z.strip() for z in (ns.zones or ns.zone or settings.zone or "").split(",")
             if z.strip()]
    horizon = ns.deadline + 3600.0
    if ns.trace:
        start = parse_time(ns.trace_start) if ns.trace_start else None
        return [replay_forecast(t.strip(), now, horizon, trace_start=start)
                for t in ns.trace.split(",") if t.strip()]
    if not zones:
        raise ScheduleError("no zone: pass --zone (or set CARBONPIPE_ZONE) or --trace FILE")
    return [provider_forecast(z, horizon, settings, clock=clock_dt) for z in zones]


def schedule_main(argv: Sequence[str]) -> int:
    if any(a in ("-h", "--help") for a in argv[: argv.index("--") if "--" in argv else None]):
        run_parser().print_help()
        return 0
    ns = run_parser().parse_args(list(argv))
    from carbonpipe.config import get_settings
    from carbonpipe.scheduling.decisions import (
        build_log,
        decisions_dir,
        new_decision_id,
        write_log,
    )
    from carbonpipe.scheduling.runner import (
        Clock,
        RunRecord,
        ScaledClock,
        SystemClock,
        collector_command,
        run_plan,
    )

    if not ns.cmd and not ns.dry_run:
        print("carbonpipe schedule: give the command after --, or --dry-run", file=sys.stderr)
        return 2
    clock: Clock = ScaledClock(ns.time_scale) if ns.time_scale else SystemClock()

    def clock_dt() -> datetime:
        return datetime.fromtimestamp(clock.now(), tz=timezone.utc)

    now = clock_dt().replace(microsecond=0)
    try:
        from carbonpipe.scheduling.forecast import shift_to

        raw = _forecasts(ns, now, clock_dt)
        forecasts = [shift_to(f, now) for f in raw]
        plan = decide(ns, forecasts, now)
    except (ScheduleError, ValueError) as exc:
        print(f"carbonpipe schedule: {exc}", file=sys.stderr)
        return 2
    if ns.time_scale:  # deciding took real time; at this scale it would be hours: re-anchor
        clock = ScaledClock(ns.time_scale, start=now.timestamp())
    settings = get_settings()
    did = new_decision_id(now)
    cmd = list(ns.cmd)
    if cmd and not ns.no_collect:
        cmd = collector_command(cmd, run_id=ns.run_id or did, user=ns.user or getpass.getuser(),
                                model=ns.model, decision_id=did)
    request = {k: v for k, v in vars(ns).items() if k not in ("cmd", "json")}
    log = build_log(did, now, request, forecasts, plan, cmd)
    path = decisions_dir(settings.home) / f"{did}.json"
    write_log(path, log)
    _report(plan, did, path, ns.json, log)
    from carbonpipe.scheduling.zone_launch import LAUNCHERS_ENV, zone_decision

    try:
        zd = zone_decision(plan, cmd, os.environ.get(LAUNCHERS_ENV, ""))
    except ScheduleError as exc:
        print(f"carbonpipe schedule: {exc}", file=sys.stderr)
        return 2
    if zd.message:
        print(f"  {zd.message}", file=sys.stderr)
        log["zone_note"], cmd = zd.message, zd.cmd
        write_log(path, log)
    if ns.dry_run or zd.advise_only:
        return 0

    latest: dict[str, Any] = {"raw": raw, "plan": plan}

    def replan(at: float, remaining: float) -> Plan | None:
        """Re-decide on a fresher forecast; None when nothing changed."""
        t = datetime.fromtimestamp(int(at), tz=timezone.utc)
        fresh = _forecasts(ns, t, clock_dt)
        if not any(changed(a, b) for a, b in zip(latest["raw"], fresh, strict=False)):
            return None
        left = ns.deadline - (t - now).total_seconds()
        sub = argparse.Namespace(**{**vars(ns), "duration": remaining, "deadline": left})
        new = decide(sub, [shift_to(f, t) for f in fresh], t)
        latest["raw"] = fresh
        if new.segments == latest["plan"].segments:
            return None
        latest["plan"] = new
        return new

    def on_update(rec: RunRecord) -> None:
        log["run"] = rec.to_dict()
        write_log(path, log)

    gate = path.with_suffix(".gate") if ns.pause_mode == "gate" else None
    log["status"] = "running"
    rec = run_plan(plan, cmd, clock=clock, decision_id=did, interruptible=bool(
        ns.interruptible or plan.policy == "interruptible"), pause_mode=ns.pause_mode,
        gate_path=gate, replan=replan, poll_s=ns.poll, on_update=on_update)
    log["run"], log["status"] = rec.to_dict(), "done"
    write_log(path, log)
    print(f"finished rc={rec.returncode} run {rec.run_s / 3600:.2f} h, "
          f"{len(rec.pauses)} pause(s), log {path}", file=sys.stderr)
    return int(rec.returncode or 0)


def changed(old: Forecast, new: Forecast, tol: float = 1e-6) -> bool:
    """A fresher forecast: different values on the slots both cover (or a different step)."""
    if old.step_s != new.step_s:
        return True
    _, io, inew = np.intersect1d(old.starts, new.starts, return_indices=True)
    return bool(io.size) and bool(np.any(np.abs(old.values[io] - new.values[inew]) > tol))


def _report(plan: Plan, did: str, path: Path, as_json: bool, log: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(log, indent=1, default=str))
        return
    segs = ", ".join(f"{iso(a)}..{iso(b)}" for a, b in plan.segments)
    print(f"decision {did} ({plan.policy}, zone {plan.zone}): {segs}")
    extra = f", {plan.expected_g:.1f} g vs {plan.now_expected_g:.1f} g now" \
        if plan.expected_g is not None and plan.now_expected_g is not None else ""
    print(f"  expected {plan.g_per_kwh:.1f} gCO2e/kWh vs {plan.now_g_per_kwh:.1f} starting now "
          f"in {plan.now_zone} ({plan.reduction_pct:+.1f}% reduction{extra})")
    if plan.reason:
        print(f"  note: {plan.reason}")
    print(f"  log: {path}")


# ------------------------------------------------------------------------------ evaluate
def evaluate_main(argv: Sequence[str]) -> int:
    ns = evaluate_parser().parse_args(list(argv))
    if ns.study:
        from carbonpipe.scheduling.study_report import study_main

        return study_main(ns)
    from carbonpipe.scheduling import evaluate as ev
    from carbonpipe.scheduling.forecast import load_trace_forecast

    if ns.all_shared:
        from carbonpipe.intensity.trace import shared_traces_dir

        root = shared_traces_dir()
        if root is None:
            print("carbonpipe schedule evaluate: no shared traces (set CARBONPIPE_SHARED_DIR)",
                  file=sys.stderr)
            return 2
        rows = []
        for err in sorted({0.0, ns.forecast_error}):  # perfect forecast always, plus noisy
            rows += ev.evaluate_all(root, forecast_error=err, seed=ns.seed)
        js, md = ev.write_all(rows, Path(ns.out_dir), note=ALL_SHARED_NOTE)
        print(json.dumps(rows, indent=1) if ns.json else md.read_text(encoding="utf-8"))
        print(f"wrote {js} and {md}", file=sys.stderr)
        return 0
    if not ns.trace:
        print("carbonpipe schedule evaluate: --trace FILE (or --all-shared) is required",
              file=sys.stderr)
        return 2
    try:
        fcs = [load_trace_forecast(t.strip()) for t in ns.trace.split(",") if t.strip()]
        policies = [p.strip() for p in ns.policy.split(",") if p.strip()]
        others: dict[str, Forecast] | None = None
        home = fcs[0]
        if "multizone" in policies:
            if len(fcs) < 2:
                raise ScheduleError("multizone needs several --trace files (comma-separated)")
            aligned = ev.align(fcs)
            others = {f.zone: f for f in aligned}
        allowed = _allowed(ns)
        kw: dict[str, Any] = {"forecast_error": ns.forecast_error, "seed": ns.seed,
                              "threshold": ns.threshold, "max_delay_s": ns.max_delay,
                              "allowed": allowed}
        out: dict[str, Any] = {"trace": ns.trace, "summaries": []}
        results = []
        for pol in policies:
            base = others[home.zone] if pol == "multizone" and others else home
            if ns.jobs:
                placed = ev.evaluate_jobs(base, ev.read_jobs(ns.jobs), pol, others=others, **kw)
                out.setdefault("jobs", {})[pol] = [r for _, r in placed]
                red = [float(r["reduction_pct"]) for _, r in placed if "reduction_pct" in r]
                out["summaries"].append({
                    "policy": pol, "zone": home.zone, "n_jobs": len(red),
                    "mean_reduction_pct": float(np.mean(red)) if red else None,
                    "median_reduction_pct": float(np.median(red)) if red else None})
                continue
            res = ev.evaluate(base, pol, ns.duration, ns.deadline, others=others, **kw)
            results.append((res, base))
            out["summaries"].append(res.summary())
            if ns.per_job:
                out.setdefault("jobs", {})[pol] = res.jobs(base.starts)
    except (ScheduleError, ValueError, OSError) as exc:
        print(f"carbonpipe schedule evaluate: {exc}", file=sys.stderr)
        return 2
    if ns.per_job and "jobs" in out:
        _write_jobs_csv(Path(ns.per_job), out["jobs"])
    if ns.plot and results:
        ev.plot([r for r, _ in results], results[0][1], ns.plot)
    if ns.json:
        print(json.dumps(out, indent=1, default=str))
    elif ns.jobs:
        for pol, rows in out["jobs"].items():
            for r in rows:
                print(pol, json.dumps(r, default=str))
        for s in out["summaries"]:
            print(json.dumps(s))
    else:
        print(ev.summary_table(out["summaries"]))
    return 0


def _write_jobs_csv(path: Path, jobs: dict[str, list[dict[str, Any]]]) -> None:
    import csv

    keys = ["policy", "submit", "zone", "start_offset_h", "end_offset_h", "now_g_per_kwh",
            "plan_g_per_kwh", "reduction_pct", "feasible"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for pol, rows in jobs.items():
            for r in rows:
                w.writerow({**r, "policy": pol})


ALL_SHARED_NOTE = (
    "One job submitted at every full hour of each trace, perfect forecast unless "
    "forecast_error > 0; emissions scored on the true trace; reduction = 1 - plan/now of the "
    "job's mean gCO2e/kWh. threshold uses an auto threshold (30th percentile of the forecast "
    "up to the deadline) and max delay = deadline - duration. multizone = best contiguous "
    "window over DE/GB/FR 2020 on a common 30-min grid (spatial shifting: assumes capacity in "
    "the other zone, ignores data-transfer energy). 12 h jobs cannot meet an 8 h deadline: "
    "they run now (0 %). Traces: Let's Wait Awhile DE/GB/FR 2020 (life-cycle factors), "
    "Electricity Maps US-CAL-CISO 2021-2023 (LCA column).")
