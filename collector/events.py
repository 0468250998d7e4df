"""Build contract events (schemas/metric_event.v1.json) from one interval's figures. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from carbonpipe.core.timeutil import utc_iso
from collector.devices.gpu import GpuReading
from collector.energy import mean_power

SCHEMA_VERSION = 1
TAG_INT_KEYS = ("epoch", "step", "pid", "rank")
TAG_STR_KEYS = ("schedule_decision_id",)
TAG_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")  # schemas/metric_event.v1.json tags.propertyNames


@dataclass(frozen=True)
class RunIdentity:
    run_id: str
    user_id: str
    model_name: str
    host: str
    region: str


@dataclass
class Interval:
    """Everything measured over one interval; energies in J, bytes as deltas."""

    end: datetime
    interval_s: float
    cpu_host_j: float
    cpu_share: float
    cpu_method: str
    cpu_model: str
    cpu_util: float  # host busy fraction 0..1
    ram_j: float
    ram_method: str
    ram_model: str
    ram_used_bytes: int
    gpus: list[GpuReading] = field(default_factory=list)
    io: tuple[int, int, int, int] = (0, 0, 0, 0)
    cpu_fallback_reason: str | None = None
    gpu_model: str = ""


def parse_tags(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` strings to event fields; epoch/step/pid/rank become integers."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"tag {pair!r} is not k=v")
        if not TAG_KEY.fullmatch(key) or len(value) > 200:
            raise ValueError(f"tag {pair!r}: keys are 1-64 letters, digits, _ or - and values "
                             "at most 200 characters (the event contract's tags)")  # fmt: skip
        try:
            out[key] = int(value) if key in TAG_INT_KEYS else value
        except ValueError:
            raise ValueError(f"tag {pair!r}: {key} must be an integer") from None
    return out


def build_event(
    ident: RunIdentity,
    seq: int,
    iv: Interval,
    event_type: str = "sample",
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cpu_j = iv.cpu_host_j * iv.cpu_share
    gpu_j = sum(g.energy_j * g.process_share for g in iv.gpus)
    ev: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_type": event_type,
        "timestamp": utc_iso(iv.end),
        "run_id": ident.run_id,
        "user_id": ident.user_id,
        "model_name": ident.model_name,
        "host": ident.host,
        "region": ident.region,
        "seq": seq,
        "interval_s": round(iv.interval_s, 6),
        "cpu_energy_j": cpu_j,
        "cpu_host_energy_j": iv.cpu_host_j,
        "cpu_share": iv.cpu_share,
        "cpu_power_w": mean_power(cpu_j, iv.interval_s),
        "cpu_method": iv.cpu_method,
        "cpu_model": iv.cpu_model,
        "cpu_utilization_pct": round(100.0 * iv.cpu_util, 2),
        "ram_energy_j": iv.ram_j,
        "ram_power_w": mean_power(iv.ram_j, iv.interval_s),
        "ram_method": iv.ram_method,
        "ram_model": iv.ram_model,
        "ram_used_mb": round(iv.ram_used_bytes / 2**20, 2),
        "gpu_count": len(iv.gpus),
        "disk_read_bytes": iv.io[0],
        "disk_write_bytes": iv.io[1],
        "net_sent_bytes": iv.io[2],
        "net_recv_bytes": iv.io[3],
    }
    if iv.cpu_fallback_reason:
        ev["cpu_fallback_reason"] = iv.cpu_fallback_reason
    if iv.gpus:
        methods = {g.method for g in iv.gpus}
        ev.update(
            gpu_energy_j=gpu_j,
            gpu_power_w=mean_power(gpu_j, iv.interval_s),
            gpu_method="measured" if methods == {"measured"} else "estimated",
            gpu_model=iv.gpu_model,
            gpu_utilization_pct=sum(g.utilization_pct for g in iv.gpus) / len(iv.gpus),
            gpu_mem_used_mb=sum(g.mem_used_mb for g in iv.gpus),
            gpus=[g.as_event() for g in iv.gpus],
        )
    ev.update(host_facts())
    own: dict[str, str] = {}
    for k, v in (tags or {}).items():
        if k in TAG_INT_KEYS or k in TAG_STR_KEYS:
            ev.setdefault(k, v)  # contract fields (progress, rank, the scheduler's decision)
        else:
            own[k] = str(v)  # the run's own tags: rolled up per tag (project=vision)
    if own:
        ev["tags"] = own
    return ev


@lru_cache(maxsize=1)
def host_facts() -> dict[str, Any]:
    """What the run ran on (run documents show it): CPU name and count, RAM, OS. Read once."""
    import platform

    import psutil

    facts: dict[str, Any] = {
        "cpu_count": psutil.cpu_count() or 1,
        "ram_total_mb": round(psutil.virtual_memory().total / 2**20, 1),
        "os": f"{platform.system()}-{platform.release()}-{platform.machine()}"[:200],
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            name = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        name = ""
    name = name or platform.processor()
    if name:
        facts["cpu_name"] = name[:200]
    return facts
