"""The feeder: publish grid-intensity records (schemas/grid_intensity.v1.json) to Kafka.

The record-building functions are pure (no Kafka, injectable ``now``) so they are unit-tested;
the KafkaProducer lives at the edge in :func:`kafka_publisher`.

* trace replay (demo, works from a clone alone with the bundled California trace): the trace's
  hour-of-year shifted to now, covering ``now - 48h .. now + 24h`` at the trace's resolution;
  past cells are ``actual`` and ``replayed``, future cells ``forecast`` with
  ``perfect_foresight``; plus each zone's static annual average as ``kind="fallback"``.
* normal: the chain's current value and forecast per zone, every ``feeder_interval_s``.

Fallback records span the current calendar year and are published *before* the others, so on
the (new-year) chance of a key collision the compacted topic keeps the real value.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from carbonpipe.core.contracts import intensity_key
from carbonpipe.core.timeutil import floor_time
from carbonpipe.intensity.base import IntensityProvider
from carbonpipe.intensity.errors import IntensityError
from carbonpipe.intensity.model import IntensityPoint
from carbonpipe.intensity.offline import TraceProvider
from carbonpipe.intensity.static import StaticProvider
from carbonpipe.intensity.trace import TraceSeries

log = logging.getLogger(__name__)
REPLAY_BEFORE = timedelta(hours=48)
REPLAY_AFTER = timedelta(hours=24)
FORECAST_HORIZON = timedelta(hours=24)

Record = tuple[str, dict[str, Any]]  # (Kafka key, JSON value)


class Publisher(Protocol):
    def __call__(self, records: Sequence[Record]) -> None: ...


def to_records(points: Iterable[IntensityPoint]) -> list[Record]:
    """Kafka (key, value) pairs; key = ``intensity_key(zone, start)`` (compaction key)."""
    return [(intensity_key(p.zone, p.start), p.to_event()) for p in points]


def replay_points(
    series: TraceSeries,
    now: datetime,
    before: timedelta = REPLAY_BEFORE,
    after: timedelta = REPLAY_AFTER,
) -> list[IntensityPoint]:
    """Trace cells shifted to ``now`` by hour-of-year: past = actual, future = forecast."""
    provider = TraceProvider({series.zone: series}, clock=lambda: now)
    nxt = floor_time(now, series.step) + series.step  # the cell containing now is "actual"
    past = provider.points(series.zone, now - before, nxt, "actual")
    future = provider.points(series.zone, nxt, now + after, "forecast", perfect_foresight=True)
    return past + future


def fallback_point(static: StaticProvider, zone: str, now: datetime) -> IntensityPoint:
    """The zone's annual average as one ``fallback`` record spanning now's calendar year."""
    start = datetime(now.year, 1, 1, tzinfo=timezone.utc)
    return static.history(zone, start, datetime(now.year + 1, 1, 1, tzinfo=timezone.utc))[0]


def replay_records(
    zones: Sequence[str], traces: TraceProvider, static: StaticProvider, now: datetime
) -> list[Record]:
    """Everything trace-replay mode publishes for ``zones`` at ``now`` (fallbacks first)."""
    fallbacks, values = [], []
    for zone in zones:
        try:
            fallbacks.append(fallback_point(static, zone, now))
        except IntensityError as exc:
            log.warning("feeder: no static fallback for %s: %s", zone, exc)
        try:
            values += replay_points(traces.series(zone), now)
        except IntensityError as exc:
            log.warning("feeder: no trace for %s (only the fallback is published): %s", zone, exc)
    return to_records(fallbacks) + to_records(values)


def live_records(
    zones: Sequence[str],
    chain: IntensityProvider,
    now: datetime,
    horizon: timedelta = FORECAST_HORIZON,
) -> list[Record]:
    """Normal mode: each zone's current value then its forecast; a failing zone is skipped."""
    points: list[IntensityPoint] = []
    for zone in zones:
        try:
            cur = chain.current(zone)
        except IntensityError as exc:
            log.warning("feeder: no current value for %s: %s", zone, exc)
            continue
        points.append(cur)
        try:
            points += [p for p in chain.forecast(zone, horizon) if p.start != cur.start]
        except IntensityError as exc:
            log.warning("feeder: no forecast for %s: %s", zone, exc)
    return to_records(points)


def kafka_publisher(bootstrap_servers: str, topic: str,
                    security: Mapping[str, Any] | None = None,
                    ) -> tuple[Publisher, Callable[[], None]]:
    """A publish function over kafka-python (acks=all, JSON values) and its close function.

    ``security``: kafka-python kwargs from ``carbonpipe.core.kafka_security.python_kwargs``.
    """
    from kafka import KafkaProducer  # only the feed command needs Kafka

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20,
                             **(security or {}))

    def publish(records: Sequence[Record]) -> None:
        for key, value in records:
            body = json.dumps(value, separators=(",", ":")).encode("utf-8")
            producer.send(topic, key=key.encode("utf-8"), value=body)
        producer.flush()

    return publish, producer.close


def run(
    build: Callable[[datetime], list[Record]],
    publish: Publisher,
    interval_s: float,
    once: bool,
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Build and publish every ``interval_s`` (once with ``once``); returns records published."""
    total = 0
    while True:
        try:
            records = build(clock())
            publish(records)
        except Exception as exc:  # a long-running feeder outlives a broker or provider hiccup
            if once:
                raise
            log.warning("feeder: round failed, retrying in %gs: %s", interval_s, exc)
        else:
            total += len(records)
            log.info("feeder: published %d records", len(records))
            if once:
                return total
        sleep(interval_s)
