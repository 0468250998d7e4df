"""The Prometheus endpoint, scraped over HTTP during a real ``track()`` run."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from carbonpipe.core.config import REPO_ROOT
from carbonpipe.core.errors import ConfigError, UserError
from collector.exporters.prometheus import (
    EMISSIONS,
    ENERGY,
    INTENSITY,
    METRICS,
    POWER,
    PrometheusExporter,
    parse_listen,
)
from collector.track import track
from tests.collector.exporters.helpers import RunFn, event_joules, expected_grams, gb_intensity

parser = pytest.importorskip("prometheus_client.parser")

DASHBOARD = REPO_ROOT / "examples" / "grafana" / "carbonpipe.json"


def scrape(exporter: PrometheusExporter) -> dict[str, list[tuple[dict[str, str], float]]]:
    """GET /metrics and parse it: sample name -> [(labels, value)]."""
    host, port = exporter.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in parser.text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


Samples = dict[str, list[tuple[dict[str, str], float]]]


def total(samples: Samples, name: str, **match: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``match``."""
    rows = samples.get(name, [])
    return sum(v for labels, v in rows if all(labels.get(k) == w for k, w in match.items()))


def exporter_of(t: track) -> PrometheusExporter:
    return next(o for o in t.observers if isinstance(o, PrometheusExporter))


class ScrapeAtEnd:
    """Observer after the exporter: scrapes the live endpoint when the ``end`` event passes."""

    def __init__(self) -> None:
        self.t: track | None = None
        self.final: dict[str, Any] = {}

    def on_event(self, event: Mapping[str, Any]) -> None:
        if event["event_type"] == "end" and self.t is not None:
            self.final = scrape(exporter_of(self.t))

    def close(self) -> None:
        pass


def test_counters_rise_between_scrapes_and_end_equal_to_the_events(run_track: RunFn) -> None:
    end = ScrapeAtEnd()
    scrapes: list[dict[str, Any]] = []

    def each(t: track) -> None:
        end.t = t
        scrapes.append(scrape(exporter_of(t)))

    events = run_track(each=each, prometheus_port="127.0.0.1:0", exporters=[end])

    # scraped 9 times while the counters advanced: never down, and up from first to last
    for name in (ENERGY, EMISSIONS):
        seen = [total(s, name) for s in scrapes]
        assert seen == sorted(seen) and seen[-1] > seen[0], (name, seen)

    final, joules = end.final, event_joules(events)
    run = {"run_id": "exp-1", "user_id": "ana", "model_name": "resnet", "zone": "GB"}
    for dev in ("cpu", "ram"):  # RAPL package and DRAM: measured
        assert total(final, ENERGY, device=dev, method="measured", **run) == pytest.approx(
            joules[dev], rel=1e-9
        )
    assert "gpu" not in joules and total(final, ENERGY, device="gpu") == 0
    assert total(final, EMISSIONS, provider="static", kind="fallback", **run) == pytest.approx(
        expected_grams(events), rel=1e-9
    )
    assert total(final, INTENSITY, zone="GB", provider="static") == gb_intensity()
    last = events[-1]
    assert total(final, POWER, device="ram", **run) == pytest.approx(last["ram_power_w"])


def test_loopback_by_default_and_address_parsing() -> None:
    assert parse_listen(9464) == ("127.0.0.1", 9464)
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("", "abc", "1:2:3", "70000", "host:"):
        with pytest.raises(ConfigError, match="PORT or ADDR:PORT"):
            parse_listen(bad)
    exp = PrometheusExporter.serve(0)
    try:
        assert exp.address[0] == "127.0.0.1"
    finally:
        exp.close()


def _event(**kw: Any) -> dict[str, Any]:
    base = {
        "event_type": "sample", "run_id": "r", "user_id": "u", "model_name": "m", "host": "h",
        "region": "GB", "seq": 0, "interval_s": 1.0, "cpu_energy_j": 36.0, "cpu_power_w": 36.0,
        "cpu_method": "measured", "ram_energy_j": 3.6, "ram_power_w": 3.6,
        "ram_method": "estimated", "gpu_energy_j": 360.0, "gpu_power_w": 360.0,
        "gpu_method": "measured",
    }  # fmt: skip
    return {**base, **kw}


