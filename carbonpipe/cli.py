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

from carbonpipe.config import ConfigError

COMMAND_MODULES = (
    "carbonpipe.stack",  # up / down / status of the local services
    "carbonpipe.apps",  # apps up / down / status: feeder, stream job, dashboard
    "collector.cli",  # collect
    "carbonpipe.intensity.cli",  # intensity, feed
    "carbonpipe.scheduling.cli",  # schedule
    "spark_jobs.cli",  # stream, sql
    "carbonpipe.query",  # runs, users
    "dashboard.cli",  # dashboard
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonpipe", description="Energy and CO2 of ML training runs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # that part is not installed/written: skip it
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"carbonpipe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
