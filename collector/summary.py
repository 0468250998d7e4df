"""A run's result from its own events, without the stack: totals, gCO2e, a few lines of text.

Pure (no I/O): ``RunTotals`` adds up contract events as the collector publishes them;
``run_result`` turns the totals and the intensity the collector chose into a ``RunResult``;
``format_summary`` is what ``carbonpipe collect`` prints on stderr at the end. The same
``RunResult`` is ``track(...).result``, the ``--output FILE.json`` document and the source
of the CodeCarbon-style CSV row (``collector.output``).

gCO2e here is energy x one intensity value (the zone's cited annual average, or the WORLD
average as a labelled fallback): the streaming job's figure, which joins each event with the
intensity in force at its timestamp, is the more precise one when the stack runs.
No equivalents (km driven, ...) are printed: ``data/`` holds no cited factor for one, and
carbonpipe does not invent constants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from carbonpipe.core.units import DEVICES, J_PER_KWH


@dataclass(frozen=True)
class Intensity:
    """The grid intensity a run's energy is charged at, with where it came from."""

    zone: str
    g_per_kwh: float
    provider: str  # e.g. "static" (data/zone_averages.csv)
    source: str  # the citation, e.g. "zone_averages.csv: 2022 annual average, EMBER2022 ..."
    fallback: bool  # True when no zone was configured and the WORLD average stands in


@dataclass
class RunTotals:
    """Running sums over a run's events (fed one event at a time, from the sampling thread)."""

    energy_j: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DEVICES, 0.0))
    methods: dict[str, set[str]] = field(default_factory=lambda: {d: set() for d in DEVICES})
    duration_s: float = 0.0
    events: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    gpu_count: int = 0
    gpu_model: str = ""
    sum_cpu_utilization_pct: float = 0.0
    sum_gpu_utilization_pct: float = 0.0
    gpu_events: int = 0
    sum_ram_used_mb: float = 0.0
    identity: dict[str, str] = field(default_factory=dict)

    def add(self, event: Mapping[str, Any]) -> None:
        self.events += 1
        self.duration_s += float(event.get("interval_s") or 0.0)
        self.first_ts = self.first_ts or event.get("timestamp")
        self.last_ts = event.get("timestamp") or self.last_ts
        for dev in DEVICES:
            j = event.get(f"{dev}_energy_j")
            if j is not None:
                self.energy_j[dev] += float(j)
                if event.get(f"{dev}_method"):
                    self.methods[dev].add(str(event[f"{dev}_method"]))
        self.gpu_count = max(self.gpu_count, int(event.get("gpu_count") or 0))
        self.gpu_model = str(event.get("gpu_model") or self.gpu_model)
        self.sum_cpu_utilization_pct += float(event.get("cpu_utilization_pct") or 0.0)
        if event.get("gpu_utilization_pct") is not None:
            self.sum_gpu_utilization_pct += float(event["gpu_utilization_pct"])
            self.gpu_events += 1
        self.sum_ram_used_mb += float(event.get("ram_used_mb") or 0.0)
        for k in ("run_id", "user_id", "model_name", "host", "region"):
            if event.get(k):
                self.identity[k] = str(event[k])

    @property
    def energy_kwh(self) -> float:
        return sum(self.energy_j.values()) / J_PER_KWH


def method_of(methods: set[str]) -> str:
    """One label per device: measured, estimated, mixed (both over the run) or none."""
    if not methods:
        return "none"
    return next(iter(methods)) if len(methods) == 1 else "mixed"


