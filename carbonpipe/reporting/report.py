"""``carbonpipe report``'s content (pure): totals, a per-group table, provenance, factors.

Which runs: those that *started* in ``[since, until)`` (UTC), like ``carbonpipe runs --since
--until``: each run counts wholly in the one report whose range holds its start, so the
reports of consecutive periods add up to the year's, and a report's totals are those of
``carbonpipe runs --json`` for the same filter. Figures are the measured (IT) ones; the
facility figures (x PUE), the cost and the equivalents are computed from them and shown
beside them with the factors and their sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.rollup_keys import rolled
from carbonpipe.reporting.equivalents import Equivalent, Price, cost, equivalents, price_for

BY_FIELDS = {"user": "user_id", "model": "model_name", "zone": "zones", "host": "hosts"}
BY_HELP = "user, model, zone, host or tag:KEY (e.g. tag:project)"
# What a group sums of its runs: every figure the rollups sum (each run document carries
# them), and the runs' durations.
SUMMED = (*rolled(), "duration_s")
NONE = "(none)"


def check_by(by: str) -> str:
    if by in BY_FIELDS or (by.startswith("tag:") and len(by) > 4):
        return by
    raise ValueError(f"--by {by!r}: one of {BY_HELP}")


def group_of(run: Mapping[str, Any], by: str) -> str:
    """The run's group: its user, model, tag value, or its zones/hosts joined with ``+``
    (a run over several zones is one group of its own: its energy per zone is not split)."""
    if by.startswith("tag:"):
        v = (run.get("tags") or {}).get(by[4:])
        return NONE if v is None else str(v)
    v = run.get(BY_FIELDS[by])
    if isinstance(v, list):
        return "+".join(sorted(str(x) for x in v)) or NONE
    return NONE if v is None else str(v)


@dataclass
class Group:
    name: str
    runs: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, run: Mapping[str, Any]) -> None:
        self.runs += 1
        for k in SUMMED:
            self.sums[k] = self.sums.get(k, 0.0) + float(run.get(k) or 0.0)


@dataclass(frozen=True)
class Factors:
    pue: float
    prices: Mapping[str, Price]
    equivalents: tuple[Equivalent, ...]
    citations: Mapping[str, str] = field(default_factory=dict)  # source key -> full citation


def _zone_kwh(runs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in runs:
        z = group_of(r, "zone")
        out[z] = out.get(z, 0.0) + float(r.get("energy_kwh") or 0.0)
    return out


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def build(runs: Sequence[Mapping[str, Any]], *, since: datetime | None,
          until: datetime | None, by: str, factors: Factors, source: str,
          filters: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The report as one JSON-ready dict (every renderer reads only this)."""
    total = Group("total")
    groups: dict[str, Group] = {}
    daily: dict[str, float] = {}
    methods: dict[str, int] = {}
    providers: dict[str, int] = {}
    for r in runs:
        total.add(r)
        groups.setdefault(group_of(r, by), Group(group_of(r, by))).add(r)
        start = r.get("start")
        if isinstance(start, datetime):
            day = start.astimezone(timezone.utc).strftime("%Y-%m-%d")
            daily[day] = daily.get(day, 0.0) + float(r.get("co2_g") or 0.0)
        m = str(r.get("method") or "unknown")
        methods[m] = methods.get(m, 0) + 1
        for p in r.get("intensity_providers") or []:
            providers[str(p)] = providers.get(str(p), 0) + 1
    t = total.sums
    kwh, co2 = t.get("energy_kwh", 0.0), t.get("co2_g", 0.0)
    facility_kwh, facility_co2 = kwh * factors.pue, co2 * factors.pue
    zone_kwh = {z: v * factors.pue for z, v in _zone_kwh(runs).items()}
    per_currency, unpriced = cost(zone_kwh, factors.prices)
    used_prices = {z: price_for(z, factors.prices) for z in zone_kwh}
    return {
        "title": "carbonpipe emissions report",
        "generated_at": _iso(now or datetime.now(timezone.utc)),
        "range": {"since": _iso(since), "until": _iso(until),
                  "rule": "runs that started in [since, until), UTC; each run counted whole"},
        "source": source,
        "filters": {k: v for k, v in filters.items() if v},
        "by": by,
        "totals": {
            "runs": total.runs, "energy_kwh": kwh, "co2_g": co2,
            "duration_s": t.get("duration_s", 0.0), "gpu_hours": t.get("gpu_hours", 0.0),
            "mean_intensity_g_per_kwh": co2 / kwh if kwh > 0 else None,
            "pue": factors.pue, "facility_energy_kwh": facility_kwh,
            "facility_co2_g": facility_co2,
            "cost": per_currency, "unpriced_kwh": unpriced,
            "equivalents": equivalents(facility_co2, factors.equivalents),
        },
        "groups": [
            {"group": g.name, "runs": g.runs, "energy_kwh": g.sums.get("energy_kwh", 0.0),
             "co2_g": g.sums.get("co2_g", 0.0), "gpu_hours": g.sums.get("gpu_hours", 0.0),
             "facility_co2_g": g.sums.get("co2_g", 0.0) * factors.pue,
             "share_of_co2": _share(g.sums.get("co2_g", 0.0), co2)}
            for g in sorted(groups.values(), key=lambda g: -g.sums.get("co2_g", 0.0))
        ],
        "daily_co2_g": dict(sorted(daily.items())),
        "provenance": {
            "measured_share": _share(t.get("measured_kwh", 0.0), kwh),
            "estimated_share": _share(t.get("estimated_kwh", 0.0), kwh),
            "fallback_intensity_share": _share(t.get("fallback_kwh", 0.0), kwh),
            "runs_by_method": methods, "runs_by_intensity_provider": providers,
            "device_kwh": {d: t.get(f"{d}_kwh", 0.0) for d in ("cpu", "gpu", "ram")},
        },
        "factors": {
            "pue": factors.pue,
            "equivalents": [asdict(e) for e in factors.equivalents],
            "prices": {z: asdict(p) for z, p in used_prices.items() if p is not None},
            "sources": {k: v for k, v in factors.citations.items()
                        if k in {e.source for e in factors.equivalents}
                        | {p.source for p in used_prices.values() if p is not None}},
        },
    }


def _iso(d: datetime | None) -> str | None:
    return None if d is None else d.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
