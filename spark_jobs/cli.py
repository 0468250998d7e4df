"""``carbonpipe stream`` (the streaming job), ``carbonpipe sql`` (ad-hoc SQL, cold store) and
``carbonpipe dlq`` (dead letters, ``spark_jobs.dlq``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from carbonpipe.core.config import get_settings


def _stream(args: argparse.Namespace) -> int:
    from spark_jobs.stream import run

    return run(
        get_settings(), once=args.once, rebuild_first=args.rebuild, accept_loss=args.accept_loss
    )


def sql_query(query: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Runs Spark SQL over the Parquet cold store: view ``windows``, table ``window_partials``
    and, where the per-event archive is on, table ``events``."""
    from pyspark.errors import AnalysisException

    from carbonpipe.core.errors import UserError
    from spark_jobs.analytics import cold_session

    spark = cold_session(get_settings())
    try:
        return [r.asDict(recursive=True) for r in spark.sql(query).limit(limit).collect()]
    except AnalysisException as exc:
        if "TABLE_OR_VIEW_NOT_FOUND" in str(exc) and "`events`" in str(exc):
            raise UserError(
                "table `events` is empty: the per-event archive is off "
                "(CARBONPIPE_COLD_EVENTS=false) or the job has written nothing yet. Query "
                "`windows` (1-minute totals) instead, or set CARBONPIPE_COLD_EVENTS=true for the "
                "streaming job (events from then on, or all of them after `carbonpipe stream "
                "--rebuild`)"
            ) from None
        raise


def _sql(args: argparse.Namespace) -> int:
    from carbonpipe.query import print_rows

    rows = sql_query(args.query, args.limit)
    if not rows and not args.json:
        print("(no rows)")
        return 0
    print_rows(rows, args.json, tuple(rows[0]) if rows else ())
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("stream", help="run the Spark Structured Streaming job")
    p.add_argument("--once", action="store_true", help="drain what is in the log, then stop")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="forget all results and replay the log from the start (refused when retention "
        "has deleted part of the log; the old cold store is moved to <cold>/superseded/)",
    )
    p.add_argument(
        "--accept-loss",
        action="store_true",
        help="go on past offsets the log no longer holds (they stay uncounted) instead of "
        "stopping with an error",
    )
    p.set_defaults(func=_stream)
    q = sub.add_parser(
        "sql",
        help="Spark SQL over the Parquet cold store (windows; events if archived)",
    )
    q.add_argument("query")
    q.add_argument("--json", action="store_true")
    q.add_argument("--limit", type=int, default=1000)
    q.set_defaults(func=_sql)
    from spark_jobs import dlq

    dlq.register(sub)


if __name__ == "__main__":
    sys.exit(0)
