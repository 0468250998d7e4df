"""Budget alerts: evaluate every budget, record each new crossing, publish it exactly once.

One pass (``run_once``), run by ``carbonpipe alerts`` in a loop (``carbonpipe apps`` starts it
beside the feeder) or once (``--once``, for cron):

1. evaluate every budget (hot store and ``CARBONPIPE_BUDGETS_G``) from the day buckets;
2. for each threshold reached, insert the crossing under its deterministic ``_id``
   (``budget|period|percent``) in ``alerts``; an existing one is left alone;
3. publish every record not marked ``published`` to ``carbon.alerts`` with its id as key,
   unless the topic already holds that key (read back first), then mark it published;
4. post every record whose webhook is pending, then mark it sent (a post that still fails
   after ``WEBHOOK_PASSES`` passes is marked failed; one recorded while no webhook was
   configured is never posted).

Crash windows: before 2, nothing is recorded and the next pass sees the same crossing; between
2 and 3 the record is pending and the next pass publishes it; between the send and the mark the
topic holds the key, which the next pass finds and does not send again. So each crossing is in
the topic exactly once, given one pass at a time (a lock file per hot-store database serialises
passes on a host; run one evaluator per hot store) and a topic that keeps its records (the
alerts topic is created with unlimited retention). The webhook is at least once: a crash
between a 2xx and the mark posts again (the text carries the alert id to de-duplicate on).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from carbonpipe.core.config import Settings
from carbonpipe.core.fsutil import locked
from carbonpipe.core.kafka_security import python_kwargs
from carbonpipe.reporting import store, webhook
from carbonpipe.reporting.budgets import (
    Budget,
    Status,
    bucket_ids,
    crossings,
    env_budgets,
    evaluate,
)

log = logging.getLogger("carbonpipe.alerts")
WEBHOOK_PASSES = 10  # passes (each with its own retries) before an alert's post is given up


def all_budgets(settings: Settings) -> list[Budget]:
    """The hot store's budgets, then the environment's (a stored one with the same id wins)."""
    stored = store.list_budgets(settings)
    ids = {b.id for b in stored}
    return stored + [b for b in env_budgets(settings.budgets_g) if b.id not in ids]


def statuses(settings: Settings, now: datetime | None = None) -> list[Status]:
    """Every budget's state now; the buckets are read once for all of them."""
    from carbonpipe.query import days_with_figures, fetch_buckets_by_id

    now = now or datetime.now(timezone.utc)
    budgets = all_budgets(settings)
    if not budgets:
        return []
    history = days_with_figures(settings)
    buckets = list(fetch_buckets_by_id(settings, bucket_ids(budgets, now, history),
                                       history).values())  # fmt: skip
    return [evaluate(b, buckets, now, settings.pue) for b in budgets]


def one_pass_at_a_time(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """One evaluation pass per hot-store database at a time on this host (the stack's lock)."""
    return locked(settings.layout.run, f"alerts-{settings.mongo_db}")


def topic_keys(settings: Settings) -> set[str]:
    """Every key in the alerts topic (read from the start to the current end)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                             enable_auto_commit=False, **python_kwargs(settings))  # fmt: skip
    try:
        parts = [TopicPartition(settings.alerts_topic, p)
                 for p in consumer.partitions_for_topic(settings.alerts_topic) or ()]  # fmt: skip
        if not parts:
            raise RuntimeError(f"topic {settings.alerts_topic} does not exist: run "
                               "`carbonpipe up` (it creates the pipeline's topics)")  # fmt: skip
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        keys: set[str] = set()
        deadline = time.monotonic() + 30
        while any(consumer.position(p) < end[p] for p in parts):
            if time.monotonic() > deadline:
                raise RuntimeError("timed out reading the alerts topic back")
            for recs in consumer.poll(timeout_ms=500).values():
                keys.update(r.key.decode() for r in recs if r.key is not None)
        return keys
    finally:
        consumer.close()


@dataclass
class PassResult:
    new: int = 0
    published: int = 0
    already_in_topic: int = 0
    webhook_sent: int = 0
    webhook_failed: int = 0


def publish_pending(settings: Settings, result: PassResult) -> None:
    pending = [a for a in store.alerts(settings) if not a.get("published")]
    if not pending:
        return
    from kafka import KafkaProducer

    seen = topic_keys(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                             **python_kwargs(settings))  # fmt: skip
    try:
        for a in pending:
            if a["_id"] in seen:
                result.already_in_topic += 1
            else:
                record = {k: v for k, v in a.items()
                          if k not in ("_id", "published", "webhook", "webhook_attempts")}
                producer.send(settings.alerts_topic, key=a["_id"].encode(),
                              value=json.dumps(record, default=str).encode()).get(timeout=30)
                result.published += 1
            store.mark(settings, a["_id"], published=True)
    finally:
        producer.close()


def post_pending(settings: Settings, result: PassResult) -> None:
    if settings.alert_webhook_url is None:
        return
    url = settings.alert_webhook_url.get_secret_value()
    for a in store.alerts(settings):
        if a.get("webhook") != "pending":
            continue
        text = f"{a.get('text') or ''} [alert {a['_id']}]"
        ok = webhook.post(url, text, settings.alert_webhook_retries,
                          settings.alert_webhook_backoff_s)  # fmt: skip
        attempts = int(a.get("webhook_attempts") or 0) + 1
        state = "sent" if ok else "pending" if attempts < WEBHOOK_PASSES else "failed"
        store.mark(settings, a["_id"], webhook=state, webhook_attempts=attempts)
        result.webhook_sent += ok
        result.webhook_failed += not ok


def run_once(settings: Settings, now: datetime | None = None) -> PassResult:
    """One evaluation pass (see the module's docstring for its guarantee)."""
    now = now or datetime.now(timezone.utc)
    result = PassResult()
    with one_pass_at_a_time(settings):
        for status in statuses(settings, now):
            for c in crossings(status, now):
                result.new += store.record_crossing(settings, c)
        publish_pending(settings, result)
        post_pending(settings, result)
    return result


def recent(settings: Settings, limit: int = 20) -> list[dict[str, Any]]:
    return store.alerts(settings)[:limit]


def loop(settings: Settings, once: bool) -> int:
    while True:
        try:
            r = run_once(settings)
            print(f"alerts: {r.new} new, {r.published} published, {r.already_in_topic} found "
                  f"in the topic, webhook {r.webhook_sent} sent / {r.webhook_failed} failed",
                  flush=True)  # fmt: skip
        except Exception as exc:  # the loop outlives a broker or database outage
            if once:
                raise
            log.error("alerts pass failed: %s", type(exc).__name__)
            print(f"alerts: pass failed ({type(exc).__name__}); retrying", flush=True)
        if once:
            return 0
        time.sleep(settings.alerts_interval_s)
