"""The fast validator's flattened schema accepts exactly what the original accepts.

The reference is the ``jsonschema`` package on both schemas: generated ``allOf`` schemas
against generated instances, every whole-call schema of the example plan against the
example events, and the root ``allOf`` cases of the official JSON Schema Test Suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackplan.engine import compile_plan
from trackplan.plan.load import load_plan
from trackplan.schema.flatten import flatten, merge

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / ".." / "shared" / "fixtures" / "json-schema-test-suite" / "tests"

LEAVES: list[Any] = [
    True, False, {}, {"type": "object"}, {"type": "string"}, {"type": ["string", "null"]},
    {"type": "integer"}, {"minimum": 1}, {"maximum": 5}, {"maxLength": 3}, {"minLength": 1},
    {"enum": [1, "a", None]}, {"const": 1}, {"const": True}, {"required": ["a"]},
    {"required": ["b"]}, {"anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
    {"not": {"type": "null"}}, {"additionalProperties": False},
    {"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
    {"$ref": "#/definitions/pos"}, {"pattern": "^x"}, {"description": "only words"},
    {"items": {"type": "integer"}}, {"x-pii": "email", "type": "string"},
]  # fmt: skip


def schemas(depth: int = 2) -> st.SearchStrategy[Any]:
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf
    inner = schemas(depth - 1)
    props = st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
    obj = st.builds(
        lambda p, extra: {"type": "object", "properties": p, **extra},
        props,
        st.sampled_from([{}, {"required": ["a"]}, {"additionalProperties": False},
                         {"description": "d"}]),
    )  # fmt: skip
    return st.one_of(leaf, obj, props.map(lambda p: {"properties": p}))


def roots() -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(schemas(), min_size=1, max_size=4).map(
        lambda branches: {
            "definitions": {"pos": {"type": "integer", "minimum": 0}},
            "allOf": branches,
        }
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 8) | st.sampled_from(["", "a", "xyz", "xxxx"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4),
    max_leaves=8,
)


def valid(schema: Any, instance: Any) -> bool:
    return bool(jsonschema.Draft7Validator(schema).is_valid(instance))


EXAMPLES = int(os.environ.get("TP_EXAMPLES", "400"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=roots(), instances=st.lists(JSON, min_size=1, max_size=6))
def test_flatten_keeps_the_verdict(schema: dict[str, Any], instances: list[Any]) -> None:
    flat = flatten(schema)
    jsonschema.Draft7Validator.check_schema(flat)
    for instance in instances:
        assert valid(flat, instance) == valid(schema, instance)


@settings(max_examples=EXAMPLES, deadline=None)
@given(a=schemas(), b=schemas(), instances=st.lists(JSON, min_size=1, max_size=6))
def test_merge_is_the_conjunction(a: Any, b: Any, instances: list[Any]) -> None:
    both = {"definitions": {"pos": {"type": "integer", "minimum": 0}}, "allOf": [a, b]}
    merged = {"definitions": both["definitions"], "allOf": [merge(a, b)]}
    for instance in instances:
        assert valid(merged, instance) == valid(both, instance)


def test_merges_the_branches_of_a_call() -> None:
    envelope = {"type": "object", "properties": {"messageId": {"type": "string",
                "maxLength": 100}}, "required": ["event"]}  # fmt: skip
    common = {"type": "object", "properties": {"messageId": {"type": "string",
              "minLength": 1, "maxLength": 100}}}  # fmt: skip
    rule = {"properties": {"properties": {"type": "object", "additionalProperties": False}}}
    flat = flatten({"allOf": [envelope, common, rule]})
    assert "allOf" not in flat
    assert flat["properties"]["messageId"] == {"type": "string", "maxLength": 100,
                                               "minLength": 1}  # fmt: skip
    assert flat["required"] == ["event"]
    assert flat["properties"]["properties"]["additionalProperties"] is False


def test_keeps_what_reads_its_siblings() -> None:
    ref = {"$ref": "#/definitions/pos", "type": "string"}  # draft-07: type is ignored
    flat = flatten({"definitions": {"pos": {"minimum": 0}}, "allOf": [ref, {"type": "integer"}]})
    assert ref in flat["allOf"]
    assert valid(flat, 3) and not valid(flat, -1) and not valid(flat, "a")


def test_example_plan_schemas_agree_on_example_events() -> None:
    enforcer = compile_plan(load_plan(ROOT / "plans" / "ecommerce"))
    events = [orjson.loads(x) for x in (ROOT / "examples" / "events.ndjson").read_bytes()
              .splitlines()]  # fmt: skip
    checked = 0
    for compiled in enforcer.compiled_rules():
        flat = flatten(compiled.schema)
        assert flat is not compiled.schema  # every call schema has branches to merge
        reference = jsonschema.Draft7Validator(compiled.schema,
                                               format_checker=jsonschema.FormatChecker())
        flat_ref = jsonschema.Draft7Validator(flat, format_checker=jsonschema.FormatChecker())
        for event in events:
            assert flat_ref.is_valid(event) == reference.is_valid(event)
            assert compiled.validator.is_valid(event) == reference.is_valid(event)
            checked += 1
    assert checked > 1000


def _suite_cases() -> list[Any]:
    base = SUITE / "draft7"
    if not base.is_dir():
        reason = "../shared/fixtures/json-schema-test-suite is absent: suite cases not run"
        return [pytest.param({}, [], marks=pytest.mark.skip(reason=reason), id="suite-absent")]
    out = []
    for path in sorted(base.glob("*.json")):
        for group in json.loads(path.read_text()):
            schema = group["schema"]
            text = json.dumps(schema)
            if "$id" in text or "://" in text or path.stem == "refRemote":
                continue  # remote documents: refused by trackplan, not this module's concern
            if isinstance(schema, dict) and "allOf" in schema:
                out.append(pytest.param(schema, group["tests"],
                                        id=f"{path.stem}:{group['description']}"))
    return out


@pytest.mark.parametrize(("schema", "tests"), _suite_cases())
def test_suite_allof_cases(schema: dict[str, Any], tests: list[dict[str, Any]]) -> None:
    flat = flatten(schema)
    for case in tests:
        assert valid(flat, case["data"]) == case["valid"], case["description"]


def test_suite_is_present_or_skipped_with_a_reason() -> None:
    if not (SUITE / "draft7").is_dir():
        pytest.skip("../shared/fixtures/json-schema-test-suite is absent: suite cases not run")
    assert len(_suite_cases()) > 5


def test_refs_into_the_branches_keep_the_schema_whole() -> None:
    # the assembled call schema rewrites a rule's own "#/properties/x" to its place in
    # allOf; merging the branches would leave such a ref pointing nowhere
    from trackplan.schema.validator import make_validator

    schema: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "allOf": [
            {"type": "object", "properties": {"messageId": {"type": "string"}}},
            {"type": "object", "properties": {"x": {"type": "string"}},
             "allOf": [{"$ref": "#/allOf/1/properties/x"}]},
        ],
    }
    assert flatten(schema) is schema
    fast, ref = make_validator(flatten(schema)), jsonschema.Draft7Validator(schema)
    for instance in ({"x": "a"}, {"x": 1}, {}, "s", {"messageId": 2}):
        assert fast.is_valid(instance) == ref.is_valid(instance), instance
    with_defs = {**schema, "definitions": {"s": {"type": "string"}},
                 "allOf": [{"properties": {"a": {"$ref": "#/definitions/s"}}},
                           {"required": ["a"]}]}
    assert flatten(with_defs) is not with_defs  # refs into the definitions stay valid
