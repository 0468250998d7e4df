"""``carbonpipe`` console command. Each part registers its own sub-commands.

A module named in COMMAND_OWNERS exposes ``register(subparsers)``; sub-commands set
``func(args) -> int`` as their default. Keeping the entry point this thin means the CLI never
imports Spark, Kafka or Streamlit until the chosen sub-command needs them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from carbonpipe.core.errors import CarbonpipeError
from carbonpipe.core.version import VERSION

# Which module registers each sub-command (one table): ``carbonpipe collect`` then imports the
# collector only (the collector's memory footprint is part of its overhead budget); help and
# an unknown command import every module, in this order.
COMMAND_OWNERS = {
    "up": "carbonpipe.services.cli", "down": "carbonpipe.services.cli",
    "status": "carbonpipe.services.cli", "clean": "carbonpipe.services.cli",
    "kafka-grant": "carbonpipe.services.cli",  # ACLs of the host-identity model
    "cluster": "carbonpipe.services.cli",  # 3 brokers, Spark standalone, HDFS on loopback
    "apps": "carbonpipe.services.apps",  # feeder, stream job, dashboard in the background
    "collect": "collector.cli",
    "intensity": "carbonpipe.intensity.cli", "feed": "carbonpipe.intensity.cli",
    "zones": "carbonpipe.intensity.cli",
    "schedule": "carbonpipe.scheduling.cli",
    "stream": "spark_jobs.cli", "sql": "spark_jobs.cli", "dlq": "spark_jobs.cli",
    "runs": "carbonpipe.query", "users": "carbonpipe.query",
    "budget": "carbonpipe.reporting.cli", "alerts": "carbonpipe.reporting.cli",
    "report": "carbonpipe.reporting.cli", "export": "carbonpipe.reporting.cli",
    "dashboard": "dashboard.cli",
}  # fmt: skip
COMMAND_MODULES = tuple(dict.fromkeys(COMMAND_OWNERS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonpipe", description="Energy and CO2 of ML training runs."
    )
    parser.add_argument("--version", action="version", version=f"carbonpipe {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    owner = COMMAND_OWNERS.get(command or "")
    # ``--version`` needs no command module (and must work where an extra is not installed).
    names = [owner] if owner else [] if command == "--version" else COMMAND_MODULES
    for name in names:
        importlib.import_module(name).register(sub)
    return parser


def skip_pydantic_plugin_scan() -> None:
    """pydantic looks for its plugins in the entry points of every installed distribution when
    the first model class is built: 30-60 ms here, a tenth of a command's 0.5 s budget
    (``bench/bench_scale.py``). carbonpipe uses no pydantic plugin, so the CLI process records
    "none" before ``Settings`` is built. A library user's process (``carbonpipe.track``) keeps
    its plugins: only the console command does this. No-op if pydantic changes the cache."""
    from pydantic.plugin import _loader

    if getattr(_loader, "_plugins", ()) is None:
        _loader._plugins = {}


def quick_exit(code: int) -> NoReturn:
    """Ends the process now, output flushed, without the interpreter's exit handlers.

    For read-only commands (``set_defaults(quick_exit=True)``: ``runs``, ``users``) run as
    the console command: pymongo joins its monitor threads at exit, and each sleeps in 0.5 s
    steps, so a finished ``carbonpipe runs`` waited ~0.45 s for nothing (measured, issue 12;
    ``client.close()`` does not shorten it). Such a command has nothing left to write."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; ``argv`` None means the console command (``sys.argv``), whose
    read-only commands then end with ``quick_exit`` (a caller passing ``argv`` keeps its
    process)."""
    console = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "--version":
        skip_pydantic_plugin_scan()
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
    except CarbonpipeError as exc:  # the one place user errors become a message and a status
        print(f"carbonpipe {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    if console and getattr(args, "quick_exit", False):
        quick_exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
