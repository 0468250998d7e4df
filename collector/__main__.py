"""``python -m collector collect ...``: the same command as ``carbonpipe collect``, lean.

``carbonpipe`` builds a parser from every part of the project (Spark, intensity, dashboard
modules), which costs ~15 MB of RSS the sampling process then keeps for its whole life; this
entry point registers only ``collect``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from carbonpipe.core.config import ConfigError
from collector import cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector")
    cli.register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"carbonpipe: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
