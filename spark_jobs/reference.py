"""Grid-intensity reference data for the job: the compacted ``grid.intensity`` topic, folded
into one value per zone and 5-minute slot, plus the static fallback table.

Pure functions (``fold``, ``to_slots``) do the resolving; ``IntensityFeed`` is the Kafka edge.
It consumes the topic incrementally in the driver, so a micro-batch never re-reads the log.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from carbonpipe.config import REPO_ROOT, Settings

log = logging.getLogger(__name__)

SLOT_S = 300
KIND_RANK = {"actual": 0, "forecast": 1, "fallback": 2}
FALLBACK_TABLE = REPO_ROOT / "data" / "zone_averages.csv"
# Used only when data/zone_averages.csv is missing or lacks WORLD. Ember, "Global Electricity
# Review 2024": world average intensity of electricity generation in 2023, 480 gCO2/kWh.
WORLD_DEFAULT_G_PER_KWH = 480.0


@dataclass(frozen=True, slots=True)
class RefRecord:
    zone: str
    start_s: int
    end_s: int
    g_per_kwh: float
    provider: str
    kind: str
    order: int  # arrival order: later wins among equals (compaction semantics)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def parse_record(value: bytes | str, order: int) -> RefRecord | None:
    """A grid.intensity record, or None for one the job must not use (bad, or marginal)."""
    try:
        d: dict[str, Any] = json.loads(value)
        if d.get("signal", "average") != "average":
            return None  # marginal (MOER) values are never mixed into attributional CO2
        rec = RefRecord(
            zone=str(d["zone"]).upper(),
            start_s=_epoch(d["start"]),
            end_s=_epoch(d["end"]),
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


def to_slots(records: Iterable[RefRecord]) -> dict[tuple[str, int], RefRecord]:
    """One record per (zone, slot start): actual beats forecast beats fallback; then newest.

    A record covers every slot whose start lies in [start, end); slots are ``SLOT_S`` long,
    so 15-, 30- and 60-minute data and 5-minute data all map exactly.
    """
    best: dict[tuple[str, int], RefRecord] = {}
    for rec in records:
        first = rec.start_s - rec.start_s % SLOT_S
        if first < rec.start_s:
            first += SLOT_S
        for slot in range(first, rec.end_s, SLOT_S):
            key = (rec.zone, slot)
            cur = best.get(key)
            if cur is None or (KIND_RANK[rec.kind], -rec.order) < (
                KIND_RANK[cur.kind],
                -cur.order,
            ):
                best[key] = rec
    return best


def load_fallback_table(path: Path = FALLBACK_TABLE) -> dict[str, tuple[float, str]]:
    """zone -> (annual average g/kWh, cited source). Always has WORLD."""
    table: dict[str, tuple[float, str]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            rows = csv.DictReader(line for line in fh if not line.startswith("#"))
            for row in rows:
                src = f"{row.get('source', '')} ({row.get('year', '')})".strip()
                table[row["zone"].strip().upper()] = (float(row["carbon_intensity_g_per_kwh"]), src)
    table.setdefault("WORLD", (WORLD_DEFAULT_G_PER_KWH, "Ember Global Electricity Review 2024"))
    return table


class IntensityFeed:
    """Follows the compacted grid.intensity topic from the beginning, incrementally."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._records: dict[tuple[str, int], RefRecord] = {}
        self._order = 0
        self._consumer: Any = None
        self.version = 0  # bumps whenever the folded table changes

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

    def refresh(self) -> bool:
        """Reads what arrived since the last call. True when the table changed."""
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
