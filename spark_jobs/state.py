"""The job's own event-time watermark, one record per micro-batch.

Spark's watermark drops late rows silently; ours sends them to the dead-letter topic. The
watermark used by batch N depends only on batches < N, so a replayed batch decides exactly as
the first attempt did. The records live in the hot store's ``job_state`` collection because
the driver reaches MongoDB in every deployment (local folder, HDFS or S3 checkpoints alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchState:
    batch_id: int
    max_event_ts_s: float | None  # newest valid event time seen up to and including this batch
    query_id: str | None = None

    def watermark(self, lateness_s: float) -> float | None:
        return None if self.max_event_ts_s is None else self.max_event_ts_s - lateness_s


class StateLog:
    KEEP = 100

    def __init__(self, db: Any) -> None:
        self._coll = db["job_state"]

    def before(self, batch_id: int) -> BatchState:
        """State as of the last batch before ``batch_id`` (empty state if none)."""
        doc = self._coll.find_one({"_id": {"$lt": batch_id}}, sort=[("_id", -1)])
        if doc is None:
            return BatchState(-1, None)
        return BatchState(doc["_id"], doc.get("max_event_ts_s"), doc.get("query_id"))

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
            },
            upsert=True,
        )
        self._coll.delete_many({"_id": {"$lt": state.batch_id - self.KEEP}})
