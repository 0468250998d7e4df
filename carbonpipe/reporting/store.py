"""Budgets and alert records in the hot store (MongoDB), each addressed by ``_id``.

``budgets``: one document per budget (``_id`` = ``Budget.id``). ``alerts``: one document per
crossing (``_id`` = ``Crossing.id``) with its delivery state (``published`` to Kafka,
``webhook`` sent). Both stay small (budgets x periods x 2), so listing them is a plain scan.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.reporting.budgets import Budget, Crossing, parse_scope

BUDGETS, ALERTS = "budgets", "alerts"


@lru_cache(maxsize=4)
def _client(uri: str, timeout_s: float) -> Any:
    from carbonpipe.core.mongo import mongo_client

    return mongo_client(uri, timeout_s=timeout_s)


def db(settings: Settings) -> Any:
    return _client(settings.mongo_uri, min(settings.mongo_timeout_s, 10.0))[settings.mongo_db]


def _doc(b: Budget) -> dict[str, Any]:
    return {"_id": b.id, "scope": str(b.scope), "period": b.period, "metric": b.metric,
            "limit": b.limit, "updated_at": datetime.now(timezone.utc)}  # fmt: skip


def _budget(d: Any) -> Budget:
    return Budget(parse_scope(d["scope"]), d["period"], d["metric"], float(d["limit"]))


def put_budget(settings: Settings, b: Budget) -> None:
    db(settings)[BUDGETS].replace_one({"_id": b.id}, _doc(b), upsert=True)


def list_budgets(settings: Settings) -> list[Budget]:
    return sorted((_budget(d) for d in db(settings)[BUDGETS].find()), key=lambda b: b.id)


def delete_budget(settings: Settings, budget_id: str) -> bool:
    return bool(db(settings)[BUDGETS].delete_one({"_id": budget_id}).deleted_count)


def record_crossing(settings: Settings, c: Crossing) -> bool:
    """Write the crossing once (its ``_id`` is deterministic); True when it is new. Written
    before anything is published: a crash after this leaves a pending alert, never none."""
    from pymongo.errors import DuplicateKeyError

    # Without a webhook configured now, the crossing is never posted (configuring one later
    # must not flood the channel with the history).
    hook = "pending" if settings.alert_webhook_url is not None else "off"
    doc = {"_id": c.id, **c.record(), "published": False, "webhook": hook,
           "webhook_attempts": 0}  # fmt: skip
    try:
        db(settings)[ALERTS].insert_one(doc)
    except DuplicateKeyError:
        return False
    return True


def alerts(settings: Settings) -> list[dict[str, Any]]:
    """Every alert record, newest first."""
    docs = list(db(settings)[ALERTS].find())
    return sorted(docs, key=lambda d: str(d.get("at")), reverse=True)


def mark(settings: Settings, alert_id: str, **fields: Any) -> None:
    db(settings)[ALERTS].update_one({"_id": alert_id}, {"$set": fields})
