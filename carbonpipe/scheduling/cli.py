"""``carbonpipe schedule`` (decide, wait, run), ``schedule evaluate`` (replay, study) and
``schedule advise``: flags in, a typed request to the service, text or JSON out.

Nothing here decides anything: ``service.py`` (schedule, advise), ``report.py`` (evaluate) and
``study_report.py`` (the published study) do, and take dataclasses, never argparse objects.
argparse cannot mix an optional sub-command with options before ``--``, so ``schedule`` takes
its arguments verbatim and dispatches on a leading ``evaluate``/``advise`` itself.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonpipe.core.config import get_settings
from carbonpipe.core.timeutil import duration_arg_s, parse_iso, utc_iso_s

if TYPE_CHECKING:  # numpy behind them: imported by the handlers, not by ``carbonpipe --help``
    from carbonpipe.scheduling.policies import AllowedHours, Plan


# ------------------------------------------------------------------------------ parsers
def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", type=float, default=None,
                   help="gCO2e/kWh for --policy threshold (default: 30th percentile of the "
                        "forecast up to the deadline)")
    p.add_argument("--max-delay", type=duration_arg_s, default=None,
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
    p.add_argument("--duration", type=duration_arg_s, required=True,
                   help="expected run time, e.g. 4h")
    p.add_argument("--deadline", type=duration_arg_s, default=24 * 3600.0,
                   help="finish within (24h)")
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
    p.add_argument("--allow-replay", action="store_true",
                   help="plan even when the provider chain answers with a past trace replayed "
                        "onto today (refused by default: it is not a forecast)")
    p.add_argument("--poll", type=duration_arg_s, default=900.0,
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
    p.add_argument("--duration", type=duration_arg_s, default=4 * 3600.0)
    p.add_argument("--deadline", type=duration_arg_s, default=24 * 3600.0)
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


def advise_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carbonpipe schedule advise",
        description="Before deferring: what this policy saved over the last 12 months in the "
                    "zone (median, p10, p90, share that gained nothing) and today's plan.")
    p.add_argument("--zone", default=None, help="grid zone (default: CARBONPIPE_ZONE)")
    p.add_argument("--duration", type=duration_arg_s, required=True,
                   help="expected run time, e.g. 6h")
    p.add_argument("--deadline", type=duration_arg_s, default=24 * 3600.0,
                   help="finish within (24h)")
    p.add_argument("--interruptible", action="store_true", help="job may pause and resume")
    p.add_argument("--trace", default=None, help="history (and today's replay) from this file")
    p.add_argument("--json", action="store_true")
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
        return advise_main(argv[1:])
    return schedule_main(argv)


# ------------------------------------------------------------------------------ requests
def _allowed(ns: argparse.Namespace) -> AllowedHours | None:
    from carbonpipe.scheduling.policies import AllowedHours

    return AllowedHours.parse(ns.allowed_hours, ns.tz) if ns.allowed_hours else None


def schedule_request(ns: argparse.Namespace) -> Any:
    from carbonpipe.scheduling.service import ForecastSource, PolicyRequest, ScheduleRequest

    policy = PolicyRequest(
        duration_s=ns.duration, deadline_s=ns.deadline, policy=ns.policy,
        interruptible=ns.interruptible, power_w=ns.power_w, threshold_g_per_kwh=ns.threshold,
        max_delay_s=ns.max_delay, allowed=_allowed(ns))  # fmt: skip
    zones = tuple(z.strip() for z in (ns.zones or ns.zone or "").split(",") if z.strip())
    start = parse_iso(ns.trace_start) if ns.trace_start else None
    cmd = list(ns.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    return ScheduleRequest(
        policy=policy, source=ForecastSource(zones, ns.trace, start, ns.allow_replay),
        cmd=tuple(cmd),
        dry_run=ns.dry_run, pause_mode=ns.pause_mode, poll_s=ns.poll, time_scale=ns.time_scale,
        collect=not ns.no_collect, run_id=ns.run_id, user=ns.user, model=ns.model,
        zone_launchers=get_settings().zone_launchers)  # fmt: skip


# ------------------------------------------------------------------------------ schedule
def schedule_main(argv: Sequence[str]) -> int:
    if any(a in ("-h", "--help") for a in argv[: argv.index("--") if "--" in argv else None]):
        run_parser().print_help()
        return 0
    from carbonpipe.scheduling.service import plan_job, run_job

    ns = run_parser().parse_args(list(argv))
    req = schedule_request(ns)
    s = plan_job(req, get_settings().home)
    _report(s.plan, s.decision_id, s.log_path, ns.json, s.log)
    if s.zone_note:
        print(f"  {s.zone_note}", file=sys.stderr)
    if req.dry_run or s.advise_only:
        return 0
    rec = run_job(req, s)
    if rec.signal is not None:  # the shell's convention for "ended by signal N": 128 + N
        what = f"sent {rec.forwarded} to the job (rc={rec.returncode})" if rec.forwarded \
            else "the job had not started"
        print(f"stopped by {rec.signal}: {what}, log {s.log_path}", file=sys.stderr)
        return 128 + int(signal.Signals[rec.signal])
    print(f"finished rc={rec.returncode} run {rec.run_s / 3600:.2f} h, "
          f"{len(rec.pauses)} pause(s), log {s.log_path}", file=sys.stderr)
    return int(rec.returncode or 0)


def _report(plan: Plan, did: str, path: Path, as_json: bool, log: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(log, indent=1, default=str))
        return
    segs = ", ".join(f"{utc_iso_s(a)}..{utc_iso_s(b)}" for a, b in plan.segments)
    from carbonpipe.scheduling.forecast import describe_provenance

    print(f"decision {did} ({plan.policy}, zone {plan.zone}): {segs}")
    for fc in log.get("forecasts", []):
        print(f"  forecast {fc['zone']}: {describe_provenance(fc['provenance'])}")
    extra = f", {plan.expected_g:.1f} g vs {plan.now_expected_g:.1f} g now" \
        if plan.expected_g is not None and plan.now_expected_g is not None else ""
    print(f"  expected {plan.g_per_kwh:.1f} gCO2e/kWh vs {plan.now_g_per_kwh:.1f} starting now "
          f"in {plan.now_zone} ({plan.reduction_pct:+.1f}% reduction{extra})")
    if plan.reason:
        print(f"  note: {plan.reason}")
    print(f"  log: {path}")


# ------------------------------------------------------------------------------ advise
def advise_main(argv: Sequence[str]) -> int:
    from carbonpipe.scheduling.service import AdviceRequest, advise

    ns = advise_parser().parse_args(list(argv))
    adv = advise(AdviceRequest(ns.zone, float(ns.duration), float(ns.deadline),
                               bool(ns.interruptible), ns.trace))
    print(json.dumps(adv.to_dict(), indent=1, default=str) if ns.json else adv.text)
    return 0


# ------------------------------------------------------------------------------ evaluate
def evaluate_main(argv: Sequence[str]) -> int:
    ns = evaluate_parser().parse_args(list(argv))
    if ns.study:
        from carbonpipe.scheduling.study_report import print_study, study_request

        return print_study(study_request(
            study=ns.study, scenario=ns.scenario, trace=ns.trace, error=ns.forecast_error,
            window_h=ns.window_h, interruptible=ns.interruptible, seeds=ns.seeds,
            as_json=ns.json, plot=ns.plot))  # fmt: skip
    from carbonpipe.scheduling import report

    if ns.all_shared:
        return _evaluate_all_shared(ns.forecast_error, ns.seed, Path(ns.out_dir), ns.json)
    req = report.EvaluateRequest(
        traces=tuple(t.strip() for t in (ns.trace or "").split(",") if t.strip()),
        policies=tuple(p.strip() for p in ns.policy.split(",") if p.strip()),
        duration_s=ns.duration, deadline_s=ns.deadline, jobs_csv=ns.jobs,
        forecast_error=ns.forecast_error, seed=ns.seed, threshold_g_per_kwh=ns.threshold,
        max_delay_s=ns.max_delay, allowed=_allowed(ns))  # fmt: skip
    out = report.run_evaluation(req, per_job=bool(ns.per_job))
    if ns.per_job and out.jobs:
        report.write_jobs_csv(Path(ns.per_job), out.jobs)
    if ns.plot and out.results:
        report.plot([r for r, _ in out.results], out.results[0][1], ns.plot)
    if ns.json:
        body = {"trace": ns.trace, "summaries": out.summaries, **({"jobs": out.jobs}
                                                                  if out.jobs else {})}
        print(json.dumps(body, indent=1, default=str))
    elif ns.jobs:
        for pol, rows in out.jobs.items():
            for r in rows:
                print(pol, json.dumps(r, default=str))
        for summary in out.summaries:
            print(json.dumps(summary))
    else:
        print(report.summary_table(out.summaries))
    return 0


def _evaluate_all_shared(error: float, seed: int, out_dir: Path, as_json: bool) -> int:
    from carbonpipe.intensity.trace import shared_traces_dir
    from carbonpipe.scheduling import report

    root = shared_traces_dir()
    if root is None:
        from carbonpipe.scheduling.policies import ScheduleError

        raise ScheduleError("no shared traces: set CARBONPIPE_SHARED_DIR")
    rows = []
    for err in sorted({0.0, error}):  # perfect forecast always, plus noisy
        rows += report.evaluate_all(root, forecast_error=err, seed=seed)
    js, md = report.write_all(rows, out_dir, note=report.ALL_SHARED_NOTE)
    print(json.dumps(rows, indent=1) if as_json else md.read_text(encoding="utf-8"))
    print(f"wrote {js} and {md}", file=sys.stderr)
    return 0
