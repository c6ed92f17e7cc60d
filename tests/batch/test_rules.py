"""Vectorised rules keyword by keyword against jsonschema-rs, and the per-row fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackplan.batch.formats import FormatCheck
from trackplan.batch.rules import FORMAT_PREFILTERS, compile_payload, row_failures, to_json
from trackplan.batch.scan import ScanOptions, scan
from trackplan.plan.model import Plan
from trackplan.schema.validator import make_validator


@pytest.mark.parametrize("fmt", sorted(FORMAT_PREFILTERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_prefilter_accepts_only_valid_values(fmt: str, data: st.DataObject) -> None:
    """What a format prefilter lets through without the exact check must be valid."""
    value = data.draw(st.from_regex(FORMAT_PREFILTERS[fmt], fullmatch=True))
    assert make_validator({"format": fmt}).is_valid(value), value


_ALNUM = st.text("abcXYZ0189", min_size=0, max_size=70)
_LOCAL = st.text("abcXYZ0189.+_-é@ ", min_size=0, max_size=70)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    common=st.lists(_ALNUM, min_size=1, max_size=40),
    odd=st.lists(_LOCAL, max_size=20),
    domain=st.sampled_from(["example.com", "mail.example.co.uk", "x-y.org", "-bad.com", "a_b.com"]),
)
def test_email_fast_path_agrees_with_exact_check(
    common: list[str], odd: list[str], domain: str
) -> None:
    """Emails at a frequent domain: the fast path flags exactly what jsonschema-rs rejects."""
    values: list[str | None] = [f"{local}@{domain}" for local in common + odd] + [None]
    values += ["@" + domain, "a@@" + domain, "a@" + domain + ".", "plain"]
    arr = pa.array(values, pa.string())
    exact = make_validator({"format": "email"})
    bad = FormatCheck("email").failing(arr)
    got = bad.to_pylist() if bad is not None else [False] * len(values)
    assert got == [v is not None and not exact.is_valid(v) for v in values]


def test_email_fast_path_is_taken(ecommerce_plan: Plan) -> None:
    """A column of one domain is decided without the regex: only leftovers are matched."""
    check = FormatCheck("email")
    arr = pa.array([f"user{i}@example.com" for i in range(5000)] + ["no", "a.b@example.com"])
    sure = check._email_fast(arr)
    assert sure is not None and sure.to_pylist() == [True] * 5000 + [False, False]
    bad = check.failing(arr)
    assert bad is not None and bad.to_pylist() == [False] * 5000 + [True, False]


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
    {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string", "maxLength": 1}]},
    {"allOf": [{"minimum": 1}, {"maximum": 3}, {"type": "integer"}]},
    {"oneOf": [{"type": "integer"}, {"type": "string"}]},  # no vectorised form
]  # fmt: skip

VALUES: list[Any] = [
    0, 5, 11, -1, 0.5, 1.0, 2.5, "a", "ab", "abcde", "AB", "x", "", True, False,
    "jane@example.com", "nope", "203.0.113.9", "::1", "2001:db8::1", "1.2.3",
    "2026-11-01T08:00:00Z", "2026-13-01T08:00:00Z",
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
    # the example plan vectorises completely; the reserved consent event's map of
    # category -> boolean (additionalProperties with a schema) is checked per row
    assert BatchPlan.build(ecommerce_plan).per_row_rules() == {
        "Segment Consent Preference Updated": [
            "context.consent.categoryPreferences (additionalProperties)"
        ]
    }


def test_projection_reads_less_and_agrees(tmp_path: Path, ecommerce_plan: Plan) -> None:
    from tests.batch.gen import flat_table, generate

    rows, _, _ = generate(500, seed=9)
    table = flat_table(rows, "Order Completed").append_column(
        "context_locale", pa.array(["en-GB"] * sum(r["event"] == "Order Completed" for r in rows))
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    from trackplan.batch.check import BatchPlan

    needed = BatchPlan.build(ecommerce_plan).needed_columns(table.schema)
    assert needed is not None and "context_locale" not in needed and "total" in needed
    from trackplan.batch.readers import dictionary_columns

    # low-cardinality strings are read as dictionaries and checked once per distinct value
    assert {"currency", "payment_method"} <= set(dictionary_columns(path, needed))
    projected = scan(ecommerce_plan, [path], ScanOptions()).report
    whole = scan(ecommerce_plan, [path], ScanOptions(), on_chunk=lambda c, r: None).report
    assert projected == whole and projected["invalid_rows"] > 0


def test_nested_dictionary_reads_agree(tmp_path: Path, ecommerce_plan: Plan) -> None:
    """Repetitive strings inside the products list are read as dictionaries, same verdicts."""
    from tests.batch.gen import flat_table, generate
    from trackplan.batch.check import BatchPlan
    from trackplan.batch.readers import dictionary_columns

    rows, _, _ = generate(1500, seed=5)
    for i, row in enumerate(rows):
        for product in row["properties"].get("products") or []:
            product["url"] = "not a uri" if i % 97 == 0 else f"https://shop.example.com/p/{i % 7}"
    table = flat_table(rows, "Order Completed")
    path = tmp_path / "orders.parquet"
    pq.write_table(table, path, row_group_size=400)
    needed = BatchPlan.build(ecommerce_plan).needed_columns(table.schema)
    assert "products.list.element.url" in dictionary_columns(path, needed)
    projected = scan(ecommerce_plan, [path], ScanOptions(batch_rows=300)).report
    whole = scan(ecommerce_plan, [path], ScanOptions(), on_chunk=lambda c, r: None).report
    assert projected == whole
    assert any(k.endswith("products[].url format") for k in projected["by_rule"])


_CONTEXTS = [{"ip": "1.2.3.4", "library": {"name": "py"}}, {"ip": "nope"}]
_FLAT_SOURCES = {
    "messageId": "id",
    "context.ip": "context_ip",
    "context.library.name": "context_library_name",
}


@pytest.mark.parametrize(
    ("columns", "sources"),
    [
        ({"id": ["m1", "m" * 101], "context_ip": ["1.2.3.4", "nope"],
          "context_library_name": ["py", None]}, _FLAT_SOURCES),
        ({"message_id": ["m1", "m" * 101], "context": _CONTEXTS},
         {"messageId": "message_id", "context": "context"}),
        ({"messageId": ["m1", "m" * 101], "context": _CONTEXTS},
         {"messageId": "messageId", "context": "context"}),
    ],
    ids=["flat", "nested-snake", "nested-camel"],
)  # fmt: skip
def test_call_fields_found_in_every_layout(
    ecommerce_plan: Plan, columns: dict[str, Any], sources: dict[str, str]
) -> None:
    """messageId and context.* of the common rule: the same verdicts whatever the spelling."""
    from trackplan.batch.check import BatchPlan
    from trackplan.batch.mapping import call_struct

    bp = BatchPlan.build(ecommerce_plan)
    assert bp.common is not None
    batch = pa.RecordBatch.from_pydict(columns)
    arr, found = call_struct(batch, bp.common.schema, ecommerce_plan.definitions)
    assert found == sources
    got = {(f, k): m.to_pylist() for f, k, m in bp.common.node.evaluate(arr) if any(m.to_pylist())}
    assert got == {
        ("messageId", "maxLength"): [False, True],
        ("context.ip", "anyOf"): [False, True],
    }
    for i, row in enumerate(arr.to_pylist()):  # and the per-row engine agrees
        expected = row_failures(bp.common.validator, to_json(row))
        assert expected == {key for key, mask in got.items() if mask[i]}


@pytest.mark.parametrize("fmt", ["ipv4", "uri", "email", "date-time"])
def test_format_check_agrees_with_exact_check_on_both_sides_of_the_prefilter_threshold(
    fmt: str,
) -> None:
    """Short arrays skip the prefilter, long ones use it: both flag what jsonschema-rs does."""
    from trackplan.batch.formats import PREFILTER_MIN

    odd = ["", "nope", "1.2.3", "999.1.2.3", "01.2.3.4", "2001:db8::1", "a@b", "http//x",
           "https://shop.example.com/p/1", "10.0.0.1", "user@example.com",
           "2026-12-07T03:00:00Z", "2026-02-30T03:00:00Z", None]  # fmt: skip
    n = PREFILTER_MIN
    common = {
        "ipv4": [f"10.{i % 256}.{i // 256 % 256}.7" for i in range(n)],
        "uri": [f"https://shop.example.com/p/{i}" for i in range(n)],
        "email": [f"user.{i}@mail.example.com" for i in range(n)],
        "date-time": [f"2026-01-{1 + i % 28:02d}T10:00:{i % 60:02d}Z" for i in range(n)],
    }[fmt]
    exact = make_validator({"format": fmt})
    for values in (odd, common + odd):
        arr = pa.array(values, pa.string())
        bad = FormatCheck(fmt).failing(arr)
        got = bad.to_pylist() if bad is not None else [False] * len(values)
        assert got == [v is not None and not exact.is_valid(v) for v in values]
