"""Expected figures, computed from a run's events exactly as published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from carbonpipe.core.units import J_PER_KWH
from carbonpipe.intensity.static import load_zone_averages

RunFn = Callable[..., list[dict[str, Any]]]


def event_joules(events: list[dict[str, Any]]) -> dict[str, float]:
    return {
        dev: sum(e.get(f"{dev}_energy_j", 0.0) for e in events)
        for dev in ("cpu", "gpu", "ram")
        if any(f"{dev}_energy_j" in e for e in events)
    }


def gb_intensity() -> float:
    """GB's annual average in the project's table (data/zone_averages.csv cites its source)."""
    return load_zone_averages()["GB"].carbon_intensity_g_per_kwh


def expected_grams(events: list[dict[str, Any]]) -> float:
    return sum(event_joules(events).values()) / J_PER_KWH * gb_intensity()


def wandb_records(run_dir: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, {key: value})`` of an offline run's ``run-*.wandb`` history/summary records.

    The file is W&B's transaction log: a 7-byte header (":W&B", magic 0xBEE1, version) then
    LevelDB-log records (32 KiB blocks; 7-byte record header crc32, length, type FULL=1,
    FIRST=2, MIDDLE=3, LAST=4) holding ``wandb_internal_pb2.Record`` protobufs. wandb 0.31
    ships no reader for it, so this reads what the offline run really wrote.
    """
    import json
    import struct
    from pathlib import Path

    from wandb.proto import wandb_internal_pb2 as pb

    [path] = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    block, pos, buf, blobs = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0:
            pos += block - pos % block if pos % block else 0
        elif kind == 1:
            blobs.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            blobs.append(buf + chunk)
    out = []
    for blob in blobs:
        rec = pb.Record()
        rec.ParseFromString(blob)
        kind = rec.WhichOneof("record_type")
        items = rec.history.item if kind == "history" else rec.summary.update
        if kind in ("history", "summary"):
            out.append((kind, {i.key or "/".join(i.nested_key): json.loads(i.value_json)
                               for i in items}))  # fmt: skip
    return out
