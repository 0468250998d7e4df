"""The Pipeline health page's figures (pure: the stats document and intensity rows in).

The streaming job keeps, in its ``stats`` document, the all-time counts per outcome (valid,
duplicate, each dead-letter reason) and its newest batches (``spark_jobs.merge.merge_counts``):
time, duration up to the hot-store write, events read and the Kafka lag Spark reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

OUTCOMES = ("valid", "duplicate")  # the rest of the counts are dead-letter reasons


def outcome_rows(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """Valid (duplicates among them), duplicates dropped, then each dead-letter reason
    (``late`` among them): ``valid`` - ``duplicate`` events were counted."""
    valid, dup = int(counts.get("valid", 0)), int(counts.get("duplicate", 0))
    rows = [{"outcome": "valid", "events": valid},
            {"outcome": "of which duplicates (dropped)", "events": dup},
            {"outcome": "counted", "events": valid - dup}]
    rows += [{"outcome": f"dead letter: {k}", "events": int(v)}
             for k, v in sorted(counts.items()) if k not in OUTCOMES]  # fmt: skip
    return rows


def dead_lettered(counts: Mapping[str, int]) -> int:
    return sum(int(v) for k, v in counts.items() if k not in OUTCOMES)


def _at(b: Mapping[str, Any]) -> datetime | None:
    at = b.get("at")
    if not isinstance(at, datetime):
        return None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def per_minute(recent: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Events read and valid per UTC minute of the recent batches (oldest first)."""
    acc: dict[datetime, dict[str, Any]] = {}
    for b in recent:
        at = _at(b)
        if at is None:
            continue
        minute = at.replace(second=0, microsecond=0)
        cur = acc.setdefault(minute, {"minute": minute, "events": 0, "valid": 0})
        cur["events"] += int(b.get("events") or 0)
        cur["valid"] += int((b.get("counts") or {}).get("valid", 0))
    return [acc[k] for k in sorted(acc)]


def rate_per_minute(recent: Sequence[Mapping[str, Any]], now: datetime,
                    span: timedelta = timedelta(minutes=5)) -> float:
    """Events per minute over the last ``span`` (0 when the job read nothing)."""
    n = sum(int(b.get("events") or 0) for b in recent
            if (at := _at(b)) is not None and at >= now - span)  # fmt: skip
    return n / (span.total_seconds() / 60.0)


def freshness(rows: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Per zone: the newest intensity slot in force by now (its provider and kind), how old
    it is, and how far ahead the forecast reaches."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        zone, start, end = str(r.get("zone")), r.get("start"), r.get("end")
        if not isinstance(start, datetime):
            continue
        start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
        cur = out.setdefault(zone, {"zone": zone, "latest slot (UTC)": None, "provider": None,
                                    "kind": None, "age (min)": None, "forecast until": None})
        if isinstance(end, datetime):
            end = end if end.tzinfo else end.replace(tzinfo=timezone.utc)
            if cur["forecast until"] is None or end > cur["forecast until"]:
                cur["forecast until"] = end
        if start <= now and (cur["latest slot (UTC)"] is None or start > cur["latest slot (UTC)"]):
            cur.update({"latest slot (UTC)": start, "provider": r.get("provider"),
                        "kind": r.get("kind"),
                        "age (min)": round((now - start).total_seconds() / 60.0, 1)})
    return [out[z] for z in sorted(out)]
