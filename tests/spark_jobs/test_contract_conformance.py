"""The job's rules and the JSON Schema agree on every event: one verdict per row.

The corpus is generated from ``schemas/metric_event.v1.json`` (``field_rules`` and
``any_required``, the same reading of the contract the job uses), so a constraint added to the
schema adds rows here. Each row goes to the contract validator and, in one DataFrame, through
the job's own ``parse``/``check``/``explain_rejects``; valid for the schema must mean
``reason IS NULL`` for the job.

Not compared: the time-relative rules (``late`` needs a watermark, ``absurd_timestamp`` the
clock; every row has a fixed, plausible timestamp and no watermark is given), and the
deliberate differences in ``GAPS`` (documented in ``schemas/README.md``), whose rows are
checked against what the README says instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from carbonpipe.core.contracts import METRIC_EVENT_SCHEMA, load_schema, validation_errors

pyspark = pytest.importorskip("pyspark")

from spark_jobs.schema import FieldRule, any_required, field_rules  # noqa: E402

TIMESTAMP = "2025-10-14T14:25:23Z"
OVERFLOW = "__1e400__"  # a JSON number literal beyond double range, spliced into the text
INT64_MAX = 2**63 - 1

# name -> why the job differs from the validator there (same words as schemas/README.md).
GAPS = {
    "string_coercion": "a non-string value in a string field is read by Spark as its JSON "
    "text (5 -> '5'); telling them apart needs a second parse of every event",
    "null_is_absent": "an explicit null in an optional field is treated as absent; telling "
    "them apart needs a second parse of every event",
    "integral_float": "an integer field written with a fraction or exponent (2.0, 1e2) is a "
    "JSON Schema integer but wrong_type for the job, which reads integers as 64-bit longs",
    "int64": "an integer beyond 64 bits is valid JSON Schema but wrong_type for the job",
    "timestamp_format": "format: date-time is an annotation for the validator; the job "
    "requires text its ISO-8601 parser reads (bad_timestamp otherwise)",
}


@dataclass(frozen=True)
class Case:
    label: str
    text: bytes
    field: str | None = None  # the rule a violating row targets (its reason must name it)
    gap: str | None = None
    twin: bytes | None = None  # gap rows: the event the job must treat this one exactly as
    spark_reason: str | None = None  # gap rows without a twin: the job's documented reason


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number (RFC 8259)")


def _non_finite(doc: Any, path: str = "") -> list[str]:
    if isinstance(doc, float) and not math.isfinite(doc):
        return [f"{path or '<root>'}: {doc} is beyond the range of a double"]
    if isinstance(doc, dict):
        return [e for k, v in doc.items() for e in _non_finite(v, f"{path}/{k}".lstrip("/"))]
    if isinstance(doc, list):
        return [e for i, v in enumerate(doc) for e in _non_finite(v, f"{path}/{i}".lstrip("/"))]
    return []


def contract_errors(text: bytes) -> list[str]:
    """The contract's verdict on the bytes of a Kafka record: JSON (RFC 8259, so no ``NaN`` or
    ``Infinity`` tokens, which Python's json would accept), finite, and valid for the schema.

    ``validation_errors`` alone accepts ``float('nan')`` and ``float('inf')`` as numbers (and
    ``minimum``/``maximum`` never fail on NaN): the strict parse is what rejects them.
    """
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    return validation_errors(doc) + _non_finite(doc)


def _dumps(event: Any) -> bytes:
    return json.dumps(event).replace(f'"{OVERFLOW}"', "1e400").encode()


def _valid_value(rule: FieldRule, prop: dict[str, Any]) -> Any:
    if rule.const is not None:
        return rule.const
    if rule.enum is not None:
        return rule.enum[0]
    if prop.get("format") == "date-time":
        return TIMESTAMP
    if rule.type == "string":
        return "v" * max(rule.min_length or 0, 1)
    if rule.type == "boolean":
        return True
    lo = rule.minimum if rule.minimum is not None else rule.exclusive_minimum
    value = 1 if lo is None else lo + 1
    for hi in (rule.maximum, rule.exclusive_maximum):
        if hi is not None and value >= hi:
            value = (hi + (lo or 0)) / 2
    return int(value) if rule.type == "integer" else float(value)


def _prop(schema: dict[str, Any], rule: FieldRule) -> dict[str, Any]:
    prop: dict[str, Any] = schema["properties"][rule.path[0]]
    return prop["items"]["properties"][rule.path[1]] if rule.in_array else prop


def _wrong_types(rule: FieldRule) -> list[tuple[str, Any]]:
    samples = {"string": "7", "number": 1.5, "integer": 7, "boolean": True,
               "object": {"a": 1}, "array": [1]}  # fmt: skip
    allowed = {rule.type} | ({"integer"} if rule.type == "number" else set())
    return [(kind, v) for kind, v in samples.items() if kind not in allowed]


def _step(x: float, rule: FieldRule, up: bool) -> float | int:
    """The nearest value of the field's type beyond ``x``: boundaries to the last bit."""
    if rule.type == "integer" and float(x).is_integer():
        return int(x) + (1 if up else -1)
    return math.nextafter(float(x), math.inf if up else -math.inf)


