"""Spark schemas derived from the JSON Schema contracts in ``schemas/`` (never written twice).

Timestamps stay strings here and are parsed by the job, so that an unparseable timestamp is
reported as such instead of silently becoming null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from carbonpipe.core.contracts import METRIC_EVENT_SCHEMA, load_schema

CORRUPT_COLUMN = "_corrupt_record"


def _spark_type(prop: dict[str, Any]) -> DataType:
    kind = prop.get("type")
    if kind == "string":
        return StringType()
    if kind == "number":
        return DoubleType()
    if kind == "integer":
        return LongType()
    if kind == "boolean":
        return BooleanType()
    if kind == "array":
        return ArrayType(_spark_type(prop.get("items", {"type": "string"})))
    if kind == "object":
        return StructType(
            [StructField(k, _spark_type(v)) for k, v in prop.get("properties", {}).items()]
        )
    raise ValueError(f"unsupported JSON Schema type {kind!r} in {prop}")


def struct_from_json_schema(schema: dict[str, Any], corrupt_column: bool = False) -> StructType:
    fields = [StructField(k, _spark_type(v)) for k, v in schema["properties"].items()]
    if corrupt_column:
        fields.append(StructField(CORRUPT_COLUMN, StringType()))
    return StructType(fields)


def metric_event_struct(corrupt_column: bool = True) -> StructType:
    return struct_from_json_schema(load_schema(METRIC_EVENT_SCHEMA), corrupt_column)


def lenient_struct(schema: dict[str, Any]) -> StructType:
    """Every top-level scalar as a string: tells *which* field had the wrong type."""
    return StructType(
        [
            StructField(k, StringType())
            for k, v in schema["properties"].items()
            if v.get("type") in ("string", "number", "integer", "boolean")
        ]
    )


@dataclass(frozen=True)
class FieldRule:
    """A range or enum constraint of one top-level field, read from the contract."""

    name: str
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None


def field_rules(schema: dict[str, Any]) -> list[FieldRule]:
    rules = []
    for name, prop in schema["properties"].items():
        if prop.get("type") in ("number", "integer"):
            if any(k in prop for k in ("minimum", "exclusiveMinimum", "maximum")):
                rules.append(
                    FieldRule(
                        name,
                        minimum=prop.get("minimum"),
                        exclusive_minimum=prop.get("exclusiveMinimum"),
                        maximum=prop.get("maximum"),
                    )
                )
        elif prop.get("type") == "string" and "enum" in prop:
            rules.append(FieldRule(name, enum=tuple(prop["enum"])))
    return rules