def test_two_exporters_in_one_process_keep_their_own_registries() -> None:
    a, b = PrometheusExporter.serve(0), PrometheusExporter.serve(0)
    try:
        a.on_event(_event(run_id="a"))
        b.on_event(_event(run_id="b"))
        b.on_event(_event(run_id="b", seq=1))
        sa, sb = scrape(a), scrape(b)
        assert total(sa, ENERGY, run_id="a", device="gpu") == 360.0
        assert total(sa, ENERGY, run_id="b") == 0
        assert total(sb, ENERGY, run_id="b", device="gpu") == 720.0
    finally:
        a.close()
        b.close()


def test_the_event_intensity_wins_and_a_changed_source_replaces_the_gauge_series() -> None:
    exp = PrometheusExporter()  # no server: the registry is what a scrape would return
    exp.on_event(_event())
    exp.on_event(_event(seq=1, grid_carbon_intensity_g_per_kwh=100.0,
                        grid_intensity_provider="uk", grid_intensity_kind="actual"))  # fmt: skip
    text = exp.exposition()
    kwh = (36.0 + 3.6 + 360.0) / 3.6e6
    assert f'{INTENSITY}{{host="h",kind="actual",provider="uk",zone="GB"}} 100.0' in text
    gauge = [ln for ln in text.splitlines() if ln.startswith(INTENSITY)]
    assert len(gauge) == 1 and 'provider="uk"' in gauge[0]  # the static series was removed
    grams = {
        m.group(1): float(m.group(2))
        for m in re.finditer(rf'{EMISSIONS}{{[^}}]*provider="(\w+)"[^}}]*}} (\S+)', text)
    }
    assert grams["uk"] == pytest.approx(kwh * 100.0)
    assert grams["static"] == pytest.approx(kwh * gb_intensity())
    assert f'{ENERGY}{{device="ram",host="h",method="estimated"' in text


def test_a_zone_without_an_average_counts_energy_but_no_grams(capsys: Any) -> None:
    exp = PrometheusExporter()
    exp.on_event(_event(region="XX"))
    text = exp.exposition()
    assert f'{ENERGY}{{device="gpu"' in text
    assert not [ln for ln in text.splitlines() if ln.startswith(EMISSIONS)]
    assert "no gCO2e for zone 'XX'" in capsys.readouterr().err


def test_a_busy_port_is_a_user_error() -> None:
    first = PrometheusExporter.serve(0)
    try:
        with pytest.raises(UserError, match=r"cannot listen on 127\.0\.0\.1"):
            PrometheusExporter.serve(first.address[1])
    finally:
        first.close()


def queried_metrics(dashboard: Path) -> set[str]:
    def exprs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "expr" and isinstance(v, str)] + [
                e for v in node.values() for e in exprs(v)
            ]
        if isinstance(node, list):
            return [e for v in node for e in exprs(v)]
        return []

    return {m for e in exprs(json.loads(dashboard.read_text())) for m in re.findall(
        r"\bcarbonpipe_[a-z_]+", e)}  # fmt: skip


def test_the_grafana_dashboard_queries_what_the_exporter_serves() -> None:
    exp = PrometheusExporter()
    exp.on_event(_event())
    served = {
        s.name for f in parser.text_string_to_metric_families(exp.exposition()) for s in f.samples
    }
    queried = queried_metrics(DASHBOARD)
    assert queried, "the dashboard queries nothing"
    assert queried <= served, f"not served: {sorted(queried - served)}"
    assert set(METRICS) <= queried, f"not on the dashboard: {sorted(set(METRICS) - queried)}"


def test_collect_fails_on_a_busy_port_before_running_the_command(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    busy = PrometheusExporter.serve(0)
    marker = tmp_path / "ran"
    try:
        out = subprocess.run(
            [sys.executable, "-m", "collector", "collect", "--run-id", "r", "--user", "u",
             "--model", "m", "--zone", "GB", "--no-kafka",
             "--prometheus-port", f"127.0.0.1:{busy.address[1]}",
             "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "CARBONPIPE_HOME": str(tmp_path)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        busy.close()
    assert out.returncode == 2, out.stderr
    assert "cannot listen on 127.0.0.1" in out.stderr and "Traceback" not in out.stderr
    assert not marker.exists()