def _values(rule: FieldRule, prop: dict[str, Any]) -> Iterator[tuple[str, Any, str | None]]:
    """(what, value, gap) for one field: boundaries on both sides of every constraint."""
    if rule.const is not None:
        c = rule.const
        yield "const", c, None
        if isinstance(c, int):
            yield "const+1", c + 1, None
            yield "const-1", c - 1, None
        yield "const as text", str(c), "string_coercion" if rule.type == "string" else None
    for member in rule.enum or ():
        yield f"enum {member}", member, None
    if rule.enum is not None:
        yield "not a member", "bogus", None
        yield "member in upper case", rule.enum[0].upper(), None
        yield "empty", "", None
    if rule.type == "string":
        if prop.get("format") == "date-time":
            yield "offset", "2025-10-14T16:25:23.5+02:00", None
            yield "space separator", "2025-10-14 14:25:23Z", None
            for text in ("yesterday", "", "2025-13-01T00:00:00Z"):
                yield f"unparseable {text!r}", text, "timestamp_format"
        elif rule.enum is None:
            yield "empty", "", None
            yield "non-ASCII", "zürich-λ", None
        n_min, n_max = rule.min_length, rule.max_length
        for n, label in ((n_min, "minLength"), (n_max, "maxLength")):
            if n is None:
                continue
            for k in (n - 1, n, n + 1):
                if k >= 0:
                    yield f"{label} {n}: {k} chars", "a" * k, None
                    # an astral character: one code point (JSON Schema), two UTF-16 units
                    yield f"{label} {n}: {k} code points", "\U0001f600" * k, None
    if rule.numeric:
        bounds = [
            (rule.minimum, "minimum"),
            (rule.exclusive_minimum, "exclusiveMinimum"),
            (rule.maximum, "maximum"),
            (rule.exclusive_maximum, "exclusiveMaximum"),
        ]
        for b, label in bounds:
            if b is not None:
                yield f"{label} {b}", int(b) if rule.type == "integer" else float(b), None
                yield f"{label} {b} - step", _step(b, rule, up=False), None
                yield f"{label} {b} + step", _step(b, rule, up=True), None
        yield "zero", 0, None
        yield "NaN", math.nan, None
        yield "Infinity", math.inf, None
        yield "-Infinity", -math.inf, None
        yield "1e400", OVERFLOW, None
        if rule.type == "number":
            yield "large", 1e300, None
            yield "integer-valued", 7, None
        else:
            yield "fraction", 1.5, None
            yield "int64 max", INT64_MAX, None
            yield "int64 min", -INT64_MAX - 1, None
            yield "integral float", float(_valid_value(rule, prop)), "integral_float"
            yield "beyond int64", INT64_MAX + 1, "int64"
            yield "below int64", -INT64_MAX - 2, "int64"
    for kind, v in _wrong_types(rule):
        yield f"wrong type {kind}", v, "string_coercion" if rule.type == "string" else None


