"""Table of change cases with the SchemaVer class each must get, by what the change does to
the set of valid values (Snowplow's SchemaVer page: ADDITION keeps all historical data valid,
REVISION may break some, MODEL breaks any)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.ci.ci_helpers import make_plan
from trackplan.ci.classify import RANK, column_type, compare_schemas
from trackplan.ci.diff import diff_plans

BASE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "maxLength": 10, "description": "Id."},
        "n": {"type": "integer", "minimum": 0, "maximum": 10},
        "at": {"type": "string", "format": "date-time"},
        "tier": {"enum": ["free", "pro"]},
        "email": {
            "type": "string",
            "maxLength": 254,
            "x-pii": {"category": "email", "action": "hash"},
        },
        "flag": {"type": "boolean", "x-pii": False},
        "tags": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 8}},
        "kind": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer"}]},
        "box": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"w": {"type": "number"}},
        },
        "total": {"$ref": "#/definitions/money"},
    },
}
DEFS = {"money": {"type": "number", "minimum": 0, "maximum": 100}}
OPEN = {k: v for k, v in BASE.items() if k != "additionalProperties"}

Mutation = Callable[[dict[str, Any]], None]


def _parent(schema: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The object holding the dotted ``path`` in ``schema``, and the last key of the path."""
    *head, last = path.split(".")
    node = schema
    for key in head:
        node = node[key]
    return node, last


def _set(path: str, value: Any) -> Mutation:
    def apply(schema: dict[str, Any]) -> None:
        node, key = _parent(schema, path)
        node[key] = value

    return apply


def _del(path: str) -> Mutation:
    def apply(schema: dict[str, Any]) -> None:
        node, key = _parent(schema, path)
        del node[key]

    return apply


def _both(*steps: Mutation) -> Mutation:
    def apply(schema: dict[str, Any]) -> None:
        for step in steps:
            step(schema)

    return apply


