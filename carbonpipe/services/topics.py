"""The Kafka topics the pipeline writes, declared once from the settings, created idempotently."""

from __future__ import annotations

import contextlib
import time

from carbonpipe.core.config import Settings
from carbonpipe.core.kafka_security import python_kwargs
from carbonpipe.services.process import StackError

TopicSpecs = dict[str, tuple[int, dict[str, str]]]
ENFORCED_ON_EXISTING = ("retention.ms", "message.timestamp.type")  # set on existing ones too


def topic_specs(settings: Settings) -> TopicSpecs:
    """name -> (partitions, configs) of the topics the pipeline writes.

    ``training.metrics`` is the record (Kappa): its retention is a setting, unlimited by
    default, so the broker's default (7 days) never deletes history that `stream --rebuild`
    would need. Dead letters are rejected input: kept as long, so `carbonpipe dlq replay` can
    re-send them whenever their cause is fixed (the job bounds each one's size). Budget alerts
    are kept for ever too. Its records
    carry the broker's append time (LogAppendTime), the clock the job judges a future-dated
    event against (``future_timestamp``): a host's own clock cannot vouch for itself.
    Every topic has ``kafka_replication_factor`` copies, ``kafka_min_insync_replicas`` of them
    needed for an acks=all write.
    """
    isr = {"min.insync.replicas": str(settings.kafka_min_insync_replicas)}
    keep = {"retention.ms": str(settings.metrics_retention_ms), **isr}
    metrics = {**keep, "message.timestamp.type": "LogAppendTime"}
    return {
        settings.metrics_topic: (settings.metrics_partitions, metrics),
        settings.intensity_topic: (1, {"cleanup.policy": "compact", **isr}),
        settings.dlq_topic: (1, dict(keep)),
        # Few records, kept for ever: ``carbonpipe alerts`` reads it back to publish each
        # crossing once (``carbonpipe.reporting.alerts``).
        settings.alerts_topic: (1, {"retention.ms": "-1", **isr}),
    }


def create_topics(settings: Settings, specs: TopicSpecs | None = None,
                  timeout_s: float = 30.0) -> list[str]:
    """Create the missing topics; returns the ones created.

    Existing topics keep their partitions and configs, except the retention declared here,
    which is set on them too: a topic made by an older carbonpipe (or auto-created) has the
    broker's 7 days and would silently lose history that `stream --rebuild` needs.
    """
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = topic_specs(settings) if specs is None else specs
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             client_id="carbonpipe-topics", **python_kwargs(settings))
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name, (parts, configs) in specs.items():
            if name in existing:
                kept = {k: v for k, v in configs.items() if k in ENFORCED_ON_EXISTING}
                if kept:  # incremental: other overrides on the topic stay as they are
                    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                        configs=kept)])  # fmt: skip
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(name, num_partitions=parts,
                                              replication_factor=settings.kafka_replication_factor,
                                              topic_configs=configs)])
                created.append(name)
        deadline = time.monotonic() + timeout_s
        while not set(specs) <= set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise StackError(f"topics {sorted(specs)} not visible after {timeout_s:.0f}s; "
                                 "check the broker with `carbonpipe status`")
            time.sleep(0.2)
    finally:
        admin.close()
    return created
