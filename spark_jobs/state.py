"""The job's own event-time progress, per host, one record per micro-batch.

Spark's watermark drops late rows silently and is one global maximum, which one host with a
wrong clock can push ahead of everyone (review H1). Ours is kept per host: an event is late
only when it is older than its own host's newest counted event minus the allowed lateness, and
late events go to the dead-letter topic. Future-dated events never move it: the job rejects
them against the broker's append time first. The progress used by batch N depends only on
batches < N, so a replayed batch decides exactly as the first attempt did. The records live
in the hot store's ``job_state`` collection because the driver reaches MongoDB in every
deployment (local folder, HDFS or S3 checkpoints alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BatchState:
    batch_id: int
    max_event_ts_s: float | None  # newest valid event time seen up to and including this batch
    query_id: str | None = None
    # newest counted event time per host, up to and including this batch
    max_ts_by_host: dict[str, float] = field(default_factory=dict)

    def late_before(self, lateness_s: float) -> dict[str, float]:
        """Per host: events older than this are late."""
        return {h: t - lateness_s for h, t in self.max_ts_by_host.items()}

    def advanced(
        self, batch_id: int, newest_by_host: Mapping[str, float], query_id: str | None
    ) -> BatchState:
        """The state after a batch whose counted events reached ``newest_by_host``."""
        hosts = dict(self.max_ts_by_host)
        for h, t in newest_by_host.items():
            hosts[h] = max(hosts.get(h, t), t)
        newest = max(hosts.values(), default=None)
        return BatchState(batch_id, newest, query_id, hosts)


class StateLog:
    KEEP = 100

    def __init__(self, db: Any) -> None:
        self._coll = db["job_state"]

    def before(self, batch_id: int) -> BatchState:
        """State as of the last batch before ``batch_id`` (empty state if none)."""
        doc = self._coll.find_one({"_id": {"$lt": batch_id}}, sort=[("_id", -1)])
        if doc is None:
            return BatchState(-1, None)
        hosts = {str(d["host"]): float(d["ts_s"]) for d in doc.get("max_ts_by_host") or []}
        return BatchState(doc["_id"], doc.get("max_event_ts_s"), doc.get("query_id"), hosts)

    def any_query_id(self) -> str | None:
        doc = self._coll.find_one({}, sort=[("_id", -1)])
        return None if doc is None else doc.get("query_id")

    def write(self, state: BatchState) -> None:
        self._coll.replace_one(
            {"_id": state.batch_id},
            {
                "_id": state.batch_id,
                "max_event_ts_s": state.max_event_ts_s,
                "query_id": state.query_id,
                # a list, not a map: host names may hold dots, which keys must not
                "max_ts_by_host": [
                    {"host": h, "ts_s": t} for h, t in sorted(state.max_ts_by_host.items())
                ],
            },
            upsert=True,
        )
        self._coll.delete_many({"_id": {"$lt": state.batch_id - self.KEEP}})
