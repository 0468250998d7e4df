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
from carbonpipe.core.kafka_security import python_kwargs
from carbonpipe.core.resources import resource
from carbonpipe.core.timeutil import epoch_s

log = logging.getLogger(__name__)

SLOT_S = 300
KIND_RANK = {"actual": 0, "forecast": 1, "fallback": 2}
FALLBACK_TABLE = resource("data/zone_averages.csv")
# The provider labels of an event charged a static average (``transforms.with_intensity``):
# its zone's row of the fallback table, or the WORLD row for a zone the table lacks.
STATIC_PROVIDER = "static"
WORLD_PROVIDER = "static:WORLD"


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
    """Follows the compacted grid.intensity topic from the beginning, incrementally.

    - **No startup race** (reliability review M6): a read goes on until the consumer's
      position reaches the end offsets taken when it began, not until the first empty poll
      (which can come before the offset reset and the first fetch complete). The first read
      of a process may take up to ``FIRST_READ_S``; the first micro-batch waits for it.
    - **A missing topic is waited for**, never assigned as nothing for the query's lifetime:
      the first read waits up to ``FIRST_READ_S`` for it to appear, and every later refresh
      looks again until it does (the job does not create it: the topic's configuration is
      declared by ``carbonpipe.services.topics``, which the job may not import).
    - **Bounded state** (M10): records ending at or before ``horizon_s`` (the job's event-time
      watermark: no valid event can be older) are dropped, and segments are recomputed only
      for the zones that changed. The dashboard's history is published to MongoDB as records
      arrive (``take_unpublished``), so the feed does not keep it either.
    """

    FIRST_READ_S = 20.0
    REFRESH_READ_S = 5.0  # a later read stops here even if the log keeps growing
    DASHBOARD_PAST_S = 7 * 86_400  # the dashboard's grid chart: a week back,
    DASHBOARD_AHEAD_S = 3 * 86_400  # and the forecasts three days ahead

    def __init__(self, settings: Settings, connect: Any = None) -> None:
        self._settings = settings
        self._by_zone: dict[str, dict[int, RefRecord]] = {}
        self._segments: dict[str, list[Segment]] = {}
        self._dirty: set[str] = set()
        self._unpublished: dict[tuple[str, int], RefRecord] = {}
        self._order = 0
        self._consumer: Any = None
        self._tps: list[Any] = []
        self._connect_fn = connect or self._connect
        self._first_read_done = False
        self.horizon_s: float | None = None
        self.version = 0  # bumps whenever the folded table changes
        self._last_refresh = 0.0

    def _connect(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers.split(","),
            **python_kwargs(self._settings),
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=1000,
            allow_auto_create_topics=False,  # a compacted topic made as a plain one is worse
        )

    def _assign(self) -> bool:
        """Assigns the topic's partitions from the beginning; False while it does not exist."""
        from kafka import TopicPartition

        topic = self._settings.intensity_topic
        parts = self._consumer.partitions_for_topic(topic) or set()
        if not parts:
            return False
        self._tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self._consumer.assign(self._tps)
        self._consumer.seek_to_beginning(*self._tps)
        return True

    def refresh(self, min_interval_s: float = 5.0, horizon_s: float | None = None) -> bool:
        """Reads what arrived since the last call. True when the table changed.

        Reference data changes every few minutes, so the log is polled at most every
        ``min_interval_s`` (a poll that finds nothing costs a fetch wait per micro-batch).
        ``horizon_s``: nothing older can be charged any more (see the class docstring).
        """
        self._trim(horizon_s)
        now = time.monotonic()
        if self._first_read_done and now - self._last_refresh < min_interval_s:
            return False
        self._last_refresh = now
        deadline = now + (self.REFRESH_READ_S if self._first_read_done else self.FIRST_READ_S)
        changed = False
        try:
            if self._consumer is None:
                self._consumer = self._connect_fn()
            while not self._tps and not self._assign():
                if self._first_read_done:
                    break  # looked again; the first read said so already
                if time.monotonic() >= deadline:
                    log.warning(
                        "topic %s does not exist (yet): charging fallbacks until it "
                        "does (corrected then)",
                        self._settings.intensity_topic,
                    )
                    break
                time.sleep(0.5)
            if self._tps:
                changed = self._read_until_end(deadline)
        except Exception as exc:  # reference data is best effort: fall back, never stop
            log.warning("grid.intensity not readable (%s); using what we have", exc)
            self.close()
        self._first_read_done = True
        if changed:
            self.version += 1
        return changed

    def _read_until_end(self, deadline: float) -> bool:
        """Polls until every partition's position reaches its end offset as of now."""
        end = self._consumer.end_offsets(self._tps)
        changed = False
        while any(self._consumer.position(tp) < end[tp] for tp in self._tps):
            if time.monotonic() >= deadline:
                log.warning("grid.intensity: stopped reading before its end (more next batch)")
                break
            batch = self._consumer.poll(timeout_ms=200, max_records=50_000)
            for msgs in batch.values():
                for msg in msgs:
                    self._order += 1
                    rec = parse_record(msg.value, self._order)
                    if rec is not None:
                        changed = self._add(rec) or changed
        return changed

    def _add(self, rec: RefRecord) -> bool:
        wall = time.time()
        if wall - self.DASHBOARD_PAST_S <= rec.start_s <= wall + self.DASHBOARD_AHEAD_S:
            self._unpublished[(rec.zone, rec.start_s)] = rec
        if self.horizon_s is not None and rec.end_s <= self.horizon_s:
            return False  # no event this old is valid any more
        self._by_zone.setdefault(rec.zone, {})[rec.start_s] = rec
        self._dirty.add(rec.zone)
        return True

    def _trim(self, horizon_s: float | None) -> None:
        """Forgets records no valid event can use. The segments in use do not change (a record
        ending before the horizon only shaped segments before it), so the version stays."""
        if horizon_s is None or (
            self.horizon_s is not None and horizon_s < self.horizon_s + SLOT_S
        ):
            return
        self.horizon_s = horizon_s
        for zone, recs in self._by_zone.items():
            old = [s for s, r in recs.items() if r.end_s <= horizon_s]
            for s in old:
                del recs[s]
            if old:
                self._dirty.add(zone)

    def segments(self) -> list[Segment]:
        """The folded table: segments of every zone ending after the horizon."""
        for zone in self._dirty:
            recs = self._by_zone.get(zone, {})
            self._segments[zone] = to_segments(recs.values())
        self._dirty.clear()
        h = self.horizon_s
        return [s for segs in self._segments.values() for s in segs if h is None or s.end_s > h]

    def take_unpublished(self) -> list[RefRecord]:
        """Records read since the last call that the dashboard shows (a week back, 3 d ahead)."""
        out, self._unpublished = list(self._unpublished.values()), {}
        return out

    def records(self) -> list[RefRecord]:
        return [r for recs in self._by_zone.values() for r in recs.values()]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self._consumer = None
        self._tps = []