@dataclass(frozen=True)
class RunResult:
    """What a run used and emitted, as the collector saw it. Units in the names."""

    run_id: str
    user_id: str
    model_name: str
    host: str
    zone: str
    started_at: str | None
    ended_at: str | None
    duration_s: float
    cpu_kwh: float
    gpu_kwh: float
    ram_kwh: float
    energy_kwh: float
    cpu_method: str
    gpu_method: str
    ram_method: str
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float
    mean_cpu_utilization_pct: float
    mean_gpu_utilization_pct: float
    mean_ram_used_mb: float
    gpu_count: int
    gpu_model: str
    intensity_g_per_kwh: float
    intensity_provider: str
    intensity_source: str
    intensity_fallback: bool
    co2_g: float
    events: int
    left_in_spool: int
    prediction: dict[str, Any] | None = None
    dropped_events: int = 0  # lost before delivery (collector.publish.Publisher), cumulative

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_result(
    totals: RunTotals,
    intensity: Intensity,
    left_in_spool: int = 0,
    prediction: Mapping[str, Any] | None = None,
    dropped_events: int = 0,
) -> RunResult:
    kwh = {d: totals.energy_j[d] / J_PER_KWH for d in DEVICES}
    dur = totals.duration_s
    n = max(1, totals.events)

    def power_w(dev: str) -> float:
        return totals.energy_j[dev] / dur if dur > 0 else 0.0

    ident = totals.identity
    return RunResult(
        run_id=ident.get("run_id", ""),
        user_id=ident.get("user_id", ""),
        model_name=ident.get("model_name", ""),
        host=ident.get("host", ""),
        zone=ident.get("region", intensity.zone),
        started_at=totals.first_ts,
        ended_at=totals.last_ts,
        duration_s=dur,
        cpu_kwh=kwh["cpu"],
        gpu_kwh=kwh["gpu"],
        ram_kwh=kwh["ram"],
        energy_kwh=sum(kwh.values()),
        cpu_method=method_of(totals.methods["cpu"]),
        gpu_method=method_of(totals.methods["gpu"]),
        ram_method=method_of(totals.methods["ram"]),
        cpu_power_w=power_w("cpu"),
        gpu_power_w=power_w("gpu"),
        ram_power_w=power_w("ram"),
        mean_cpu_utilization_pct=totals.sum_cpu_utilization_pct / n,
        mean_gpu_utilization_pct=(
            totals.sum_gpu_utilization_pct / totals.gpu_events if totals.gpu_events else 0.0
        ),
        mean_ram_used_mb=totals.sum_ram_used_mb / n,
        gpu_count=totals.gpu_count,
        gpu_model=totals.gpu_model,
        intensity_g_per_kwh=intensity.g_per_kwh,
        intensity_provider=intensity.provider,
        intensity_source=intensity.source,
        intensity_fallback=intensity.fallback,
        co2_g=sum(kwh.values()) * intensity.g_per_kwh,
        events=totals.events,
        left_in_spool=left_in_spool,
        prediction=dict(prediction) if prediction else None,
        dropped_events=dropped_events,
    )


def intensity_line(intensity: Intensity) -> str:
    """Which intensity a run is charged at, said before it starts and in the summary."""
    label = "fallback: no zone configured" if intensity.fallback else "annual average"
    return (
        f"{intensity.g_per_kwh:g} gCO2e/kWh for {intensity.zone} ({label}; "
        f"{intensity.provider}: {intensity.source})"
    )


def format_summary(r: RunResult, flush_hint: str = "carbonpipe collect --flush-spool") -> str:
    """The few lines ``carbonpipe collect`` prints on stderr when the job ends."""
    lines = [
        f"carbonpipe: run {r.run_id} ({r.user_id}, {r.model_name}) on {r.host}: "
        f"{r.duration_s:.1f} s, {r.events} events",
    ]
    for dev in DEVICES:
        method = getattr(r, f"{dev}_method")
        if method == "none":
            continue
        lines.append(
            f"  {dev.upper():<3} {getattr(r, f'{dev}_kwh'):.4g} kWh  "
            f"(mean {getattr(r, f'{dev}_power_w'):.1f} W, {method})"
        )
    lines.append(f"  total {r.energy_kwh:.4g} kWh")
    intensity = Intensity(
        r.zone, r.intensity_g_per_kwh, r.intensity_provider, r.intensity_source,
        r.intensity_fallback,
    )  # fmt: skip
    lines.append(f"  {r.co2_g:.4g} gCO2e at {intensity_line(intensity)}")
    if r.prediction:
        p = r.prediction
        lines.append(
            f"  predicted after {p['predicted_after_epochs']} epoch(s): "
            f"{p['predicted_energy_kwh']:.4g} kWh / {p['predicted_co2_g']:.4g} gCO2e "
            f"for {p['predicted_epochs']} epochs"
        )
    if r.left_in_spool:
        lines.append(
            f"  {r.left_in_spool} events stayed in the spool (Kafka unreachable); "
            f"send them later with `{flush_hint}`"
        )
    if r.dropped_events:
        lines.append(
            f"  {r.dropped_events} events lost before delivery (spool disk errors or full "
            "spool: see above); the stream misses their seqs"
        )
    return "\n".join(lines)
