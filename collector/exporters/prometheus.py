"""A Prometheus ``/metrics`` endpoint for the run being measured (``collect --prometheus-port``).

Names follow Prometheus' conventions (base units in the name, ``_total`` on counters) and the
style of Kepler and Scaphandre, which operators already scrape: cumulative energy per device
as a counter in joules, current power as a gauge in watts. Grams are Prometheus' base unit of
mass; intensity stays in the domain's gCO2e/kWh so it reads like every provider's figure.

Each exporter has its own registry (never the process-wide default), so several collectors in
one process, or tests, never clash. It binds 127.0.0.1 unless asked for another address
(``ADDR:PORT``, e.g. ``0.0.0.0:9464``): the endpoint has no authentication, and run, user and
model names are in its labels. The endpoint lives as long as the collector: a scrape interval
longer than a short job may miss its last values (the hot store keeps the totals).

``METRICS`` is the single list of exposed names: ``examples/grafana/carbonpipe.json`` queries
only these (a test checks it against a real scrape).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from carbonpipe.core.errors import ConfigError
from collector.exporters.base import vendor
from collector.exporters.totals import RunTotals

NAMESPACE = "carbonpipe"
ENERGY = f"{NAMESPACE}_energy_joules_total"
EMISSIONS = f"{NAMESPACE}_emissions_grams_total"
POWER = f"{NAMESPACE}_power_watts"
INTENSITY = f"{NAMESPACE}_grid_intensity_grams_per_kwh"
METRICS = (ENERGY, EMISSIONS, POWER, INTENSITY)

RUN_LABELS = ("run_id", "user_id", "model_name", "host", "zone")
DEFAULT_ADDR = "127.0.0.1"


def parse_listen(spec: int | str) -> tuple[str, int]:
    """``9464`` -> ("127.0.0.1", 9464); ``0.0.0.0:9464`` and ``[::]:9464`` name the address."""
    text = str(spec).strip()
    m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]:|([^:\[\]]+):)?(\d{1,5})", text)  # IPv6 in []
    if not m or int(m.group(3)) > 65535:
        raise ConfigError(f"prometheus port {spec!r}: want PORT or ADDR:PORT, e.g. 9464")
    return (m.group(1) or m.group(2) or DEFAULT_ADDR), int(m.group(3))


class PrometheusExporter:
    """Counters and gauges fed from the events; ``serve`` also starts the HTTP endpoint."""

    def __init__(self, totals: RunTotals | None = None) -> None:
        pc = vendor("prometheus_client", "prometheus")
        self.registry = pc.CollectorRegistry(auto_describe=True)
        self.totals = totals or RunTotals()
        self.energy = pc.Counter(
            ENERGY,
            "Energy used by the run since its collector started, per device (J); "
            "method says whether a hardware counter measured it or a model estimated it",
            [*RUN_LABELS, "device", "method"],
            registry=self.registry,
        )
        self.emissions = pc.Counter(
            EMISSIONS,
            "gCO2e of the run's energy at the intensity labelled by provider and kind "
            "(static/fallback = the zone's annual average)",
            [*RUN_LABELS, "provider", "kind"],
            registry=self.registry,
        )
        self.power = pc.Gauge(
            POWER,
            "Mean power of the run over the last sample interval, per device (W)",
            [*RUN_LABELS, "device", "method"],
            registry=self.registry,
        )
        self.intensity = pc.Gauge(
            INTENSITY,
            "Grid carbon intensity used for the run's gCO2e (gCO2e/kWh)",
            ["host", "zone", "provider", "kind"],
            registry=self.registry,
        )
        self._series: dict[str, tuple[str, ...]] = {}  # gauge key -> labels now shown
        self.server: Any = None
        self._thread: Any = None

    @classmethod
    def serve(cls, listen: int | str) -> PrometheusExporter:
        """Start ``/metrics`` on ``PORT`` or ``ADDR:PORT`` (port 0 picks a free one)."""
        pc = vendor("prometheus_client", "prometheus")
        addr, port = parse_listen(listen)
        exporter = cls()
        try:
            exporter.server, exporter._thread = pc.start_http_server(
                port, addr=addr, registry=exporter.registry
            )
        except OSError as exc:
            from carbonpipe.core.errors import UserError

            raise UserError(f"prometheus: cannot listen on {addr}:{port}: {exc}") from None
        return exporter

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def _set(self, key: str, gauge: Any, labels: tuple[str, ...], value: float) -> None:
        """Set a gauge, dropping the series it replaces (method or provider changed mid-run)."""
        old = self._series.get(key)
        if old is not None and old != labels:
            gauge.remove(*old)
        self._series[key] = labels
        gauge.labels(*labels).set(value)

    def on_event(self, event: Mapping[str, Any]) -> None:
        run = (
            str(event.get("run_id", "")),
            str(event.get("user_id", "")),
            str(event.get("model_name", "")),
            str(event.get("host", "unknown")),
            str(event.get("region") or event.get("region_iso") or ""),
        )
        t = self.totals
        before = dict(t.energy_j)
        grams = t.add(event)
        for dev, joules in t.energy_j.items():
            method = t.method[dev]
            self.energy.labels(*run, dev, method).inc(joules - before.get(dev, 0.0))
            if dev in t.power_w:
                self._set(f"power/{dev}", self.power, (*run, dev, method), t.power_w[dev])
        if t.intensity is not None and grams is not None:
            src = (t.intensity.provider, t.intensity.kind)
            self.emissions.labels(*run, *src).inc(grams)
            self._set("intensity", self.intensity, (run[3], run[4], *src), t.intensity.g_per_kwh)

    def exposition(self) -> str:
        """What a scrape returns now (also after ``close``)."""
        pc = vendor("prometheus_client", "prometheus")
        return str(pc.generate_latest(self.registry).decode())

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
