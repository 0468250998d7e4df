"""``carbonpipe budget``, ``alerts``, ``report`` and ``export``: thin commands over the pure
modules of ``carbonpipe.reporting`` and the hot store readers."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from carbonpipe.core.config import Settings, get_settings
from carbonpipe.core.errors import UserError
from carbonpipe.reporting.budgets import METRICS, PERIODS, Budget, parse_scope


def _budget_set(args: argparse.Namespace) -> int:
    from carbonpipe.reporting import store

    if (args.limit_g is None) == (args.limit_kwh is None):
        raise UserError("give exactly one of --limit-g (gCO2e) or --limit-kwh")
    unit, limit = ("g", args.limit_g) if args.limit_g is not None else ("kwh", args.limit_kwh)
    try:
        b = Budget(parse_scope(args.scope), args.period, METRICS[unit], float(limit))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    store.put_budget(get_settings(), b)
    print(f"budget {b.id}: {b.limit:g} {b.unit} per {b.period}")
    return 0


def _budget_list(args: argparse.Namespace) -> int:
    from carbonpipe.query import print_rows
    from carbonpipe.reporting.alerts import statuses

    rows = [{"id": s.budget.id, "scope": str(s.budget.scope), "period": s.budget.period,
             "period_key": s.period.key, "unit": s.budget.unit, "limit": s.budget.limit,
             "used": s.used, "used_pct": 100 * s.fraction,
             "forecast": s.forecast, "origin": s.budget.origin}
            for s in statuses(get_settings())]  # fmt: skip
    print_rows(rows, args.json, ("id", "period_key", "limit", "used", "used_pct", "forecast"))
    return 0


def _budget_delete(args: argparse.Namespace) -> int:
    from carbonpipe.reporting import store

    if not store.delete_budget(get_settings(), args.id):
        raise UserError(f"no budget {args.id!r} in the hot store (see `carbonpipe budget list`;"
                        " CARBONPIPE_BUDGETS_G budgets are changed in the environment)")
    print(f"deleted budget {args.id}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from carbonpipe.reporting.alerts import loop

    return loop(get_settings(), args.once)


def _day_or_time(flag: str, value: str | None, end: bool) -> datetime | None:
    """A date alone is the whole UTC day: ``--until 2026-12-31`` includes the 31st."""
    from carbonpipe.query import _when

    d = _when(flag, value)
    if d is not None and end and value is not None and "T" not in value:
        d += timedelta(days=1)
    return d


def _runs(settings: Settings, args: argparse.Namespace, since: datetime | None,
          until: datetime | None) -> list[dict[str, Any]]:
    from carbonpipe.query import RunFilter, fetch_runs

    for pair in args.tag or []:
        if "=" not in pair or pair.startswith("="):
            raise UserError(f"--tag {pair!r}: give key=value, e.g. --tag project=vision")
    where = RunFilter(user=args.user, model=args.model, tags=tuple(args.tag or ()),
                      since=since, until=until)  # fmt: skip
    if getattr(args, "source", "hot") == "cold":
        from spark_jobs.cold_runs import cold_runs

        return [r for r in cold_runs(settings) if where.matches(r)]
    return fetch_runs(settings, where=where)


def _write(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _report(args: argparse.Namespace) -> int:
    from carbonpipe.core.resources import resource
    from carbonpipe.reporting import report
    from carbonpipe.reporting.equivalents import citations, load_equivalents, load_prices
    from carbonpipe.reporting.render import RENDERERS

    settings = get_settings()
    try:
        by = report.check_by(args.by)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    since = _day_or_time("--since", args.since, end=False)
    until = _day_or_time("--until", args.until, end=True)
    runs = _runs(settings, args, since, until)
    factors = report.Factors(settings.pue, load_prices(settings.electricity_prices_path),
                             load_equivalents(), citations(settings.electricity_prices_path,
                                                           resource("data/equivalents.csv")))
    rep = report.build(runs, since=since, until=until, by=by, factors=factors,
                       source=args.source, filters={"user": args.user, "model": args.model,
                                                    "tag": ",".join(args.tag or [])})
    _write(RENDERERS[args.format](rep), args.out)
    return 0


def _export(args: argparse.Namespace) -> int:
    from carbonpipe.core.version import VERSION
    from carbonpipe.reporting.codecarbon import COLUMNS, row
    from carbonpipe.reporting.render import safe_cell

    settings = get_settings()
    runs = _runs(settings, args, _day_or_time("--since", args.since, end=False),
                 _day_or_time("--until", args.until, end=True))  # fmt: skip
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in sorted(runs, key=lambda r: str(r.get("start"))):
        w.writerow({k: safe_cell(v) for k, v in row(r, settings.pue, VERSION).items()})
    _write(buf.getvalue(), args.out)
    return 0


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user")
    p.add_argument("--model")
    p.add_argument("--tag", action="append", metavar="K=V", help="repeat: all must match")
    p.add_argument("--since", help="runs started at or after this UTC date/time")
    p.add_argument("--until", help="runs started before this UTC time (a date: to its end)")


def register(sub: Any) -> None:
    from carbonpipe.reporting.render import FORMATS
    from carbonpipe.reporting.report import BY_HELP

    b = sub.add_parser("budget", help="gCO2e or kWh budgets per user, tag or org (hot store)")
    bp = b.add_subparsers(dest="budget_command", metavar="set|list|delete")
    s = bp.add_parser("set", help="add or replace the budget of a scope, period and unit")
    s.add_argument("--scope", required=True, help="user:NAME, tag:KEY=VALUE or org")
    s.add_argument("--period", required=True, choices=PERIODS, help="UTC period")
    s.add_argument("--limit-g", type=float, help="gCO2e per period")
    s.add_argument("--limit-kwh", type=float, help="kWh per period")
    s.set_defaults(func=_budget_set)
    ls = bp.add_parser("list", help="budgets with use, share and forecast this period")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_budget_list)
    d = bp.add_parser("delete", help="delete a budget by id")
    d.add_argument("id")
    d.set_defaults(func=_budget_delete)

    a = sub.add_parser("alerts", help="evaluate budgets; alerts at 80/100 %% to Kafka + webhook")
    a.add_argument("--once", action="store_true", help="one pass, then exit (cron)")
    a.set_defaults(func=_alerts)

    r = sub.add_parser("report", help="totals, groups, provenance and factors of a period")
    _filters(r)
    r.add_argument("--by", default="user", help=BY_HELP)
    r.add_argument("--format", default="md", choices=FORMATS)
    r.add_argument("--out", help="write to this file (default: standard output)")
    r.add_argument("--source", default="hot", choices=("hot", "cold"),
                   help="hot store (MongoDB) or the Parquet cold store (Spark)")
    r.set_defaults(func=_report)

    e = sub.add_parser("export", help="runs as CodeCarbon's emissions.csv")
    e.add_argument("--format", default="codecarbon", choices=("codecarbon",))
    e.add_argument("--out", help="e.g. emissions.csv (default: standard output)")
    _filters(e)
    e.set_defaults(func=_export, source="hot")
