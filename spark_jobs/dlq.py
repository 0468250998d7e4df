"""``carbonpipe dlq list`` and ``carbonpipe dlq replay``: the dead letters, counted and re-sent.

A dead letter (``spark_jobs.stream.BatchProcessor._dead_letter``) carries the record's text
(``raw``), the reason and its source ``topic:partition:offset`` as key. Once the cause is
fixed (lateness raised, the producer corrected), ``replay`` sends the original text back to
``training.metrics``, where the job counts it like any event. Why it cannot count twice:
- the job re-sends a dead letter when it retries a batch, so letters are read once per key;
- every replayed key is recorded in the hot store (``dlq_replayed``) after the broker
  acknowledged it, and a later replay skips it; a crash between the two re-sends at most that
  replay, which the job's (host, run_id, seq) de-duplication absorbs;
- a letter whose text was cut to bound its size is never replayed (it would be another
  event); its sha256 and source offset name the whole record in the log.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carbonpipe.core.config import Settings, get_settings
from carbonpipe.core.errors import ConfigError
from carbonpipe.core.kafka_security import host_topic_prefix, python_kwargs
from carbonpipe.core.timeutil import parse_iso, utc_iso_s

LEDGER = "dlq_replayed"  # hot-store collection: one document per replayed dead letter
REPLAY_HEADER = "carbonpipe-replay-of"  # on each re-sent record: the dead letter's key


@dataclass(frozen=True)
class DeadLetter:
    key: str  # source topic:partition:offset
    reason: str
    raw: str | None
    truncated: bool
    detected_at: datetime | None
    run_id: str | None
    topic: str | None = None  # where the record was read (with host topics: whose it is)

    @property
    def kind(self) -> str:
        """The reason without its detail: ``wrong_type:epoch`` -> ``wrong_type``."""
        return self.reason.split(":", 1)[0]


def _letter(key: str, value: bytes) -> DeadLetter:
    env = json.loads(value)
    raw = env.get("raw")
    run_id = None
    try:
        event = json.loads(raw) if raw else None
        run_id = str(event["run_id"]) if isinstance(event, dict) and "run_id" in event else None
    except ValueError:
        pass
    detected = env.get("detected_at")
    return DeadLetter(
        key=key,
        reason=str(env.get("reason")),
        raw=raw,
        truncated=bool(env.get("raw_truncated")),
        detected_at=parse_iso(detected) if detected else None,
        run_id=run_id,
        topic=env.get("topic"),
    )


def read_letters(settings: Settings, timeout_s: float = 30.0) -> list[DeadLetter]:
    """Every dead letter now in the topic, once per key (first copy), in log order."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        **python_kwargs(settings),
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        allow_auto_create_topics=False,  # asking must not create it (with default configs)
    )
    try:
        parts = consumer.partitions_for_topic(settings.dlq_topic) or set()
        tps = [TopicPartition(settings.dlq_topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        letters: dict[str, DeadLetter] = {}
        while any(consumer.position(tp) < end[tp] for tp in tps):
            batch = consumer.poll(timeout_ms=int(timeout_s * 1000))
            if not batch:
                raise ConfigError(
                    f"no dead letters read from {settings.dlq_topic} in {timeout_s:.0f} s: check "
                    f"CARBONPIPE_KAFKA_BOOTSTRAP_SERVERS ({settings.kafka_bootstrap_servers})"
                )
            for records in batch.values():
                for r in records:
                    key = r.key.decode() if r.key else f"{r.topic}:{r.partition}:{r.offset}"
                    if key not in letters and r.value:
                        letters[key] = _letter(key, r.value)
        return list(letters.values())
    finally:
        consumer.close()


def select(
    letters: list[DeadLetter],
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[DeadLetter]:
    """By reason (``late`` or ``wrong_type:epoch``) and detection time, ``since <= t < until``."""

    def keep(d: DeadLetter) -> bool:
        if reason and reason not in (d.reason, d.kind):
            return False
        if since and (d.detected_at is None or d.detected_at < since):
            return False
        return not (until and (d.detected_at is None or d.detected_at >= until))

    return [d for d in letters if keep(d)]


def counts(letters: list[DeadLetter]) -> list[dict[str, Any]]:
    """Dead letters per reason and run, most first."""
    c = Counter((d.reason, d.run_id) for d in letters)
    return [
        {"reason": reason, "run_id": run_id, "count": n}
        for (reason, run_id), n in sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]


def _ledger(settings: Settings) -> Any:
    from carbonpipe.core.mongo import mongo_client

    client: Any = mongo_client(settings.mongo_uri, settings.mongo_timeout_s)
    return client, client[settings.mongo_db][LEDGER]


def _replay_topic(settings: Settings, letter: DeadLetter) -> str:
    """With host topics a letter goes back to the host topic it came from (the job reads
    those only, and checks the host against it again); else to the metrics topic."""
    if settings.kafka_host_topics and letter.topic and letter.topic.startswith(
            host_topic_prefix(settings)):
        return letter.topic
    return settings.metrics_topic


def replay(settings: Settings, letters: list[DeadLetter], dry_run: bool = False) -> dict[str, int]:
    """Re-sends the original text of ``letters`` to the metrics topic, each key at most once.

    Returns how many were chosen, skipped (replayed before, or cut), to send and sent.
    """
    client, ledger = _ledger(settings)
    try:
        keys = [d.key for d in letters]
        done = {doc["_id"] for doc in ledger.find({"_id": {"$in": keys}}, {"_id": 1})}
        todo = [d for d in letters if d.key not in done and not d.truncated and d.raw]
        summary = {
            "chosen": len(letters),
            "already_replayed": sum(d.key in done for d in letters),
            "truncated": sum(d.truncated and d.key not in done for d in letters),
            "to_send": len(todo),
            "replayed": 0 if dry_run else len(todo),
        }
        if dry_run or not todo:
            return summary
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
                                 acks="all", retries=5, **python_kwargs(settings))
        try:
            for d in todo:
                assert d.raw is not None
                producer.send(
                    _replay_topic(settings, d),
                    key=d.run_id.encode() if d.run_id else None,
                    value=d.raw.encode(),
                    headers=[(REPLAY_HEADER, d.key.encode())],
                )
            producer.flush()
        finally:
            producer.close()
        from pymongo.errors import BulkWriteError

        now = utc_iso_s(datetime.now().astimezone())
        try:
            ledger.insert_many([{"_id": d.key, "reason": d.reason, "replayed_at": now}
                                for d in todo], ordered=False)  # fmt: skip
        except BulkWriteError as exc:  # another replay recorded some first: same outcome
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        return summary
    finally:
        client.close()


def _time_arg(text: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def _filters(args: argparse.Namespace) -> list[DeadLetter]:
    return select(read_letters(get_settings()), args.reason, args.since, args.until)


def _list(args: argparse.Namespace) -> int:
    from carbonpipe.query import print_rows

    rows = counts(_filters(args))
    if not rows and not args.json:
        print("(no dead letters)")
        return 0
    print_rows(rows, args.json, ("reason", "run_id", "count"))
    return 0


def _replay(args: argparse.Namespace) -> int:
    settings = get_settings()
    summary = replay(settings, _filters(args), dry_run=args.dry_run)
    verb = "would replay" if args.dry_run else "replayed"
    print(
        f"{verb} {summary['to_send']} of {summary['chosen']} dead "
        f"letters to {settings.metrics_topic} ({summary['already_replayed']} replayed before, "
        f"{summary['truncated']} cut to bound their size: never replayed)"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("dlq", help="dead letters: count them, replay them once fixed")
    dsub = p.add_subparsers(dest="dlq_command", metavar="SUBCOMMAND", required=True)
    for name, func, text in (
        ("list", _list, "dead letters per reason and run"),
        ("replay", _replay, "re-send dead letters' original records to the metrics topic"),
    ):
        q = dsub.add_parser(name, help=text)
        q.add_argument("--reason", default=None, help="e.g. late, or wrong_type:epoch")
        q.add_argument("--since", type=_time_arg, default=None, help="detected at or after")
        q.add_argument("--until", type=_time_arg, default=None, help="detected before")
        if name == "list":
            q.add_argument("--json", action="store_true")
        else:
            q.add_argument("--dry-run", action="store_true", help="count, send nothing")
        q.set_defaults(func=func)
