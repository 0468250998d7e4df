"""Runs rebuilt from the Parquet cold store (``carbonpipe report --source cold``).

The ``windows`` view (window partials merged as each aggregate declares) grouped per run:
sums of the summed aggregates, first/last event, zones and hosts, the latest tags. The same
fields as the hot store's run documents that a report reads; provenance the cold store does not
keep per run (method label, intensity providers, duplicates) is absent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.aggregates import AGGREGATES
from carbonpipe.core.config import Settings

RUN_SQL = (
    "SELECT run_id, first(user_id) AS user_id, first(model_name) AS model_name, "
    "min(first_ts_s) AS first_ts_s, max(last_ts_s) AS last_ts_s, "
    "sort_array(collect_set(zone)) AS zones, sort_array(collect_set(host)) AS hosts, "
    "max_by(tags, last_ts_s) AS tags, {sums} FROM ({windows}) GROUP BY run_id"
)


def cold_runs(settings: Settings) -> list[dict[str, Any]]:
    from spark_jobs.analytics import cold_session, windows_view_sql

    spark = cold_session(settings)
    cols = set(spark.table("window_partials").columns)
    sums = ", ".join(f"sum({a.name}) AS {a.name}" for a in AGGREGATES
                     if a.merge == "sum" and a.shown and a.name in cols)  # fmt: skip
    rows = spark.sql(RUN_SQL.format(sums=sums, windows=windows_view_sql(cols))).collect()
    out = []
    for r in rows:
        d = r.asDict(recursive=True)
        if d.get("first_ts_s") is not None:
            d["start"] = datetime.fromtimestamp(d["first_ts_s"], timezone.utc)
            d["end"] = datetime.fromtimestamp(d["last_ts_s"], timezone.utc)
            d["duration_s"] = d["last_ts_s"] - d["first_ts_s"]
        d["tags"] = d.get("tags") or {}
        out.append(d)
    return out
