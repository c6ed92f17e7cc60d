"""SchemaVer by meaning: every worked example of Snowplow's SchemaVer page and every row of
its versioning table comes out as Snowplow says.

Sources (read 2026-12):
* SchemaVer page: https://docs.snowplow.io/docs/api-reference/iglu/common-architecture/schemaver/
  (MODEL "will prevent interaction with any historical data", REVISION "may prevent
  interaction with some historical data", ADDITION "is compatible with all historical
  data"; the addition, revision and model examples of an ad-click schema).
* Versioning table: https://docs.snowplow.io/docs/event-studio/data-structures/versioning/
  ("Add / remove / rename an optional field: non-breaking", ..., "Change the size of an
  existing field: non-breaking"). Non-breaking means not MODEL; breaking means MODEL.
  The Redshift column (required to optional is breaking there) is a warehouse question,
  reported as ``warehouse``, not a class.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import jsonschema
import pytest

from tests.ci.ci_helpers import ROOT
from trackplan.ci.classify import RANK, compare_schemas
from trackplan.ci.inclusion import includes
from trackplan.ci.search import search, shown

SCHEMA = "http://json-schema.org/schema#"

# -- the SchemaVer page's ad-click example, version by version ----------------------------
V1_0_0: dict[str, Any] = {
    "$schema": SCHEMA,
    "type": "object",
    "properties": {"bannerId": {"type": "string"}},
    "required": ["bannerId"],
    "additionalProperties": False,
}
V1_0_1: dict[str, Any] = {
    **V1_0_0,
    "properties": {"bannerId": {"type": "string"}, "impressionId": {"type": "string"}},
}
V1_0_2: dict[str, Any] = {**V1_0_1, "additionalProperties": True}
V1_1_0: dict[str, Any] = {
    **V1_0_2,
    "properties": {**V1_0_2["properties"], "cost": {"type": "number", "minimum": 0}},
}
V2_0_0: dict[str, Any] = {
    "$schema": SCHEMA,
    "type": "object",
    "properties": {"clickId": {"type": "string"}, "cost": {"type": "number", "minimum": 0}},
    "required": ["clickId"],
    "additionalProperties": False,
}


def worst(old: Any, new: Any) -> str:
    changes = compare_schemas(old, new)
    assert changes, "no change found"
    return max((c.cls for c in changes), key=RANK.__getitem__)


def test_addition_example_optional_property_on_closed_object() -> None:
    # "Because the new impressionId is not a required property and because the
    # additionalProperties in our 1-0-0 version was set to false ... an ADDITION"
    assert worst(V1_0_0, V1_0_1) == "ADDITION"
    assert includes(V1_0_0, V1_0_1)


def test_addition_holds_whatever_the_new_property_type() -> None:
    for prop in ({"type": "integer"}, {"type": "string", "format": "uuid"}, {"const": 1}):
        new = copy.deepcopy(V1_0_0)
        new["properties"]["x"] = prop
        assert worst(V1_0_0, new) == "ADDITION", prop


def test_opening_the_object_is_an_addition() -> None:
    # 1-0-1 -> 1-0-2: "modify the additionalProperties property to true"
    assert worst(V1_0_1, V1_0_2) == "ADDITION"


def test_revision_example_property_added_to_open_object() -> None:
    # "someone might have added another cost field in the meantime ... the effective
    # type would be string and not number ... a REVISION ... 1-1-0"
    changes = compare_schemas(V1_0_2, V1_1_0)
    assert [(c.kind, c.pointer, c.cls) for c in changes] == [
        ("property added", "/properties/cost", "REVISION")
    ]
    assert not includes(V1_0_2, V1_1_0)
    found = search(V1_0_2, V1_1_0, hints=frozenset({"cost"}))
    assert found.found and found.survivor
    assert jsonschema.Draft7Validator(V1_0_2).is_valid(found.counterexample)
    assert not jsonschema.Draft7Validator(V1_1_0).is_valid(found.counterexample)
    assert "cost" in found.counterexample


def test_model_example_ad_click_identified_by_click_id() -> None:
    # "identifying an ad click only through a clickId property ... the MODEL is changed"
    changes = compare_schemas(V1_1_0, V2_0_0)
    assert worst(V1_1_0, V2_0_0) == "MODEL"
    assert ("property added", "/properties/clickId", "MODEL") in {
        (c.kind, c.pointer, c.cls) for c in changes
    }


# -- the versioning table, on a closed object (Snowplow's recommended default) -------------
CLOSED: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "maxLength": 20},
        "note": {"type": "string", "maxLength": 20},
        "n": {"type": "integer", "maximum": 30000},
    },
}


def _edit(**changes: Any) -> dict[str, Any]:
    new = copy.deepcopy(CLOSED)
    for key, value in changes.items():
        if key == "required":
            new["required"] = value
        elif value is None:
            del new["properties"][key]
        else:
            new["properties"][key] = value
    return new


def _rename(old: str, to: str) -> dict[str, Any]:
    new = copy.deepcopy(CLOSED)
    new["properties"][to] = new["properties"].pop(old)
    new["required"] = [to if r == old else r for r in new["required"]]
    return new


TABLE: list[tuple[str, dict[str, Any], bool]] = [
    # (row of the table, new schema, breaking?)
    ("add an optional field", _edit(extra={"type": "string"}), False),
    ("remove an optional field", _edit(note=None), False),
    ("rename an optional field", _rename("note", "remark"), False),
    ("add a required field", _edit(extra={"type": "string"}, required=["id", "extra"]), True),
    ("remove a required field", _edit(id=None, required=[]), True),
    ("rename a required field", _rename("id", "key"), True),
    ("change a field from optional to required", _edit(required=["id", "note"]), True),
    ("change a field from required to optional", _edit(required=[]), False),
    ("change the type of an existing field", _edit(n={"type": "string"}), True),
    ("change the size of an existing field (larger)", _edit(id={"type": "string",
                                                                "maxLength": 40}), False),
    ("change the size of an existing field (smaller)", _edit(id={"type": "string",
                                                                 "maxLength": 10}), False),
    ("change the size of an existing field (integer)", _edit(n={"type": "integer",
                                                                "maximum": 100000}), False),
]  # fmt: skip


@pytest.mark.parametrize(("row", "new", "breaking"), TABLE, ids=[t[0] for t in TABLE])
def test_versioning_table(row: str, new: dict[str, Any], breaking: bool) -> None:
    cls = worst(CLOSED, new)
    assert (cls == "MODEL") is breaking, (row, cls)


def test_size_and_optionality_loosened_are_additions() -> None:
    assert worst(CLOSED, _edit(id={"type": "string", "maxLength": 40})) == "ADDITION"
    assert worst(CLOSED, _edit(required=[])) == "ADDITION"
    assert worst(CLOSED, _edit(id={"type": "string", "maxLength": 10})) == "REVISION"
    [change] = compare_schemas(CLOSED, _edit(n={"type": "integer", "maximum": 100000}))
    assert change.warehouse is None  # BIGINT either way: no column change


# -- exact inclusion -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"type": "integer"}, {"type": "number"}, True),
        ({"type": "number"}, {"type": "integer"}, False),
        ({"enum": ["a", "b"]}, {"type": "string", "maxLength": 1}, True),
        ({"enum": ["a", "bb"]}, {"type": "string", "maxLength": 1}, False),
        ({"const": 3}, {"type": "integer", "minimum": 3}, True),
        ({"type": "integer", "minimum": 1}, {"type": "integer", "exclusiveMinimum": 0}, True),
        ({"type": "integer", "minimum": 0}, {"type": "integer", "exclusiveMinimum": 0}, False),
        ({"type": "number", "multipleOf": 0.4}, {"type": "number", "multipleOf": 0.2}, True),
        ({"type": "number", "multipleOf": 0.2}, {"type": "number", "multipleOf": 0.4}, False),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 3},
         {"type": "array", "items": {"type": "number"}}, True),
        ({"type": "array"}, {"type": "array", "items": {"type": "number"}}, False),
        ({"type": "object", "required": ["a", "b"]}, {"type": "object", "required": ["a"]}, True),
        ({"type": "object", "properties": {"a": {"type": "string"}}},
         {"type": "object", "additionalProperties": {"type": "string"}}, False),
        ({"type": "object", "additionalProperties": False, "properties": {"a": {"type": "string"}}},
         {"type": "object", "additionalProperties": {"type": "string"}}, True),
        ({"$ref": "#/definitions/m"}, {"type": "number"}, True),
        ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}, False),
        ({"type": "string", "not": {"const": "x"}}, {"not": {"const": "x"}}, True),
        ({"type": "boolean"}, {"enum": [True, False, None]}, True),
        ({"type": "string"}, False, False),
        (False, {"type": "string"}, True),
    ],
)  # fmt: skip
def test_inclusion_is_decided_exactly(old: Any, new: Any, expected: bool) -> None:
    defs = {"#/definitions/m": {"type": "integer", "minimum": 0}}
    assert includes(old, new, resolve_old=defs.get, resolve_new=defs.get) is expected


def test_every_proved_inclusion_holds_on_generated_values() -> None:
    """includes() never says True where search finds a counterexample."""
    pairs = [
        ({"type": "integer", "minimum": 1}, {"type": "integer", "exclusiveMinimum": 0}),
        ({"enum": ["a", "b"]}, {"type": "string", "maxLength": 1}),
        (V1_0_0, V1_0_1),
        (V1_0_1, V1_0_2),
    ]
    for old, new in pairs:
        assert includes(old, new)
        assert not search(old, new).found, (old, new)


# -- counterexamples in the report -------------------------------------------------------------
def test_uncertain_change_shows_a_masked_counterexample() -> None:
    old = {"type": "object", "properties": {"email": {"type": "string", "maxLength": 40}}}
    new = copy.deepcopy(old)
    new["properties"]["email"]["not"] = {"const": "someone@example.com"}
    [change] = compare_schemas(old, new)
    assert change.cls == "REVISION"
    assert change.counterexample is not None
    assert "someone@example.com" not in change.reason
    assert "someone@example.com" not in change.counterexample
    assert "counterexample: email = " in change.reason
    assert shown({"a": "secret value", "n": 3}) == json.dumps(
        {"a": "s****", "n": 3}, separators=(",", ":")
    )


def test_search_finds_survivors_and_says_when_none_exist() -> None:
    found = search({"type": "string", "format": "date-time"}, {"type": "string", "format": "date"})
    assert found.found and not found.survivor
    changes = compare_schemas(
        {"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}
    )
    assert [c.cls for c in changes] == ["MODEL"]


def test_without_hypothesis_the_class_is_conservative() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "from trackplan.ci.classify import compare_schemas\n"
        "[c] = compare_schemas({'type': 'string'}, {'type': 'string', 'not': {'const': 'x'}})\n"
        "print(c.cls); print(c.reason)\n"
        "[d] = compare_schemas({'type': 'string', 'maxLength': 5},"
        " {'type': 'string', 'maxLength': 9})\n"
        "print(d.cls)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    cls, reason, exact = done.stdout.splitlines()
    assert cls == "MODEL"
    assert "could not prove" in reason and "hypothesis" in reason and "[search]" in reason
    assert exact == "ADDITION"  # exact decisions need no search
