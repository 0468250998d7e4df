"""What the fault scenarios share: the synthetic event they send, the job's settings for a
scenario and the runs it counted, declared once so every scenario means the same by them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.core.timeutil import utc_iso
from carbonpipe.core.versions import newest

J_PER_EVENT = 360.0  # every synthetic event: 360 J of CPU
KWH_PER_EVENT = J_PER_EVENT / 3.6e6
NOW = datetime.now(timezone.utc).replace(microsecond=0)
T0 = NOW - timedelta(hours=2)  # recent enough for the default lateness, never in the future


def ev(host: str, run: str, seq: int, t_s: float, **kw: Any) -> dict[str, Any]:
    """One collector event of ``host``'s run, ``t_s`` seconds after T0."""
    return {
        "timestamp": utc_iso(T0 + timedelta(seconds=t_s)), "run_id": run, "user_id": "u",
        "model_name": "m", "host": host, "region": "GB", "interval_s": 10, "seq": seq,
        "schema_version": 1, "cpu_energy_j": J_PER_EVENT, "cpu_method": "measured", **kw,
    }  # fmt: skip


def key(e: dict[str, Any]) -> tuple[str, str, int]:
    """An event's identity, as the job and the checker see it."""
    return (str(e["host"]), str(e["run_id"]), int(e["seq"]))


def job_settings(base: Settings, tmp_path: Path, **update: Any) -> Settings:
    """A scenario's own cold store and checkpoint, one-second triggers (small, fast batches)."""
    return base.model_copy(update={
        "cold_store_uri": str(tmp_path / "cold"), "checkpoint_uri": str(tmp_path / "ckpt"),
        "trigger_s": 1.0, **update,
    })  # fmt: skip


def mongo(settings: Settings) -> Any:
    from pymongo import MongoClient

    return MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]


def counted(db: Any) -> dict[str, dict[str, Any]]:
    """The newest document of each run in the hot store, by run id."""
    return {d["run_id"]: d for d in newest(db["runs"].find())}