P = "properties"
# (case id, base schema, mutation, expected most severe class, expected change kind)
CASES: list[tuple[str, dict[str, Any], Mutation, str, str]] = [
    (
        "add optional nullable to closed",
        BASE,
        _set(f"{P}.note", {"type": ["string", "null"], "maxLength": 9}),
        "ADDITION",
        "property added",
    ),
    (
        "add optional non-null to closed",
        BASE,
        _set(f"{P}.note", {"type": "string"}),
        "ADDITION",
        "property added",
    ),
    (
        "add required property",
        BASE,
        _both(_set(f"{P}.note", {"type": ["string", "null"]}), _set("required", ["id", "note"])),
        "MODEL",
        "property added",
    ),
    (
        "add optional nullable to open",
        OPEN,
        _set(f"{P}.note", {"type": ["string", "null"]}),
        "REVISION",
        "property added",
    ),
    (
        "add nullable via ref to closed",
        BASE,
        _set(f"{P}.paid", {"$ref": "#/definitions/money"}),
        "ADDITION",
        "property added",
    ),
    ("remove property from closed", BASE, _del(f"{P}.n"), "REVISION", "property removed"),
    ("remove property from open", OPEN, _del(f"{P}.n"), "ADDITION", "property removed"),
    ("property becomes required", BASE, _set("required", ["id", "n"]), "MODEL", "required added"),
    ("property no longer required", BASE, _set("required", []), "ADDITION", "required removed"),
    ("integer widened to number", BASE, _set(f"{P}.n.type", "number"), "ADDITION", "type widened"),
    (
        "number restricted to integer",
        BASE,
        _set(f"{P}.total", {"type": "integer"}),
        "REVISION",
        "type restricted",
    ),
    (
        "string changed to integer",
        BASE,
        _set(f"{P}.id", {"type": "integer"}),
        "MODEL",
        "type changed",
    ),
    (
        "null added to type",
        BASE,
        _set(f"{P}.n.type", ["integer", "null"]),
        "ADDITION",
        "type widened",
    ),
    (
        "null removed from type",
        BASE,
        _both(_set(f"{P}.n.type", ["integer", "null"]), _set("x", 0)),
        "REVISION",
        "type restricted",
    ),
    ("maxLength raised", BASE, _set(f"{P}.id.maxLength", 20), "ADDITION", "constraint loosened"),
    ("maxLength lowered", BASE, _set(f"{P}.id.maxLength", 5), "REVISION", "constraint tightened"),
    ("maxLength removed", BASE, _del(f"{P}.id.maxLength"), "ADDITION", "constraint loosened"),
    ("minLength added", BASE, _set(f"{P}.id.minLength", 1), "REVISION", "constraint tightened"),
    ("minimum raised", BASE, _set(f"{P}.n.minimum", 1), "REVISION", "constraint tightened"),
    ("maximum removed", BASE, _del(f"{P}.n.maximum"), "ADDITION", "constraint loosened"),
    (
        "exclusiveMaximum added",
        BASE,
        _set(f"{P}.n.exclusiveMaximum", 9),
        "REVISION",
        "constraint tightened",
    ),
    ("multipleOf added", BASE, _set(f"{P}.n.multipleOf", 2), "REVISION", "constraint tightened"),
    (
        "pattern added",
        BASE,
        _set(f"{P}.id.pattern", "^[a-z]+$"),
        "REVISION",
        "constraint tightened",
    ),
    ("format added", BASE, _set(f"{P}.id.format", "uuid"), "REVISION", "constraint tightened"),
    ("format changed", BASE, _set(f"{P}.at.format", "date"), "MODEL", "constraint changed"),
    ("enum added to string", BASE, _set(f"{P}.id.enum", ["a", "b"]), "REVISION", "enum added"),
    (
        "enum values added",
        BASE,
        _set(f"{P}.tier.enum", ["free", "pro", "max"]),
        "ADDITION",
        "enum values added",
    ),
    (
        "enum values removed",
        BASE,
        _set(f"{P}.tier.enum", ["free"]),
        "REVISION",
        "enum values removed",
    ),
    (
        "enum replaced by type",
        BASE,
        _set(f"{P}.tier", {"type": "string", "maxLength": 5}),
        "ADDITION",
        "type restricted",
    ),
    ("const added", BASE, _set(f"{P}.id.const", "x"), "REVISION", "enum added"),
    (
        "object closed",
        OPEN,
        _set("additionalProperties", False),
        "REVISION",
        "additionalProperties changed",
    ),
    (
        "object opened",
        BASE,
        _del("additionalProperties"),
        "ADDITION",
        "additionalProperties changed",
    ),
    (
        "description changed",
        BASE,
        _set(f"{P}.id.description", "The id."),
        "PATCH",
        "description changed",
    ),
    ("title added", BASE, _set(f"{P}.n.title", "N"), "PATCH", "annotation changed"),
    ("examples added", BASE, _set(f"{P}.n.examples", [1, 2]), "PATCH", "annotation changed"),
    ("x- annotation added", BASE, _set(f"{P}.n.x-owner", "growth"), "PATCH", "annotation changed"),
    ("becomes PII", BASE, _set(f"{P}.id.x-pii", "email"), "REVISION", "PII annotation changed"),
    (
        "PII action loosened",
        BASE,
        _set(f"{P}.email.x-pii", {"category": "email", "action": "allow"}),
        "REVISION",
        "PII annotation changed",
    ),
    (
        "not PII written another way",
        BASE,
        _set(f"{P}.flag.x-pii", {"category": "none"}),
        "PATCH",
        "PII annotation changed",
    ),
    ("nested required added", BASE, _set(f"{P}.box.required", ["w"]), "MODEL", "required added"),
    (
        "nested optional nullable added",
        BASE,
        _set(f"{P}.box.properties.h", {"type": ["number", "null"]}),
        "ADDITION",
        "property added",
    ),
    (
        "nested type restricted",
        BASE,
        _set(f"{P}.box.properties.w.type", "integer"),
        "REVISION",
        "type restricted",
    ),
    (
        "array items widened",
        BASE,
        _set(f"{P}.tags.items.maxLength", 80),
        "ADDITION",
        "constraint loosened",
    ),
    (
        "array items type changed",
        BASE,
        _set(f"{P}.tags.items", {"type": "integer"}),
        "MODEL",
        "type changed",
    ),
    ("minItems added", BASE, _set(f"{P}.tags.minItems", 1), "REVISION", "constraint tightened"),
    (
        "uniqueItems added",
        BASE,
        _set(f"{P}.tags.uniqueItems", True),
        "REVISION",
        "constraint tightened",
    ),
    (
        "anyOf alternative added",
        BASE,
        _set(
            f"{P}.kind.anyOf",
            [{"type": "string", "maxLength": 3}, {"type": "integer"}, {"type": "boolean"}],
        ),
        "ADDITION",
        "type widened",
    ),
    (
        "anyOf alternative removed",
        BASE,
        _set(f"{P}.kind.anyOf", [{"type": "integer"}]),
        "REVISION",
        "type changed",
    ),
    ("not added", BASE, _set(f"{P}.id.not", {"const": "x"}), "REVISION", "constraint changed"),
    (
        "propertyNames added",
        BASE,
        _set(f"{P}.box.propertyNames", {"maxLength": 3}),
        "REVISION",
        "constraint changed",
    ),
    ("ref inlined unchanged", BASE, _set(f"{P}.total", dict(DEFS["money"])), "NONE", ""),
    (
        "ref replaced by another type",
        BASE,
        _set(f"{P}.total", {"type": "string"}),
        "MODEL",
        "type changed",
    ),
]


