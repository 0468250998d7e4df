"""``carbonpipe`` console command. Each part registers its own sub-commands.

A module in COMMAND_MODULES exposes ``register(subparsers)``; sub-commands set
``func(args) -> int`` as their default. Keeping the entry point this thin means the CLI never
imports Spark, Kafka or Streamlit until the chosen sub-command needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from carbonpipe.core.errors import CarbonpipeError

COMMAND_MODULES = (
    "carbonpipe.services.cli",  # up / down / status / clean of the local services
    "carbonpipe.apps",  # apps up / down / status: feeder, stream job, dashboard
    "collector.cli",  # collect
    "carbonpipe.intensity.cli",  # intensity, feed
    "carbonpipe.scheduling.cli",  # schedule
    "spark_jobs.cli",  # stream, sql
    "carbonpipe.query",  # runs, users
    "dashboard.cli",  # dashboard
)


# Which module registers a sub-command: ``carbonpipe collect`` then imports the collector only
# (the collector's memory footprint is part of its overhead budget).
COMMAND_OWNERS = {
    "up": "carbonpipe.services.cli", "down": "carbonpipe.services.cli",
    "status": "carbonpipe.services.cli", "clean": "carbonpipe.services.cli",
    "apps": "carbonpipe.apps", "collect": "collector.cli", "intensity": "carbonpipe.intensity.cli",
    "feed": "carbonpipe.intensity.cli", "schedule": "carbonpipe.scheduling.cli",
    "stream": "spark_jobs.cli", "sql": "spark_jobs.cli", "runs": "carbonpipe.query",
    "users": "carbonpipe.query", "dashboard": "dashboard.cli",
}  # fmt: skip


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonpipe", description="Energy and CO2 of ML training runs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    owner = COMMAND_OWNERS.get(command or "")
    for name in [owner] if owner else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CarbonpipeError as exc:  # the one place user errors become a message and a status
        print(f"carbonpipe {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
