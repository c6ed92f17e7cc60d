"""Arbitrary documents given to the plan loader and the Segment importer raise only
trackplan's own errors: never a KeyError, TypeError, RecursionError or a hang."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trackplan.engine import compile_plan
from trackplan.errors import PlanError, TrackplanError
from trackplan.plan.load import build_plan, load_plan
from trackplan.plan.segment import export_segment, import_segment

#: more examples for a longer hunt: TRACKPLAN_FUZZ_EXAMPLES=5000 pytest tests/plan
EXAMPLES = int(os.environ.get("TRACKPLAN_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)

KEYWORDS = [
    "type", "properties", "items", "required", "$ref", "pattern", "definitions", "$defs",
    "allOf", "anyOf", "additionalProperties", "enum", "format", "minimum", "$schema", "$id",
    "patternProperties", "const", "x-pii", "labels",
]  # fmt: skip
REFS = [
    "#", "#/definitions/a", "#/definitions/b", "#/$defs/a", "#/properties/x", "other.json",
    "http://127.0.0.1:9/x.json", "#/definitions/a/properties/b", "urn:x", "#anchor",
]  # fmt: skip
SCHEMA_VALUES = {
    "type": st.sampled_from(["object", "string", "integer", "nope", ["string", "null"]]),
    "$ref": st.sampled_from(REFS),
    "pattern": st.sampled_from(["^a", "(", "[a-z]+", "\\d{2}"]),
    "$schema": st.sampled_from([
        "http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema",
        "http://json-schema.org/draft-04/schema#", 5,
    ]),
}  # fmt: skip


def _schema_node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def value_for(key: str) -> st.SearchStrategy[Any]:
        if key in SCHEMA_VALUES:
            return SCHEMA_VALUES[key] | json_values
        if key in ("properties", "definitions", "$defs", "patternProperties"):
            return st.dictionaries(
                st.sampled_from(["a", "b", "x", "a/b", "~"]), children, max_size=3
            )
        if key in ("allOf", "anyOf"):
            return st.lists(children, max_size=3)
        if key in ("items", "additionalProperties"):
            return children
        return json_values

    return st.lists(st.sampled_from(KEYWORDS), max_size=5, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: value_for(k) for k in keys})
    )


schemas = st.recursive(st.booleans() | st.just({}), _schema_node, max_leaves=12)

#: values of the right shape, so that most schemas pass the meta-schema and get compiled
TAME_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "type": st.sampled_from(["object", "string", "integer", "number", ["string", "null"]]),
    "$ref": st.sampled_from(["#", "#/definitions/a", "#/$defs/a", "#/properties/x"]),
    "pattern": st.sampled_from(["^a", "[a-z]+", "\\d{2}"]),
    "required": st.lists(st.sampled_from(["a", "b", "x"]), unique=True, max_size=2),
    "enum": st.lists(scalars, min_size=1, max_size=3),
    "const": scalars,
    "format": st.sampled_from(["date-time", "email", "uri", "ipv4", "unknown-format"]),
    "minimum": st.integers(-5, 5),
    "x-pii": st.sampled_from([{"category": "email", "action": "hash"}, False]),
    "labels": st.just({"team": "x"}),
    "$id": st.sampled_from(["urn:tp:a", "#frag"]),
    "$schema": st.just("http://json-schema.org/draft-07/schema#"),
}


def _tame_node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    def value_for(key: str) -> st.SearchStrategy[Any]:
        if key in ("properties", "definitions", "$defs", "patternProperties"):
            names = ["a", "b", "x", "a/b"] if key != "patternProperties" else ["^a", "b$"]
            return st.dictionaries(st.sampled_from(names), children, max_size=3)
        if key in ("allOf", "anyOf"):
            return st.lists(children, min_size=1, max_size=3)
        if key in ("items", "additionalProperties"):
            return children
        return TAME_VALUES[key]

    return st.lists(st.sampled_from(KEYWORDS), max_size=5, unique=True).flatmap(
        lambda keys: st.fixed_dictionaries({k: value_for(k) for k in keys})
    )


tame_schemas = st.recursive(st.booleans() | st.just({}), _tame_node, max_leaves=12)
tame_rule = st.fixed_dictionaries(
    {"name": st.sampled_from(["A", "B", "a/b", "42_--terrible==\\\"event'++name~!3"])},
    optional={
        "properties": tame_schemas,
        "call": st.fixed_dictionaries({}, optional={"properties": st.fixed_dictionaries(
            {}, optional={"messageId": tame_schemas, "context": tame_schemas})}),
        "version": st.integers(1, 3),
        "labels": st.just({"x": "y"}),
    },
)  # fmt: skip
tame_plans = st.fixed_dictionaries(
    {"name": st.just("Fuzz"), "events": st.lists(tame_rule, max_size=4)},
    optional={
        "draft": st.sampled_from(["draft-07", "2020-12"]),
        "definitions": st.dictionaries(st.sampled_from(["a", "b"]), tame_schemas, max_size=2),
        "common": st.fixed_dictionaries({"call": tame_schemas}),
        "identify": st.fixed_dictionaries({"traits": tame_schemas}),
        "controls": st.fixed_dictionaries({"track": st.fixed_dictionaries({
            "violations": st.sampled_from(["allow", "omit", "block"]),
            "unplanned_properties": st.sampled_from(["allow", "omit", "block"]),
            "unplanned_events": st.sampled_from(["allow", "block"]),
        })}),
    },
)  # fmt: skip


def _rule(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    payload = "traits" if kind in ("identify", "group") else "properties"
    fields: dict[str, st.SearchStrategy[Any]] = {
        payload: schemas | json_values,
        "call": schemas | json_values,
        "version": st.integers(-1, 3) | json_values,
        "description": st.text(max_size=5) | json_values,
        "x-extra": json_values,
    }
    if kind == "track":
        fields["name"] = st.sampled_from(["A", "B", "", "a/b"]) | json_values
    return st.fixed_dictionaries({}, optional=fields)


plan_docs = st.fixed_dictionaries(
    {"name": st.text(max_size=5) | json_values},
    optional={
        "draft": st.sampled_from(["draft-07", "2020-12", "draft-04"]) | json_values,
        "definitions": st.dictionaries(st.sampled_from(["a", "b"]), schemas | json_values),
        "common": _rule("common") | json_values,
        "identify": _rule("identify"),
        "page": _rule("page"),
        "events": st.lists(_rule("track"), max_size=3) | json_values,
        "controls": st.dictionaries(
            st.sampled_from(["track", "identify", "bogus"]),
            st.dictionaries(st.sampled_from(["violations", "unplanned_events"]),
                            st.sampled_from(["allow", "omit", "block", "x"])),
        ) | json_values,
        "version": json_values,
        "x-note": json_values,
    },
)  # fmt: skip


def _exercise(plan: Any) -> None:
    """A plan that loaded must also compile, enforce and export without foreign errors."""
    enforcer = compile_plan(plan)
    for name in plan.event_names[:2]:
        enforcer.enforce({"type": "track", "event": name, "userId": "u", "properties": {"a": 1}})
    export_segment(plan)


@SETTINGS
@given(doc=json_values)
def test_build_plan_on_any_json_raises_only_trackplan_errors(doc: Any) -> None:
    try:
        build_plan("plan.json", doc)
    except TrackplanError:
        pass


@SETTINGS
@given(doc=plan_docs, event_files=st.lists(_rule("track") | json_values, max_size=2))
def test_build_plan_on_plan_shaped_documents_raises_only_trackplan_errors(
    doc: dict[str, Any], event_files: list[Any]
) -> None:
    docs = [(f"events/e{i}.yaml", ev) for i, ev in enumerate(event_files)]
    try:
        plan = build_plan("plan.yaml", doc, {}, docs)
    except TrackplanError:
        return
    try:
        _exercise(plan)
    except TrackplanError:
        pass


@SETTINGS
@given(doc=tame_plans, props=st.dictionaries(st.sampled_from(["a", "b", "x"]), scalars))
@example(  # a $ref into the common rule's own properties, once broken by flattening
    doc={"name": "Fuzz", "events": [], "common": {"call": {
        "type": "object", "properties": {"a": {}, "b": False, "x": {}},
        "allOf": [{"pattern": "^a", "allOf": [False], "type": "object",
                   "$ref": "#/properties/x", "properties": {}}],
        "items": False}}},
    props={},
)
@example(  # a shared definition referring into a rule's root: once a plan whose export failed
    doc={"name": "Fuzz", "events": [],
         "definitions": {"a": {"$ref": "#/properties/x", "type": "object", "properties": {}}},
         "identify": {"traits": {"type": "object",
                                 "definitions": {"a": {"$ref": "#/definitions/a"}}}}},
    props={},
)
@example(  # a ref under an embedded $id: read against that schema, so refused at load
    doc={"name": "Fuzz", "definitions": {"a": {}}, "events": [{"name": "A", "properties": {
        "$id": "urn:tp:a", "type": "object",
        "allOf": [{"type": "object", "properties": {}, "pattern": "^a",
                   "$ref": "#/definitions/a"}]}}]},
    props={},
)
def test_plans_that_load_compile_enforce_and_round_trip_through_segment(
    doc: dict[str, Any], props: dict[str, Any]
) -> None:
    try:
        plan = build_plan("plan.yaml", doc)
    except TrackplanError:
        return
    try:
        enforcer = compile_plan(plan).compile_all()  # (rules compile lazily otherwise)
    except TrackplanError:
        return
    for name in plan.event_names:
        event = {"type": "track", "event": name, "userId": "u", "properties": props}
        enforcer.enforce(event)
    again = import_segment(export_segment(plan), source="again.json")
    assert again.event_names == plan.event_names
    exported = export_segment(plan)
    assert export_segment(import_segment(exported, source="x.json")) == exported


segment_rules = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["TRACK", "COMMON", "IDENTIFY", "GROUP", "PAGE", "SCREEN",
                                 "ALIAS", "track"]) | json_values,
        "key": st.sampled_from(["A", "B", ""]) | json_values,
        "version": st.integers(-1, 3) | json_values,
        "jsonSchema": st.fixed_dictionaries(
            {}, optional={"properties": st.dictionaries(
                st.sampled_from(["properties", "traits", "context", "messageId"]), schemas)},
        ) | schemas | json_values,
        "createdAt": json_values,
    },
)  # fmt: skip
segment_docs = st.one_of(
    json_values,
    st.lists(segment_rules, max_size=4),
    st.fixed_dictionaries({"rules": st.lists(segment_rules, max_size=4)},
                          optional={"name": json_values, "description": json_values}),
    st.fixed_dictionaries({"rules": st.fixed_dictionaries({}, optional={
        "events": st.lists(st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["A", "B"]) | json_values, "rules": schemas | json_values,
            "version": json_values}), max_size=3) | json_values,
        "global": schemas | json_values,
        "identify_traits": st.lists(st.fixed_dictionaries({"rules": schemas}), max_size=2),
    })}, optional={"display_name": json_values, "name": json_values}),
    st.builds(lambda d: {"data": {"trackingPlan": d}}, json_values),
)  # fmt: skip


@SETTINGS
@given(doc=segment_docs)
def test_segment_import_on_any_document_raises_only_trackplan_errors(doc: Any) -> None:
    try:
        plan = import_segment(doc, source="fuzz.json")
    except TrackplanError:
        return
    again = import_segment(export_segment(plan), source="again.json")
    assert again.content() == plan.content()
    try:
        _exercise(plan)
    except TrackplanError:
        pass


@settings(max_examples=40, deadline=None)
@given(doc=plan_docs)
def test_load_plan_from_files_raises_only_trackplan_errors(doc: Any, tmp_path_factory: Any) -> None:
    root: Path = tmp_path_factory.mktemp("plan")
    (root / "plan.json").write_text(json.dumps(doc), encoding="utf-8")
    try:
        load_plan(root)
    except TrackplanError:
        pass


def test_a_definition_referring_outside_the_definitions_is_refused_where_it_is() -> None:
    # found by the round-trip property above: the native plan accepted it, and its Segment
    # export (where definitions travel inside each rule) could not be imported again
    doc = {"name": "P", "definitions": {"a": {"$ref": "#/properties/x", "type": "object"}},
           "identify": {"traits": {"type": "object"}}}
    with pytest.raises(PlanError) as info:
        build_plan("plan.yaml", doc)
    [issue] = info.value.issues
    assert issue.pointer == "/definitions/a/$ref"
    assert "'#/definitions/<name>'" in issue.message
    ok = {"name": "P", "definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"type": "string"}},
          "identify": {"traits": {"type": "object",
                                  "properties": {"x": {"$ref": "#/definitions/a"}}}}}
    build_plan("plan.yaml", ok)