def build_corpus(schema: dict[str, Any]) -> list[Case]:
    rules = field_rules(schema)
    props = {r.path: _prop(schema, r) for r in rules}
    nested = {r.path[0] for r in rules if r.in_array}
    items = {a: {r.path[1]: _valid_value(r, props[r.path]) for r in rules if r.path[0] == a}
             for a in nested}  # fmt: skip
    full: dict[str, Any] = {r.name: _valid_value(r, props[r.path]) for r in rules if not r.in_array}
    full.update({a: [dict(item)] for a, item in items.items()})
    minimal = {r.name: full[r.name] for r in rules if r.required}
    for names in any_required(schema):
        minimal[names[0]] = full[names[0]]
    cases = [Case("minimal valid event", _dumps(minimal)), Case("every field", _dumps(full))]

    def with_value(rule: FieldRule, value: Any) -> dict[str, Any]:
        event = dict(full)
        if rule.in_array:  # a second, mutated item beside a valid one
            array, sub = rule.path
            event[array] = [items[array], {**items[array], sub: value}]
        else:
            event[rule.name] = value
        return event

    def without(rule: FieldRule) -> dict[str, Any]:
        if rule.in_array:
            array, sub = rule.path
            return {**full, array: [{k: v for k, v in items[array].items() if k != sub}]}
        return {k: v for k, v in full.items() if k != rule.name}

    for rule in rules:
        where = rule.name
        cases.append(Case(f"{where}: absent", _dumps(without(rule)), where))
        null = _dumps(with_value(rule, None))
        if rule.required:
            cases.append(Case(f"{where}: null", null, where))
        else:
            # twin: the same event with the field absent (the null item beside the valid one)
            twin = with_value(rule, None)
            if rule.in_array:
                array, sub = rule.path
                twin[array] = [items[array], {k: v for k, v in items[array].items() if k != sub}]
            else:
                twin.pop(rule.name)
            cases.append(Case(f"{where}: null", null, where, "null_is_absent", _dumps(twin)))
        for what, value, gap in _values(rule, props[rule.path]):
            text = _dumps(with_value(rule, value))
            twin_text = reason = None
            if gap == "string_coercion":
                twin_text = _dumps(with_value(rule, json.dumps(value, separators=(",", ":"))))
            elif gap in ("integral_float", "int64"):
                reason = f"wrong_type:{where}" if not rule.in_array else "wrong_type"
            elif gap == "timestamp_format":
                reason = "bad_timestamp"
            cases.append(Case(f"{where}: {what}", text, where, gap, twin_text, reason))

    for array in sorted(nested):
        for what, value in (("empty", []), ("text", "a"), ("array of numbers", [1]),
                            ("object", {}), ("two valid items", [items[array]] * 2)):  # fmt: skip
            cases.append(Case(f"{array}: {what}", _dumps({**full, array: value}), array))
        cases.append(
            Case(
                f"{array}: null",
                _dumps({**full, array: None}),
                array,
                "null_is_absent",
                _dumps({k: v for k, v in full.items() if k != array}),
            )
        )
        cases.append(Case(f"{array}: null item", _dumps({**full, array: [None]}), array,
                          "null_is_absent", _dumps({**full, array: []})))  # fmt: skip
    for names in any_required(schema):
        present = {**minimal, **{n: full[n] for n in names}}
        for keep in [(), *((n,) for n in names), names]:
            event = {k: v for k, v in present.items() if k not in names or k in keep}
            cases.append(Case(f"anyOf {names}: only {keep}", _dumps(event), names[0]))
    extras: list[dict[str, Any]] = [{"extra": 1}, {"extra": {"nested": [1, None, "x"]}},
                                    {"RUN_ID": 5}, {"gpus_extra": [{"power_w": -1}]}]  # fmt: skip
    cases += [Case(f"extra field {e}", _dumps({**full, **e})) for e in extras]
    cases.append(Case("extra property in an item", _dumps(
        {**full, **{a: [{**items[a], "extra": -1}] for a in nested}})))  # fmt: skip
    for text in (b"not json", b"", b"[1, 2]", b"null", b'"text"', b"123", b"{",
                 b'{"run_id": "r",}', b"NaN", _dumps(minimal)[:-1]):  # fmt: skip
        cases.append(Case(f"not an object: {text[:30]!r}", text))
    return cases


