"""The event contract in ``schemas/``, loaded for Python code (collector, feeder, tests).

The files are found through ``carbonpipe.core.resources`` (checkout or installed wheel).

The JSON Schema files are the single source of truth; the Spark job derives its StructType
from the same files (``spark_jobs.schema``).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator

from carbonpipe.core.resources import resource
from carbonpipe.core.timeutil import utc_iso

METRIC_EVENT_SCHEMA = "metric_event.v1.json"
GRID_INTENSITY_SCHEMA = "grid_intensity.v1.json"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    with open(resource(f"schemas/{name}"), encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def validation_errors(event: dict[str, Any], schema: str = METRIC_EVENT_SCHEMA) -> list[str]:
    """Readable reasons an event breaks the contract (empty list: valid)."""
    errs = sorted(_validator(schema).iter_errors(event), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errs]


def intensity_key(zone: str, start: datetime) -> str:
    """Kafka key of a grid.intensity record: compaction keeps the newest per zone and start."""
    return f"{zone}|{utc_iso(start)}"
