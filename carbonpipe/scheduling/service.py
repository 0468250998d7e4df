"""What ``carbonpipe schedule`` and ``schedule advise`` do, with typed requests and no argparse.

The CLI (``scheduling/cli.py``) turns flags into these requests; the dashboard and the tests
build them directly. Forecasts come from providers or a replayed trace at the edge
(``forecast.py``); the decision itself is a pure policy (``policies.py``); the decision log
and the supervised run are ``decisions.py`` and ``runner.py``.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from carbonpipe.scheduling.advise import (
    HISTORY_DAYS,
    SavingsDistribution,
    advice_dict,
    advice_text,
    savings_distribution,
)
from carbonpipe.scheduling.policies import (
    AllowedHours,
    Forecast,
    Plan,
    PolicyName,
    ScheduleError,
    best_window,
    interruptible,
    multizone,
    threshold_defer,
)

MAX_SPAN_S = 30 * 86400.0  # a month: longer jobs or deadlines are typos, not plans
MIN_HISTORY_DAYS = 30
ClockDt = Callable[[], datetime]


# ------------------------------------------------------------------------------ requests
@dataclass(frozen=True)
class PolicyRequest:
    """How to place one job: its length, deadline and the policy with its knobs."""

    duration_s: float
    deadline_s: float = 86400.0
    policy: PolicyName | None = None  # None: window (interruptible when ``interruptible``)
    interruptible: bool = False
    power_w: float | None = None
    threshold_g_per_kwh: float | None = None
    max_delay_s: float | None = None
    allowed: AllowedHours | None = None

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_SPAN_S:
            raise ScheduleError("--duration must be more than 0 and at most 30 days")
        if not 0 < self.deadline_s <= MAX_SPAN_S:
            raise ScheduleError("--deadline must be more than 0 and at most 30 days")
        if self.power_w is not None and not self.power_w > 0:
            raise ScheduleError("--power-w must be more than 0 watts")
        if self.max_delay_s is not None and self.max_delay_s < 0:
            raise ScheduleError("--max-delay must not be negative")

    @property
    def policy_name(self) -> PolicyName:
        return self.policy or ("interruptible" if self.interruptible else "window")


@dataclass(frozen=True)
class ForecastSource:
    """Where forecasts come from: replayed trace files (one per zone), else the providers."""

    zones: tuple[str, ...] = ()
    trace: str | None = None  # comma-separated files
    trace_start: datetime | None = None  # trace instant that maps to now
    # The provider chain may answer with a past trace replayed onto today (the trace provider):
    # planning on it delays a real job by a past year's weather, so it is refused unless asked.
    allow_replay: bool = False


@dataclass(frozen=True)
class ScheduleRequest:
    """One ``carbonpipe schedule`` call: decide, log, and (unless ``dry_run``) run ``cmd``."""

    policy: PolicyRequest
    source: ForecastSource
    cmd: tuple[str, ...] = ()
    dry_run: bool = False
    pause_mode: Literal["signal", "gate"] = "signal"
    poll_s: float = 900.0
    time_scale: float | None = None
    collect: bool = True
    run_id: str | None = None
    user: str | None = None
    model: str = "unknown"
    zone_launchers: str = ""  # ZONE=command words,... (multizone plans)

    def __post_init__(self) -> None:
        if not self.cmd and not self.dry_run:
            raise ScheduleError("give the command after --, or --dry-run")
        if not self.poll_s > 0:
            raise ScheduleError("--poll must be more than 0")
        if self.time_scale is not None and not self.time_scale > 0:
            raise ScheduleError("--time-scale must be more than 0")

    def log_record(self) -> dict[str, Any]:
        """The request as the decision log keeps it (flat, JSON-ready)."""
        p = self.policy
        return {
            "zone": self.source.zones[0] if self.source.zones else None,
            "zones": ",".join(self.source.zones) or None, "trace": self.source.trace,
            "trace_start": self.source.trace_start, "duration": p.duration_s,
            "deadline": p.deadline_s, "policy": p.policy, "interruptible": p.interruptible,
            "power_w": p.power_w, "threshold": p.threshold_g_per_kwh,
            "max_delay": p.max_delay_s,
            "allowed_hours": p.allowed.spec if p.allowed else None,
            "pause_mode": self.pause_mode, "poll": self.poll_s, "time_scale": self.time_scale,
            "no_collect": not self.collect, "run_id": self.run_id, "user": self.user,
            "model": self.model, "dry_run": self.dry_run,
        }  # fmt: skip


@dataclass(frozen=True)
class AdviceRequest:
    """``carbonpipe schedule advise``: one job shape in one zone."""

    zone: str | None
    duration_s: float
    deadline_s: float
    interruptible: bool
    trace: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.duration_s <= MAX_SPAN_S:
            raise ScheduleError("--duration must be between 0 and 30 days")
        if not self.duration_s <= self.deadline_s <= MAX_SPAN_S:
            raise ScheduleError("--deadline must be between --duration and 30 days")


# ------------------------------------------------------------------------------ deciding
def decide(req: PolicyRequest, forecasts: Sequence[Forecast], now: datetime) -> Plan:
    """Apply the chosen policy on forecasts re-gridded to start at ``now``."""
    from carbonpipe.scheduling.forecast import shift_to

    shifted = [shift_to(f, now) for f in forecasts]
    fc = shifted[0]
    lead = (now - fc.t0).total_seconds()
    dl = req.deadline_s + lead
    pol = req.policy_name
    if pol == "multizone":
        return multizone({f.zone: f for f in shifted}, req.duration_s, dl, allowed=req.allowed,
                         power_w=req.power_w,
                         inner="interruptible" if req.interruptible else "window")
    if pol == "interruptible":
        return interruptible(fc, req.duration_s, dl, allowed=req.allowed, power_w=req.power_w)
    if pol == "threshold":
        delay = req.max_delay_s
        if delay is None:
            delay = max(req.deadline_s - req.duration_s, 0.0)
        return threshold_defer(fc, req.duration_s, req.threshold_g_per_kwh, delay + lead,
                               deadline_s=dl, allowed=req.allowed, power_w=req.power_w)
    return best_window(fc, req.duration_s, dl, allowed=req.allowed, power_w=req.power_w)


def fetch_forecasts(src: ForecastSource, horizon_s: float, now: datetime,
                    clock_dt: ClockDt | None = None) -> list[Forecast]:
    """One forecast per zone (or trace file), covering ``horizon_s`` from ``now``."""
    from carbonpipe.core.config import get_settings
    from carbonpipe.scheduling.forecast import provider_forecast, replay_forecast

    if src.trace:
        return [replay_forecast(t.strip(), now, horizon_s, trace_start=src.trace_start)
                for t in src.trace.split(",") if t.strip()]
    settings = get_settings()
    zones = src.zones or ((settings.zone,) if settings.zone else ())
    if not zones:
        raise ScheduleError("no zone: pass --zone (or set CARBONPIPE_ZONE) or --trace FILE")
    out = [provider_forecast(z, horizon_s, settings, clock=clock_dt) for z in zones]
    replayed = [fc for fc in out if fc.provenance.get("replayed")]
    if replayed and not src.allow_replay:
        fc = replayed[0]
        raise ScheduleError(
            f"the forecast for {fc.zone} is a past trace replayed onto today "
            f"({fc.provenance.get('source') or 'trace'}, via CARBONPIPE_PROVIDERS="
            f"{settings.providers}), not a forecast: a plan on it follows that past weather. "
            "Put a live provider first (e.g. CARBONPIPE_PROVIDERS=uk,trace,static for GB, or "
            "electricitymaps with CARBONPIPE_ELECTRICITYMAPS_TOKEN), or plan on the replay "
            "knowingly with --allow-replay (or --trace FILE)"
        )
    return out


def changed(old: Forecast, new: Forecast, tol: float = 1e-6) -> bool:
    """A fresher forecast: different values on the slots both cover (or a different step)."""
    if old.step_s != new.step_s:
        return True
    _, io, inew = np.intersect1d(old.starts, new.starts, return_indices=True)
    return bool(io.size) and bool(np.any(np.abs(old.values[io] - new.values[inew]) > tol))


@dataclass
class Replanner:
    """Re-decides on a fresher forecast while a job waits or runs (``runner.run_plan``'s hook).

    Keeps the last forecasts and plan; returns a new plan only when the forecast *and* the
    resulting segments changed, so an unchanged feed never disturbs a running job.
    """

    req: PolicyRequest
    source: ForecastSource
    decided_at: datetime
    raw: list[Forecast]
    plan: Plan
    clock_dt: ClockDt | None = None

    def __call__(self, at: float, remaining_s: float) -> Plan | None:
        t = datetime.fromtimestamp(int(at), tz=timezone.utc)
        fresh = fetch_forecasts(self.source, self.req.deadline_s + 3600.0, t, self.clock_dt)
        if not any(changed(a, b) for a, b in zip(self.raw, fresh, strict=False)):
            return None
        left = self.req.deadline_s - (t - self.decided_at).total_seconds()
        new = decide(replace(self.req, duration_s=remaining_s, deadline_s=max(left, 1.0)),
                     fresh, t)
        self.raw = fresh
        if new.segments == self.plan.segments:
            return None
        self.plan = new
        return new


# ------------------------------------------------------------------------------ scheduling
@dataclass
class Scheduled:
    """A decision, logged: what will run, where the log is, and any zone note."""

    decision_id: str
    plan: Plan
    log: dict[str, Any]
    log_path: Path
    cmd: list[str]
    advise_only: bool
    replanner: Replanner
    clock: Any
    zone_note: str = ""
    forecasts: list[Forecast] = field(default_factory=list)


def plan_job(req: ScheduleRequest, home: Path) -> Scheduled:
    """Decide and write the decision log (nothing runs yet)."""
    from carbonpipe.scheduling.decisions import build_log, decisions_dir, new_decision_id, write_log
    from carbonpipe.scheduling.forecast import shift_to
    from carbonpipe.scheduling.runner import Clock, ScaledClock, SystemClock, collector_command
    from carbonpipe.scheduling.zone_launch import zone_decision

    clock: Clock = ScaledClock(req.time_scale) if req.time_scale else SystemClock()

    def clock_dt() -> datetime:
        return datetime.fromtimestamp(clock.now(), tz=timezone.utc)

    now = clock_dt().replace(microsecond=0)
    raw = fetch_forecasts(req.source, req.policy.deadline_s + 3600.0, now, clock_dt)
    forecasts = [shift_to(f, now) for f in raw]
    plan = decide(req.policy, forecasts, now)
    if req.time_scale:  # deciding took real time; at this scale it would be hours: re-anchor
        clock = ScaledClock(req.time_scale, start=now.timestamp())
    did = new_decision_id(now)
    cmd = list(req.cmd)
    if cmd and req.collect:
        cmd = collector_command(cmd, run_id=req.run_id or did, user=req.user or getpass.getuser(),
                                model=req.model, decision_id=did)
    log = build_log(did, now, req.log_record(), forecasts, plan, cmd)
    zd = zone_decision(plan, cmd, req.zone_launchers)
    if zd.message:
        log["zone_note"] = zd.message
    path = write_log(decisions_dir(home) / f"{did}.json", log)
    replanner = Replanner(req.policy, req.source, now, raw, plan, clock_dt)
    return Scheduled(did, plan, log, path, zd.cmd, zd.advise_only, replanner, clock,
                     zd.message, forecasts)


def run_job(req: ScheduleRequest, s: Scheduled) -> Any:
    """Run the decided job under the plan (pausing, re-planning), keeping the log current.

    ``status`` ends as ``done`` (the job ended by itself), ``stopped`` (a SIGTERM/SIGHUP/SIGINT
    to the scheduler stopped the started job; ``run.signal`` and ``run.forwarded_signal`` say
    which), ``cancelled`` (such a signal came before the job started) or ``failed`` (the
    scheduler raised; ``error`` says what, and the job was resumed and sent SIGTERM). A
    SIGKILLed scheduler leaves ``waiting``, ``running`` or ``paused``: nobody was left to write.
    """
    from carbonpipe.scheduling.decisions import write_log
    from carbonpipe.scheduling.runner import RunRecord, run_plan

    def on_update(rec: RunRecord) -> None:
        s.log["run"] = rec.to_dict()
        s.log["status"] = "paused" if rec.paused else "running"
        write_log(s.log_path, s.log)

    gate = s.log_path.with_suffix(".gate") if req.pause_mode == "gate" else None
    s.log["status"] = "waiting"
    write_log(s.log_path, s.log)
    try:
        rec = run_plan(
            s.plan, s.cmd, clock=s.clock, decision_id=s.decision_id,
            interruptible=bool(req.policy.interruptible or s.plan.policy == "interruptible"),
            pause_mode=req.pause_mode, gate_path=gate, replan=s.replanner, poll_s=req.poll_s,
            on_update=on_update)  # fmt: skip
    except BaseException as exc:
        s.log["status"], s.log["error"] = "failed", f"{type(exc).__name__}: {exc}"
        write_log(s.log_path, s.log)
        raise
    s.log["run"] = rec.to_dict()
    s.log["status"] = "done" if rec.signal is None else \
        "cancelled" if rec.started_at is None else "stopped"
    write_log(s.log_path, s.log)
    return rec


# ------------------------------------------------------------------------------ advice
def history_forecast(req: AdviceRequest, now: datetime) -> Forecast:
    """The zone's last 12 months of actual intensity: ``trace``, else the configured
    providers' history, else a bundled or shared trace for the zone (never an annual average
    standing in for a series)."""
    from carbonpipe.core.config import get_settings
    from carbonpipe.intensity.trace import find_trace
    from carbonpipe.scheduling.forecast import chain_for, forecast_from_points, load_trace_forecast

    if req.trace:
        return load_trace_forecast(req.trace)
    settings = get_settings()
    zone = req.zone or settings.zone
    if not zone:
        raise ScheduleError("no zone: pass --zone (or set CARBONPIPE_ZONE) or --trace FILE")
    try:
        pts = chain_for(settings, None).history(zone, now - timedelta(days=HISTORY_DAYS), now)
        fc = forecast_from_points(list(pts), zone)
        usable = fc.step_s <= 3600 and "fallback" not in str(fc.provenance.get("kind"))
        if usable and fc.horizon_s() >= MIN_HISTORY_DAYS * 86400:
            return fc
    except Exception:
        pass
    path = find_trace(zone, settings.trace_paths)
    if path is None:
        raise ScheduleError(f"no history for {zone}: no provider answered and no trace file")
    return load_trace_forecast(path)


@dataclass(frozen=True)
class Advice:
    distribution: SavingsDistribution
    plan: Plan | None
    plan_note: str
    now: datetime

    @property
    def text(self) -> str:
        return advice_text(self.distribution, self.plan, self.plan_note, self.now)

    def to_dict(self) -> dict[str, Any]:
        return advice_dict(self.distribution, self.plan, self.plan_note, self.now)


def todays_plan(req: AdviceRequest, now: datetime) -> tuple[Plan | None, str]:
    """What ``carbonpipe schedule`` would decide right now (None and why when it cannot)."""
    policy = PolicyRequest(req.duration_s, req.deadline_s, interruptible=req.interruptible)
    source = ForecastSource(zones=(req.zone,) if req.zone else (), trace=req.trace)
    try:
        return decide(policy, fetch_forecasts(source, req.deadline_s + 3600.0, now,
                                              lambda: now), now), ""  # fmt: skip
    except (ScheduleError, ValueError, OSError) as exc:
        return None, str(exc)


def advise(req: AdviceRequest, now: datetime | None = None) -> Advice:
    """The savings distribution over the zone's history plus today's plan."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    dist = savings_distribution(history_forecast(req, now), req.duration_s, req.deadline_s,
                                interruptible=req.interruptible)
    plan, note = todays_plan(req, now)
    return Advice(dist, plan, note, now)


__all__ = ["Advice", "AdviceRequest", "ForecastSource", "PolicyRequest", "Replanner",
           "ScheduleRequest", "Scheduled", "advise", "asdict", "changed", "decide",
           "fetch_forecasts", "plan_job", "run_job"]