def spark_reasons(spark: Any, texts: list[bytes]) -> list[str | None]:
    """The job's reason for each record, through the functions the job uses, in one job."""
    from spark_jobs import transforms as T

    rows = [("t", 0, i, t) for i, t in enumerate(texts)]
    raw = spark.createDataFrame(rows, "topic string, partition int, offset long, value binary")
    checked = T.with_reason(T.parse(raw)).select("src_offset", "reason")
    got = {r["src_offset"]: r["reason"] for r in checked.collect()}
    return [got[i] for i in range(len(texts))]


def _excerpt(case: Case) -> str:
    """The targeted field of a row (the rest is the valid event), else the row's start."""
    try:
        doc = json.loads(case.text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and case.field is not None:
        top = case.field.split("/")[0]
        return f"{top}: {json.dumps(doc.get(top, '<absent>'))[:160]}"
    return repr(case.text[:160])


def _table(rows: list[tuple[Case, list[str], str | None]], note: Callable[[Case], str]) -> str:
    return "\n".join(
        f"- {c.label}\n    row:    {_excerpt(c)}\n"
        f"    schema: {[e[:160] for e in errs[:2]] or 'valid'}\n"
        f"    spark:  {reason or 'valid'}{note(c)}"
        for c, errs, reason in rows
    )


def _names(reason: str, field: str) -> bool:
    """Whether a reason blames ``field`` (or cannot name one: not JSON, a bad array item)."""
    if reason in ("not_json", "wrong_type"):
        return True
    if reason == "bad_timestamp":
        return field == "timestamp"
    return reason.partition(":")[2] == field


def test_the_corpus_is_derived_from_the_contract() -> None:
    """Every rule and every constraint of the contract produces rows on both sides of it."""
    schema = load_schema(METRIC_EVENT_SCHEMA)
    cases = build_corpus(schema)
    fields = {c.field for c in cases}
    assert {r.name for r in field_rules(schema)} <= fields
    assert all(names[0] in fields for names in any_required(schema))
    invalid = {c.field for c in cases if c.gap is None and contract_errors(c.text)}
    # every field has a violating row that is not a gap (a bare string's only ones are gaps)
    bare = FieldRule((), "string")
    constrained = {
        r.name for r in field_rules(schema)
        if r.type != "string" or r.required or r.enum is not None
        or (r.min_length, r.max_length) != (bare.min_length, bare.max_length)
    }  # fmt: skip
    assert constrained <= invalid
    assert len({c.label for c in cases}) == len(cases)


def test_the_job_and_the_contract_give_the_same_verdict(spark: Any) -> None:
    cases = build_corpus(load_schema(METRIC_EVENT_SCHEMA))
    twins = [c.twin for c in cases if c.twin is not None]
    reasons = spark_reasons(spark, [c.text for c in cases] + twins)
    twin_reason = dict(zip(twins, reasons[len(cases) :], strict=True))
    mismatches, gap_breaks, wrong_field = [], [], []
    for case, reason in zip(cases, reasons[: len(cases)], strict=True):
        errs = contract_errors(case.text)
        assert reason not in ("late", "absurd_timestamp"), case.label  # time rules: not compared
        if case.gap is not None:
            expected = twin_reason[case.twin] if case.twin is not None else case.spark_reason
            if reason != expected:  # the job behaves as the gap is documented
                gap_breaks.append((case, errs, reason))
        elif (not errs) != (reason is None):
            mismatches.append((case, errs, reason))
        elif reason is not None and case.field is not None and not _names(reason, case.field):
            wrong_field.append((case, errs, reason))

    def gap_note(c: Case) -> str:
        want = c.spark_reason if c.twin is None else f"as {c.twin[:100]!r}"
        return f"\n    gap {c.gap}: {GAPS[str(c.gap)]}; job expected {want}"

    assert not mismatches, (
        f"{len(mismatches)} of {len(cases)} rows: the job and the contract disagree\n"
        + _table(mismatches, lambda c: "")
    )
    assert not gap_breaks, "documented gaps no longer behave as documented\n" + _table(
        gap_breaks, gap_note
    )
    assert not wrong_field, "rejected, but the reason names another field\n" + _table(
        wrong_field, lambda c: f"\n    expected a reason naming {c.field}"
    )
