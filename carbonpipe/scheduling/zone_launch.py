"""Multi-zone plans: the job must run *in the chosen zone*, which this host cannot do alone.

Choice (kept small): ``carbonpipe schedule --policy multizone`` only advises when the best
zone is not the home zone, unless ``CARBONPIPE_ZONE_LAUNCHERS`` names a launcher for that
zone, e.g. ``DE=ssh gpu-de.example,FR=kubectl --context fr exec trainer --``; the launcher
words are put in front of the command (collector included, so carbonpipe must be installed
there). Running the command locally would emit at the home zone's intensity while claiming
the other zone's, so that is never done silently.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from carbonpipe.scheduling.policies import Plan, ScheduleError

LAUNCHERS_SETTING = "CARBONPIPE_ZONE_LAUNCHERS"


def parse_launchers(spec: str) -> dict[str, list[str]]:
    """``ZONE=command words,ZONE2=...`` -> {ZONE: argv prefix}."""
    out: dict[str, list[str]] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        zone, eq, cmd = part.partition("=")
        if not eq or not zone.strip() or not cmd.strip():
            raise ScheduleError(f"{LAUNCHERS_SETTING}: {part!r} is not ZONE=command")
        out[zone.strip().upper()] = shlex.split(cmd)
    return out


@dataclass(frozen=True)
class ZoneDecision:
    """What to run (possibly via a launcher) or that we only advise, and the plain message."""

    cmd: list[str]
    advise_only: bool
    message: str


def zone_decision(plan: Plan, cmd: Sequence[str], launchers_spec: str) -> ZoneDecision:
    """Decide how a plan's zone constrains running ``cmd`` from this host."""
    if plan.policy != "multizone" or plan.zone == plan.now_zone:
        return ZoneDecision(list(cmd), False, "")
    launcher = parse_launchers(launchers_spec).get(plan.zone.upper())
    must = (f"This plan only holds if the job runs in zone {plan.zone} (not {plan.now_zone}, "
            "where this host is).")
    if launcher is None:
        return ZoneDecision(list(cmd), True,
                            must + f" No launcher for {plan.zone} is configured "
                            f"({LAUNCHERS_SETTING}), so nothing was started: run it there "
                            "yourself.")
    return ZoneDecision([*launcher, *cmd], False,
                        must + f" Starting it there via: {shlex.join(launcher)}")
