"""``carbonpipe intensity`` (ask the chain, show provenance), ``carbonpipe zones`` (what is
covered, by whom) and ``carbonpipe feed`` (Kafka)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from carbonpipe.core.config import PROVIDER_NAMES, get_settings
from carbonpipe.core.errors import ConfigError
from carbonpipe.core.timeutil import duration_arg_s, utc_iso
from carbonpipe.intensity.model import IntensityPoint

JSON_FIELDS = (
    "zone",
    "start",
    "end",
    "carbon_intensity_g_per_kwh",
    "provider",
    "kind",
    "signal",
    "source",
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def point_json(p: IntensityPoint) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(p, k) for k in JSON_FIELDS}
    d["start"], d["end"] = utc_iso(p.start), utc_iso(p.end)
    for flag in ("perfect_foresight", "replayed"):
        if getattr(p, flag):
            d[flag] = True
    return d


def point_line(p: IntensityPoint) -> str:
    flags = "".join(f", {f}" for f in ("perfect_foresight", "replayed") if getattr(p, f))
    return (
        f"{p.zone} {utc_iso(p.start)} .. {utc_iso(p.end)}  "
        f"{p.carbon_intensity_g_per_kwh:.1f} gCO2eq/kWh  "
        f"[{p.provider}, {p.kind}, {p.signal}{flags}]  {p.source}"
    )


def _providers(arg: str | None) -> list[str] | None:
    if not arg:
        return None
    names = [n.strip() for n in arg.split(",") if n.strip()]
    bad = [n for n in names if n not in PROVIDER_NAMES]
    if bad:
        raise ConfigError(f"--provider: unknown provider(s) {bad}; choose from "
                          f"{', '.join(PROVIDER_NAMES)}")
    return names


def cmd_intensity(args: argparse.Namespace) -> int:
    from carbonpipe.intensity.chain import build_chain
    from carbonpipe.intensity.zones import resolve_zone

    settings = get_settings()
    zone = resolve_zone(settings, args.zone)
    chain = build_chain(settings, _providers(args.provider))
    current = chain.current(zone)
    forecast = chain.forecast(zone, args.forecast) if args.forecast else None
    if args.json:
        out: dict[str, Any] = point_json(current)
        if forecast is not None:
            out = {"current": out, "forecast": [point_json(p) for p in forecast]}
        print(json.dumps(out, indent=2))
    else:
        print(point_line(current))
        for p in forecast or []:
            print("  " + point_line(p))
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    from carbonpipe.intensity import feeder
    from carbonpipe.intensity.chain import build_chain
    from carbonpipe.intensity.offline import TraceProvider
    from carbonpipe.intensity.static import StaticProvider
    from carbonpipe.intensity.zones import check_zone, resolve_zone

    settings = get_settings()
    if args.zones:
        zones = [
            check_zone(z, settings.allow_fallback_zone) for z in args.zones.split(",") if z.strip()
        ]
    elif args.trace_replay:
        zones = ["US-CAL-CISO"]  # the bundled trace: works from a clone alone
    else:
        zones = [resolve_zone(settings)]
    if args.trace_replay:
        traces = TraceProvider(trace_paths=settings.trace_paths)
        static = StaticProvider(settings.zone_averages_path)

        def build(now: Any) -> list[feeder.Record]:
            return feeder.replay_records(zones, traces, static, now)
    else:
        chain = build_chain(settings, _providers(args.provider))

        def build(now: Any) -> list[feeder.Record]:
            return feeder.live_records(zones, chain, now)

    if args.dry_run:
        publish: feeder.Publisher = lambda recs: print(  # noqa: E731
            "\n".join(json.dumps({"key": k, "value": v}) for k, v in recs)
        )
        close = None
    else:
        from carbonpipe.core.kafka_security import python_kwargs

        publish, close = feeder.kafka_publisher(
            settings.kafka_bootstrap_servers, settings.intensity_topic, python_kwargs(settings)
        )
    try:
        n = feeder.run(build, publish, settings.feeder_interval_s, once=args.once)
        print(
            f"carbonpipe feed: published {n} records for {','.join(zones)} "
            f"to {'stdout' if args.dry_run else settings.intensity_topic}",
            file=sys.stderr,
        )
    finally:
        if close is not None:
            close()
    return 0


def cmd_zones(args: argparse.Namespace) -> int:
    """List the zones carbonpipe can name, their static average and which providers answer."""
    from dataclasses import asdict

    from carbonpipe.intensity import uk, watttime
    from carbonpipe.intensity.trace import TraceError, trace_files, zone_from_path
    from carbonpipe.intensity.zones import zone_catalogue

    settings = get_settings()
    traces: set[str] = set()
    for f in trace_files(settings.trace_paths):
        try:
            traces.add(zone_from_path(f))
        except TraceError:
            continue
    rows = zone_catalogue(
        settings.zone_averages_path,
        traces,
        {"uk": set(uk.ZONES), "electricitymaps": None, "watttime": set(watttime.ZONE_TO_REGION)},
    )
    if args.search:
        needle = args.search.lower()
        rows = [r for r in rows if needle in r.zone.lower() or needle in r.name.lower()]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print(f"no zone matches {args.search!r}", file=sys.stderr)
        return 1
    print(f"{'zone':<14}{'name':<34}{'gCO2eq/kWh':>11}  {'year':<5}{'method':<12}providers")
    for r in rows:
        value = f"{r.carbon_intensity_g_per_kwh:.0f}" if r.carbon_intensity_g_per_kwh else "-"
        print(f"{r.zone:<14}{r.name[:33]:<34}{value:>11}  {r.year or '-'!s:<5}"
              f"{r.method or '-':<12}{','.join(r.providers)}")  # fmt: skip
    print(
        f"{len(rows)} zones. Static values are annual averages (--json shows each source; "
        f"{settings.zone_averages_path.name} cites them); live providers need the network and, "
        "for electricitymaps and watttime, credentials.",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("intensity", help="current grid carbon intensity and its provenance")
    p.add_argument("zone", nargs="?", help="grid zone (default: CARBONPIPE_ZONE / CLOUD_REGION)")
    p.add_argument(
        "--provider",
        help=f"provider(s) to ask, comma-separated: "
        f"{', '.join(PROVIDER_NAMES)} (default: CARBONPIPE_PROVIDERS)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--forecast",
        type=lambda text: timedelta(seconds=duration_arg_s(text)),
        metavar="DURATION",
        help="also show the forecast over this horizon, e.g. 24h",
    )
    p.set_defaults(func=cmd_intensity)

    f = sub.add_parser("feed", help="publish grid intensity to Kafka (topic grid.intensity)")
    f.add_argument("--once", action="store_true", help="publish one round and exit")
    f.add_argument(
        "--trace-replay",
        action="store_true",
        help="replay traces shifted to now (now-48h..now+24h) plus static fallbacks",
    )
    f.add_argument("--zones", help="comma-separated zones, e.g. GB,DE,US-CAL-CISO")
    f.add_argument("--provider", help="provider chain override for normal mode")
    f.add_argument("--dry-run", action="store_true", help="print records instead of publishing")
    f.set_defaults(func=cmd_feed)

    z = sub.add_parser("zones", help="list grid zones, their annual average and providers")
    z.add_argument("--search", metavar="TEXT", help="only zones whose id or name contains TEXT")
    z.add_argument("--json", action="store_true", help="machine-readable output")
    z.set_defaults(func=cmd_zones)
