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
    MapType,
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
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return MapType(StringType(), _spark_type(prop["additionalProperties"]))
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


# Keywords a field rule enforces, and keywords that only describe. Anything else in a property
# (``pattern``, ``multipleOf``, ``minItems``...) makes ``field_rules`` fail: a constraint added to
# the contract must get a rule here, never be skipped silently.
_ENFORCED = frozenset(
    {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength",
     "const", "enum"}
)  # fmt: skip
_DESCRIPTIVE = frozenset({"type", "description", "items", "properties"})
# ``format: date-time`` is enforced by the job's own parser (``bad_timestamp``), on this field only.
_PARSED_FORMATS = {"timestamp": "date-time"}


@dataclass(frozen=True)
class FieldRule:
    """Every constraint the contract puts on one field, read from the JSON Schema.

    ``path`` is ``("run_id",)`` for a top-level field, ``("gpus", "power_w")`` for a property of
    every item of the array ``gpus`` (then ``in_array``). The Spark rules (``transforms.
    reason_sql``) and the conformance test's corpus are both generated from these, so a
    constraint added to the contract is enforced and tested without a second declaration.
    """

    path: tuple[str, ...]
    type: str
    required: bool = False
    in_array: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    const: Any = None
    enum: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """The field as reasons name it: ``run_id``, ``gpus/power_w`` (no dots: the reasons
        are keys of MongoDB documents)."""
        return "/".join(self.path)

    @property
    def numeric(self) -> bool:
        return self.type in ("number", "integer")


def _rule(path: tuple[str, ...], prop: dict[str, Any], required: bool, in_array: bool) -> FieldRule:
    unknown = set(prop) - _ENFORCED - _DESCRIPTIVE
    if prop.get("format") is not None and _PARSED_FORMATS.get(path[-1]) == prop["format"]:
        unknown.discard("format")
    if unknown:
        raise ValueError(
            f"{'/'.join(path)}: contract keywords {sorted(unknown)} have no Spark rule "
            "(add one in spark_jobs/schema.py and transforms.reason_sql)"
        )
    enum = prop.get("enum")
    return FieldRule(
        path,
        prop["type"],
        required=required,
        in_array=in_array,
        minimum=prop.get("minimum"),
        exclusive_minimum=prop.get("exclusiveMinimum"),
        maximum=prop.get("maximum"),
        exclusive_maximum=prop.get("exclusiveMaximum"),
        min_length=prop.get("minLength"),
        max_length=prop.get("maxLength"),
        const=prop.get("const"),
        enum=None if enum is None else tuple(enum),
    )


def field_rules(schema: dict[str, Any]) -> list[FieldRule]:
    """One rule per scalar field of the contract, top-level and inside arrays of objects, in
    the contract's order (which is the order the job tests them in: first failure wins)."""
    required = set(schema.get("required", ()))
    rules = []
    for name, prop in schema["properties"].items():
        kind = prop.get("type")
        if kind == "array" and prop.get("items", {}).get("type") == "object":
            _rule((name,), prop, name in required, False)  # array-level keywords checked
            item = prop["items"]
            if item.get("required"):
                raise ValueError(f"{name}: required item properties have no Spark rule")
            for sub, sub_prop in item["properties"].items():
                rules.append(_rule((name, sub), sub_prop, False, True))
        elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
            map_rule(name, prop)  # checked here, enforced by ``map_rules``
        elif kind in ("array", "object"):
            raise ValueError(f"{name}: {kind} of this shape has no Spark rule")
        else:
            rules.append(_rule((name,), prop, name in required, False))
    return rules


@dataclass(frozen=True)
class MapRule:
    """A string -> string object of the contract (``tags``): how many keys, which key
    pattern, how long a value; enforced by ``transforms.reason_sql`` like the field rules."""

    name: str
    max_properties: int
    key_pattern: str
    max_value_length: int


def map_rule(name: str, prop: dict[str, Any]) -> MapRule:
    values = prop["additionalProperties"]
    known = {"type", "description", "additionalProperties", "maxProperties", "propertyNames"}
    if set(prop) - known or set(values) - {"type", "maxLength"} or values["type"] != "string":
        raise ValueError(f"{name}: object of this shape has no Spark rule")
    return MapRule(name, int(prop["maxProperties"]), str(prop["propertyNames"]["pattern"]),
                   int(values["maxLength"]))  # fmt: skip


def map_rules(schema: dict[str, Any]) -> list[MapRule]:
    props = schema["properties"].items()
    return [map_rule(n, p) for n, p in props if isinstance(p.get("additionalProperties"), dict)]


def any_required(schema: dict[str, Any]) -> list[tuple[str, ...]]:
    """The contract's ``anyOf: [{"required": [a]}, {"required": [b]}]`` as ``[(a, b)]``: at
    least one of the names must be present. Any other ``anyOf``/``oneOf``/``allOf`` fails."""
    for keyword in ("oneOf", "allOf", "not", "if"):
        if keyword in schema:
            raise ValueError(f"top-level {keyword} has no Spark rule")
    if "anyOf" not in schema:
        return []
    names = []
    for branch in schema["anyOf"]:
        if set(branch) != {"required"} or len(branch["required"]) != 1:
            raise ValueError(f"anyOf branch {branch} has no Spark rule (only one required name)")
        names.append(branch["required"][0])
    return [tuple(names)]
