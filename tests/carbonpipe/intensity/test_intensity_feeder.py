"""Feeder record building (pure, no Kafka) and the Kafka edge with a fake producer."""

from __future__ import annotations

import itertools
import json
import sys
import types
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from carbonpipe.core.contracts import GRID_INTENSITY_SCHEMA, intensity_key, validation_errors
from carbonpipe.intensity import feeder
from carbonpipe.intensity.errors import NotCovered
from carbonpipe.intensity.model import IntensityPoint
from carbonpipe.intensity.offline import TraceProvider
from carbonpipe.intensity.static import StaticProvider
from carbonpipe.intensity.trace import BUNDLED_TRACES_DIR, load_trace

UTC = timezone.utc
SERIES = load_trace(BUNDLED_TRACES_DIR / "us-cal-ciso-2023.csv")
NOW = datetime(2026, 11, 24, 3, 20, tzinfo=UTC)


def test_replay_points_shift_hour_of_year_to_now() -> None:
    pts = feeder.replay_points(SERIES, NOW)
    assert pts[0].start == datetime(2026, 11, 22, 3, tzinfo=UTC)  # floor(now - 48 h)
    assert pts[-1].start == datetime(2026, 11, 25, 3, tzinfo=UTC)  # last cell before now + 24 h
    assert len(pts) == 73
    steps = {b.start - a.start for a, b in itertools.pairwise(pts)}
    assert steps == {timedelta(hours=1)}
    for p in pts:  # each value is the trace's at the same hour of 2023
        assert p.carbon_intensity_g_per_kwh == SERIES.value_at(p.start.replace(year=2023))
        assert p.replayed and p.provider == "trace" and p.zone == "US-CAL-CISO"
    past = [p for p in pts if p.start <= NOW]
    future = [p for p in pts if p.start > NOW]
    assert past[-1].start == datetime(2026, 11, 24, 3, tzinfo=UTC)
    assert all(p.kind == "actual" and not p.perfect_foresight for p in past)
    assert all(p.kind == "forecast" and p.perfect_foresight for p in future)
    assert (len(past), len(future)) == (49, 24)


def test_replay_records_keys_kinds_and_schema() -> None:
    recs = feeder.replay_records(
        ["US-CAL-CISO", "NL"], TraceProvider({"US-CAL-CISO": SERIES}), StaticProvider(), NOW
    )
    kinds = [v["kind"] for _, v in recs]
    assert kinds[:2] == ["fallback", "fallback"]  # published first: real values win on a clash
    assert {v["zone"] for _, v in recs if v["kind"] == "fallback"} == {"US-CAL-CISO", "NL"}
    assert not any(v["zone"] == "NL" and v["kind"] != "fallback" for _, v in recs)  # no NL trace
    fb = recs[0][1]
    assert (fb["start"], fb["end"]) == ("2026-01-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z")
    for key, value in recs:
        assert validation_errors(value, GRID_INTENSITY_SCHEMA) == []
        assert key == f"{value['zone']}|{value['start']}"
        assert value["schema_version"] == 1
    assert len({k for k, _ in recs}) == len(recs)
    fc = [v for _, v in recs if v["kind"] == "forecast"]
    assert fc and all(v["perfect_foresight"] and v["replayed"] for v in fc)
    assert all("perfect_foresight" not in v for _, v in recs if v["kind"] != "forecast")


class FakeChain:
    name = "chain"

    def current(self, zone: str) -> IntensityPoint:
        if zone == "XX":
            raise NotCovered("fake", "nope")
        return self._pt(zone, 0, "actual")

    def forecast(self, zone: str, horizon: timedelta) -> list[IntensityPoint]:
        return [self._pt(zone, h, "forecast") for h in range(3)]

    def history(self, zone: str, start: datetime, end: datetime) -> list[IntensityPoint]:
        return []

    @staticmethod
    def _pt(zone: str, h: int, kind: Any) -> IntensityPoint:
        start = datetime(2026, 1, 1, h, tzinfo=UTC)
        return IntensityPoint(zone, start, start + timedelta(hours=1), 100.0 + h, "uk", kind)


def test_live_records_current_then_forecast_and_failing_zones_skipped() -> None:
    recs = feeder.live_records(["GB", "XX"], FakeChain(), NOW)
    assert [(v["kind"], v["carbon_intensity_g_per_kwh"]) for _, v in recs] == [
        ("actual", 100.0),
        ("forecast", 101.0),
        ("forecast", 102.0),
    ]
    assert recs[0][0] == intensity_key("GB", datetime(2026, 1, 1, tzinfo=UTC))


def test_run_once_and_loop() -> None:
    published: list[int] = []
    assert (
        feeder.run(
            lambda now: [("k", {"t": str(now)})],
            lambda r: published.append(len(r)),
            1.0,
            once=True,
            clock=lambda: NOW,
        )
        == 1
    )

    class StopLoopError(Exception):
        pass

    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        if len(sleeps) == 2:
            raise StopLoopError

    with pytest.raises(StopLoopError):
        feeder.run(
            lambda now: [],
            lambda r: published.append(len(r)),
            7.0,
            once=False,
            clock=lambda: NOW,
            sleep=sleep,
        )
    assert sleeps == [7.0, 7.0] and published == [1, 0, 0]


def test_kafka_publisher_uses_acks_all_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    seen: dict[str, Any] = {}

    class FakeProducer:
        def __init__(self, **kw: Any) -> None:
            seen.update(kw)

        def send(self, topic: str, key: bytes, value: bytes) -> None:
            sent.append((topic, key, value))

        def flush(self) -> None:
            seen["flushed"] = True

        def close(self) -> None:
            seen["closed"] = True

    monkeypatch.setitem(sys.modules, "kafka", types.SimpleNamespace(KafkaProducer=FakeProducer))
    publish, close = feeder.kafka_publisher("h:9092", "grid.intensity")
    publish([("GB|2026-01-01T00:00:00.000Z", {"zone": "GB"})])
    close()
    assert seen["acks"] == "all" and seen["bootstrap_servers"] == "h:9092"
    assert sent == [("grid.intensity", b"GB|2026-01-01T00:00:00.000Z", b'{"zone":"GB"}')]
    assert seen["flushed"] and seen["closed"] and json.loads(sent[0][2]) == {"zone": "GB"}
