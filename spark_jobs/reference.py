"""Grid-intensity reference data for the job: the compacted ``grid.intensity`` topic, folded
into non-overlapping segments indexed by 5-minute slot, plus the static fallback table.

Pure functions (``to_segments``, ``slot_rows``) do the resolving; ``IntensityFeed`` is the
Kafka edge.
It consumes the topic incrementally in the driver, so a micro-batch never re-reads the log.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.core.resources import resource
from carbonpipe.core.timeutil import epoch_s

log = logging.getLogger(__name__)

SLOT_S = 300
KIND_RANK = {"actual": 0, "forecast": 1, "fallback": 2}
FALLBACK_TABLE = resource("data/zone_averages.csv")


@dataclass(frozen=True, slots=True)
class RefRecord:
    zone: str
    start_s: int
    end_s: int
    g_per_kwh: float
    provider: str
    kind: str
    order: int  # arrival order: later wins among equals (compaction semantics)


def parse_record(value: bytes | str, order: int) -> RefRecord | None:
    """A grid.intensity record, or None for one the job must not use (bad, or marginal)."""
    try:
        d: dict[str, Any] = json.loads(value)
        if d.get("signal", "average") != "average":
            return None  # marginal (MOER) values are never mixed into attributional CO2
        rec = RefRecord(
            zone=str(d["zone"]).upper(),
            start_s=epoch_s(d["start"]),
            end_s=epoch_s(d["end"]),
            g_per_kwh=float(d["carbon_intensity_g_per_kwh"]),
            provider=str(d.get("provider", "unknown")),
            kind=str(d.get("kind", "actual")),
            order=order,
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("skipping bad grid.intensity record: %s", exc)
        return None
    if rec.end_s <= rec.start_s or rec.g_per_kwh < 0 or rec.kind not in KIND_RANK:
        return None
    return rec


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of time in one zone with a single intensity: segments never overlap."""

    zone: str
    start_s: int
    end_s: int
    g_per_kwh: float
    provider: str
    kind: str


def _better(a: RefRecord, b: RefRecord) -> bool:
    return (KIND_RANK[a.kind], -a.order) < (KIND_RANK[b.kind], -b.order)


def to_segments(records: Iterable[RefRecord]) -> list[Segment]:
    """Resolves overlaps: actual beats forecast beats fallback, then the newest record wins.

    Boundaries are kept exactly (to the second), so an intensity change in the middle of a
    window splits that window's events correctly.
    """
    by_zone: dict[str, list[RefRecord]] = {}
    for rec in records:
        by_zone.setdefault(rec.zone, []).append(rec)
    out: list[Segment] = []
    for zone, recs in by_zone.items():
        points = sorted({p for r in recs for p in (r.start_s, r.end_s)})
        starts = sorted(recs, key=lambda r: r.start_s)
        active: list[RefRecord] = []
        nxt = 0
        for lo, hi in itertools.pairwise(points):
            while nxt < len(starts) and starts[nxt].start_s <= lo:
                active.append(starts[nxt])
                nxt += 1
            active = [r for r in active if r.end_s > lo]
            if not active:
                continue
            best = active[0]
            for r in active[1:]:
                if _better(r, best):
                    best = r
            last = out[-1] if out else None
            if (
                last is not None
                and last.zone == zone
                and last.end_s == lo
                and (last.g_per_kwh, last.provider, last.kind)
                == (best.g_per_kwh, best.provider, best.kind)
            ):
                out[-1] = Segment(zone, last.start_s, hi, last.g_per_kwh, last.provider, last.kind)
            else:
                out.append(Segment(zone, lo, hi, best.g_per_kwh, best.provider, best.kind))
    return out


def slot_rows(segments: Iterable[Segment]) -> list[tuple[str, int, int, int, float, str, str]]:
    """(zone, slot_s, start_s, end_s, g/kWh, provider, kind) for every slot a segment touches.

    The job joins on (zone, slot) — a hash lookup — then keeps the one segment whose
    [start, end) holds the event's timestamp.
    """
    rows = []
    for seg in segments:
        first = seg.start_s - seg.start_s % SLOT_S
        for slot in range(first, seg.end_s, SLOT_S):
            rows.append(
                (seg.zone, slot, seg.start_s, seg.end_s, seg.g_per_kwh, seg.provider, seg.kind)
            )
    return rows


def load_fallback_table(path: Path = FALLBACK_TABLE) -> dict[str, tuple[float, str]]:
    """zone -> (annual average g/kWh, cited source), from the static provider's own table.

    The job needs WORLD as its last resort: a table without it is a configuration error.
    """
    from carbonpipe.core.config import ConfigError
    from carbonpipe.intensity.static import load_zone_averages

    table = {z: (a.carbon_intensity_g_per_kwh, f"{a.source} ({a.year})")
             for z, a in load_zone_averages(path).items()}  # fmt: skip
    if "WORLD" not in table:
        raise ConfigError(
            f"CARBONPIPE_ZONE_AVERAGES_PATH: {path} has no WORLD row; the streaming job needs "
            "it as the last-resort intensity (see data/zone_averages.csv for the format)"
        )
    return table


class IntensityFeed:
    """Follows the compacted grid.intensity topic from the beginning, incrementally."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._records: dict[tuple[str, int], RefRecord] = {}
        self._order = 0
        self._consumer: Any = None
        self.version = 0  # bumps whenever the folded table changes
        self._last_refresh = 0.0

    def _connect(self) -> Any:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers.split(","),
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=1000,
        )
        parts = consumer.partitions_for_topic(self._settings.intensity_topic) or set()
        tps = [TopicPartition(self._settings.intensity_topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return consumer

    def refresh(self, min_interval_s: float = 5.0) -> bool:
        """Reads what arrived since the last call. True when the table changed.

        Reference data changes every few minutes, so the log is polled at most every
        ``min_interval_s`` (a poll that finds nothing costs a fetch wait per micro-batch).
        """
        now = time.monotonic()
        if self._consumer is not None and now - self._last_refresh < min_interval_s:
            return False
        self._last_refresh = now
        try:
            if self._consumer is None:
                self._consumer = self._connect()
            changed = False
            while True:
                batch = self._consumer.poll(timeout_ms=200, max_records=50_000)
                if not batch:
                    break
                for msgs in batch.values():
                    for msg in msgs:
                        self._order += 1
                        rec = parse_record(msg.value, self._order)
                        if rec is not None:
                            self._records[(rec.zone, rec.start_s)] = rec
                            changed = True
        except Exception as exc:  # reference data is best effort: fall back, never stop
            log.warning("grid.intensity not readable (%s); using what we have", exc)
            self._consumer = None
            return False
        if changed:
            self.version += 1
        return changed

    def records(self) -> list[RefRecord]:
        return list(self._records.values())

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
