"""Who may do what on a secured broker: SCRAM users and ACLs, made through Kafka's Admin API.

The host-identity model (README "Security"): a collector's principal may WRITE its own host
topic and nothing else (no READ anywhere, no other topic); the streaming job's principal may
READ the host topics (one prefixed ACL, so new hosts need no job change) and the intensity
topic, and WRITE the dead-letter topic. Every call here needs ``settings`` that authenticate as
a super user (``super.users``) or a principal allowed to ALTER the cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import SecretStr

from carbonpipe.core.config import Settings
from carbonpipe.core.kafka_security import host_topic, host_topic_prefix, python_kwargs
from carbonpipe.services.process import StackError
from carbonpipe.services.topics import create_topics, topic_specs

SPARK_GROUP_PREFIX = "spark-kafka-source-"  # the group ids Spark's Kafka source generates


@contextlib.contextmanager
def _admin(settings: Settings) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers,
                             client_id="carbonpipe-acls", **python_kwargs(settings))
    try:
        yield admin
    finally:
        admin.close()


def add_scram_users(settings: Settings, users: Mapping[str, SecretStr],
                    mechanism: str = "SCRAM-SHA-512") -> None:
    """Create or update SCRAM credentials (what ``kafka-configs --alter --add-config
    'SCRAM-SHA-512=[password=...]' --entity-type users`` does), without a password on a
    command line."""
    from kafka.admin import UserScramCredentialUpsertion

    ups = [UserScramCredentialUpsertion(user, mechanism, pw.get_secret_value())
           for user, pw in users.items()]  # fmt: skip
    with _admin(settings) as admin:
        errors = {u: e for u, e in admin.alter_user_scram_credentials(ups).items() if e}
    if errors:
        raise StackError(f"SCRAM users not created: {errors}")


def _acl(principal: str, op: str, rtype: str, name: str, prefixed: bool = False) -> Any:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    pattern = ACLResourcePatternType.PREFIXED if prefixed else ACLResourcePatternType.LITERAL
    return ACL(principal=f"User:{principal}", host="*", operation=ACLOperation[op],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[rtype], name, pattern))  # fmt: skip


def _create(settings: Settings, acls: list[Any]) -> None:
    with _admin(settings) as admin:
        result = admin.create_acls(acls)
    failed = result.get("failed") or []
    if failed:
        raise StackError(f"ACLs not created: {failed}")


def job_acls(settings: Settings, principal: str) -> list[Any]:
    """What the streaming job's principal needs, and no more."""
    return [
        _acl(principal, "READ", "TOPIC", host_topic_prefix(settings), prefixed=True),
        _acl(principal, "DESCRIBE", "TOPIC", host_topic_prefix(settings), prefixed=True),
        _acl(principal, "READ", "TOPIC", settings.metrics_topic),  # the shared-topic mode
        _acl(principal, "READ", "TOPIC", settings.intensity_topic),
        _acl(principal, "WRITE", "TOPIC", settings.dlq_topic),
        _acl(principal, "READ", "GROUP", SPARK_GROUP_PREFIX, prefixed=True),
    ]


def grant_job(settings: Settings, principal: str) -> None:
    _create(settings, job_acls(settings, principal))


def grant_collector(settings: Settings, host: str, principal: str | None = None) -> str:
    """Create ``host``'s topic (as the metrics topic is configured) and let ``principal``
    (default: the host name) WRITE it, and only it. Returns the topic."""
    topic = host_topic(settings, host)
    parts, configs = topic_specs(settings)[settings.metrics_topic]
    create_topics(settings, {topic: (parts, configs)})
    _create(settings, [_acl(principal or host, "WRITE", "TOPIC", topic)])
    return topic
