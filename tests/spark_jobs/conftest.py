"""Fixtures shared by the Spark tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from carbonpipe.core.config import load_settings


@pytest.fixture(scope="module")
def spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A local Spark session without the Kafka connector, one per test module."""
    pytest.importorskip("pyspark")
    from spark_jobs.session import build_session

    session = build_session(load_settings(shuffle_partitions=1), request.module.__name__,
                            kafka=False)  # fmt: skip
    yield session
    session.stop()
