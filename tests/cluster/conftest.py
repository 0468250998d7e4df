"""The local multi-process cluster (``carbonpipe cluster up``) for the ``cluster`` tests.

Started once per session and stopped at its end, unless it was already up (then it is
reused and left running) or ``CARBONPIPE_KEEP_SERVICES=1``. Each test gets topics, a database
and HDFS folders of its own (``cluster_run``).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from carbonpipe.core.config import Settings, load_settings
from carbonpipe.core.mongo import mongo_client
from carbonpipe.services import cluster
from carbonpipe.services.process import StackError
from carbonpipe.services.topics import create_topics


@dataclass(frozen=True)
class LocalCluster:
    base: Settings  # the user's settings (home with the jars and cluster/)
    handle: cluster.Cluster
    start_s: float  # seconds `cluster up` took in this session (0: it was already up)


@pytest.fixture(scope="session")
def local_cluster(services: Settings) -> Iterator[LocalCluster]:
    """The cluster, beside the local services: its hot store is their MongoDB-compatible
    server (``services`` starts it when it is not running)."""
    base = load_settings()
    was_up = all(ok for *_, ok in cluster.status(base))
    t0 = time.monotonic()
    try:
        handle = cluster.up(base)
    except StackError as exc:
        pytest.fail(f"the local cluster could not start: {exc}", pytrace=False)
    yield LocalCluster(base, handle, 0.0 if was_up else time.monotonic() - t0)
    if not was_up and os.environ.get("CARBONPIPE_KEEP_SERVICES") != "1":
        cluster.down(base)


@pytest.fixture()
def cluster_run(local_cluster: LocalCluster) -> Iterator[Settings]:
    """The cluster's settings with topics, a database and cold/checkpoint folders of their own."""
    c = cluster.cluster_settings(local_cluster.base)
    suffix = uuid.uuid4().hex[:10]
    s = c.model_copy(update={
        "metrics_topic": f"{c.metrics_topic}.t{suffix}",
        "intensity_topic": f"{c.intensity_topic}.t{suffix}",
        "dlq_topic": f"{c.dlq_topic}.t{suffix}",
        "mongo_db": f"{c.mongo_db}_cluster_{suffix}",
        "cold_store_uri": f"{c.cold_store_uri}/t{suffix}",
        "checkpoint_uri": f"{c.checkpoint_uri}/t{suffix}",
        "trigger_s": 2.0,
    })  # fmt: skip
    create_topics(s)
    yield s
    with contextlib.suppress(Exception):  # the shared FerretDB stays small; HDFS is ours
        mongo_client(s.mongo_uri, timeout_s=5.0).drop_database(s.mongo_db)