def _fix(case_id: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The "null removed" case starts from a nullable n; undo the marker key."""
    schema.pop("x", None)
    return schema


@pytest.mark.parametrize(
    ("case_id", "base", "mutate", "expected", "kind"), CASES, ids=[c[0] for c in CASES]
)
def test_change_class(
    case_id: str, base: dict[str, Any], mutate: Mutation, expected: str, kind: str
) -> None:
    old_schema = copy.deepcopy(base)
    new_schema = copy.deepcopy(base)
    mutate(new_schema)
    _fix(case_id, new_schema)
    if case_id == "null removed from type":
        old_schema, new_schema = new_schema, copy.deepcopy(base)
    old = make_plan(old_schema, definitions=DEFS)
    new = make_plan(new_schema, definitions=DEFS)
    changes = diff_plans(old, new).changes
    if expected == "NONE":
        assert changes == ()
        return
    assert changes, f"{case_id}: no change found"
    worst = max((c.cls for c in changes), key=RANK.__getitem__)
    assert worst == expected, [(c.kind, c.cls, c.reason) for c in changes]
    assert kind in {c.kind for c in changes}
    for c in changes:
        assert c.event == "Order Completed"
        assert c.pointer.startswith("/events/0/properties")
        assert c.reason


def test_table_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert {c[3] for c in CASES} >= {"MODEL", "REVISION", "ADDITION", "PATCH"}


def test_plan_controls_close_the_payload_root() -> None:
    nullable = {"type": ["string", "null"], "maxLength": 5}
    old = {"type": "object", "properties": {"a": {"type": "string"}}}
    new = copy.deepcopy(old)
    new["properties"]["b"] = nullable
    for setting, expected in (("allow", "REVISION"), ("omit", "ADDITION"), ("block", "ADDITION")):
        controls = {"track": {"unplanned_properties": setting}}
        changes = diff_plans(
            make_plan(old, controls=controls), make_plan(new, controls=controls)
        ).changes
        assert [c.cls for c in changes] == [expected], setting


def test_definition_change_reaches_every_event_using_it() -> None:
    events = [
        {
            "name": n,
            "version": 1,
            "description": "d",
            "properties": {
                "type": "object",
                "properties": {"total": {"$ref": "#/definitions/money"}},
            },
        }
        for n in ("Order Completed", "Order Refunded")
    ]
    wider = {"money": {"type": "number", "minimum": 0, "maximum": 1000}}
    diff = diff_plans(make_plan(events, definitions=DEFS), make_plan(events, definitions=wider))
    assert sorted(c.event for c in diff.changes) == ["Order Completed", "Order Refunded"]
    assert {c.pointer for c in diff.changes} == {
        "/events/0/properties/properties/total/maximum",
        "/events/1/properties/properties/total/maximum",
    }


def test_warehouse_column_changes_are_noted() -> None:
    assert column_type({"type": "integer"}) == "BIGINT"
    assert column_type({"type": "string", "format": "date-time"}) == "TIMESTAMP"
    changes = compare_schemas(
        {"type": "string", "maxLength": 5}, {"type": "string", "maxLength": 50}
    )
    assert [c.warehouse for c in changes] == ["VARCHAR(5) -> VARCHAR(50)"]
    assert (
        compare_schemas({"type": "string"}, {"type": "string", "description": "x"})[0].warehouse
        is None
    )


def test_recursive_definitions_do_not_loop() -> None:
    tree = {
        "type": "object",
        "properties": {"child": {"$ref": "#/definitions/node"}, "v": {"type": "integer"}},
    }
    defs_old = {"node": tree}
    defs_new = {"node": {**tree, "properties": {**tree["properties"], "v": {"type": "number"}}}}
    payload = {"type": "object", "properties": {"root": {"$ref": "#/definitions/node"}}}
    changes = diff_plans(
        make_plan(payload, definitions=defs_old), make_plan(payload, definitions=defs_new)
    ).changes
    assert changes and all(c.cls == "ADDITION" for c in changes)


def test_reasons_of_rarer_changes_are_pinned() -> None:
    def seen(old: Any, new: Any) -> list[tuple[str, str, str, str]]:
        return [(c.kind, c.pointer, c.cls, c.reason) for c in compare_schemas(old, new)]

    req = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    assert seen(req, {"type": "object"}) == [
        (
            "property removed",
            "/properties/a",
            "ADDITION",
            "removed: old data stays valid (the object is open) but the column is no longer "
            "filled; it was required",
        )
    ]
    pat = {"patternProperties": {"^x_": {"type": "string"}}}
    assert seen({"patternProperties": {}}, pat) == [
        (
            "constraint tightened",
            "/patternProperties/^x_",
            "REVISION",
            "patternProperties entry added: old data may not match it; counterexample: the "
            'value = {"x_":null} was valid and is not now',
        )
    ]
    assert seen({"additionalProperties": {}}, {"additionalProperties": {"type": "string"}}) == [
        ("type restricted", "/additionalProperties/type", "REVISION",
         "type restricted from any to string: old data may be invalid"),
    ]  # fmt: skip
    assert seen({"items": {"type": "string"}}, {"items": [{"type": "string"}]}) == [
        # old arrays of strings are valid tuples too: no counterexample exists
        (
            "type changed",
            "/items",
            "REVISION",
            "array item schema changed shape; could not "
            "prove old data stays valid (no counterexample found)",
        )
    ]


def test_schemas_deeper_than_the_json_encoder_still_compare() -> None:
    # orjson stops at 255 levels; plans may nest deeper (the loader allows 512)
    def deep(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
        schema = leaf
        for _ in range(levels):
            schema = {"type": "object", "properties": {"a": schema}}
        return schema

    changes = compare_schemas(deep(200, {"type": "string"}), deep(200, {"type": "integer"}))
    assert [(c.kind, c.cls) for c in changes] == [("type changed", "MODEL")]
    assert changes[0].pointer.endswith("/properties/a/type")
    assert compare_schemas(deep(200, {"type": "string"}), deep(200, {"type": "string"})) == []
