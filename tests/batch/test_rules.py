"""Vectorised rules keyword by keyword against jsonschema-rs, and the per-row fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackplan.batch.rules import FORMAT_PREFILTERS, compile_payload, row_failures, to_json
from trackplan.batch.scan import ScanOptions, scan
from trackplan.engine.enforcer import make_validator
from trackplan.plan.model import Plan


@pytest.mark.parametrize("fmt", sorted(FORMAT_PREFILTERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefilter_accepts_only_valid_values(fmt: str, data: st.DataObject) -> None:
    """What a format prefilter lets through without the exact check must be valid."""
    value = data.draw(st.from_regex(FORMAT_PREFILTERS[fmt], fullmatch=True))
    assert make_validator({"format": fmt}).is_valid(value), value


SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 0, "maximum": 10},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"},
    {"enum": ["a", "b", 1, True]},
    {"const": "x"},
    {"type": ["string", "null"]},
    {"type": "boolean"},
    {"type": "string", "format": "email"},
    {"type": "string", "format": "date-time"},
    {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer", "minimum": 0}},
    {"type": "array", "items": {"type": "string", "enum": ["a"]}},
    {"type": "object", "required": ["a"], "additionalProperties": False,
     "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
    {"oneOf": [{"type": "integer"}, {"type": "string"}]},  # no vectorised form
]  # fmt: skip

VALUES: list[Any] = [
    0, 5, 11, -1, 0.5, 1.0, 2.5, "a", "ab", "abcde", "AB", "x", "", True, False,
    "jane@example.com", "nope", "2026-11-01T08:00:00Z", "2026-13-01T08:00:00Z",
    [1], [1, 2, 3], [-1], [], ["a"], ["b"], [None], {"a": 1}, {"b": "x"}, {"a": 1, "c": 2},
]  # fmt: skip


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: ",".join(s))
def test_keyword_by_keyword(schema: dict[str, Any]) -> None:
    """Every value the column can hold, vectorised failures equal the per-row validator's."""
    payload = {"type": "object", "properties": {"v": schema}}
    node = compile_payload(payload, {})
    validator = make_validator(payload)
    by_type: dict[str, list[Any]] = {}
    for v in VALUES:
        try:
            arr = pa.array([v, None])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue
        by_type.setdefault(str(arr.type), []).append(v)
    for values in by_type.values():
        column = pa.array([*values, None])
        struct = pa.StructArray.from_arrays([column], names=["v"])
        got: dict[int, set[tuple[str, str]]] = {}
        for field, keyword, mask in node.evaluate(struct):
            for i, bad in enumerate(mask.to_pylist()):
                if bad:
                    got.setdefault(i, set()).add((field, keyword))
        for i, row in enumerate(struct.to_pylist()):
            expected = row_failures(validator, to_json(row))
            assert got.get(i, set()) == expected, (schema, row)


def test_fallback_rules_are_reported(tmp_path: Path, ecommerce_plan: Plan) -> None:
    from trackplan.batch.check import BatchPlan

    node = compile_payload({"properties": {"v": {"oneOf": [{"type": "integer"}]}}}, {})
    assert [f for f, _ in node.per_row()] == ["v"]
    # the example plan vectorises completely
    assert BatchPlan.build(ecommerce_plan).per_row_rules() == {}


def test_projection_reads_less_and_agrees(tmp_path: Path, ecommerce_plan: Plan) -> None:
    from tests.batch.gen import flat_table, generate

    rows, _, _ = generate(500, seed=9)
    table = flat_table(rows, "Order Completed").append_column(
        "context_user_agent", pa.array(["ua"] * sum(r["event"] == "Order Completed" for r in rows))
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    from trackplan.batch.check import BatchPlan

    needed = BatchPlan.build(ecommerce_plan).needed_columns(table.schema)
    assert needed is not None and "context_user_agent" not in needed and "total" in needed
    from trackplan.batch.readers import dictionary_columns

    # low-cardinality strings are read as dictionaries and checked once per distinct value
    assert {"currency", "payment_method"} <= set(dictionary_columns(path, needed))
    projected = scan(ecommerce_plan, [path], ScanOptions()).report
    whole = scan(ecommerce_plan, [path], ScanOptions(), on_chunk=lambda c, r: None).report
    assert projected == whole and projected["invalid_rows"] > 0
