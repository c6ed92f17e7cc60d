"""A schema's shape (:mod:`trackplan.schema.relax`): value assertions dropped everywhere,
what a value is kept, the input left alone; and what it accepts against jsonschema."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from trackplan.schema.relax import DROPPED, shape_of

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["a", "items"],
    "minProperties": 1,
    "properties": {
        "a": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3, "maxLength": 3},
        "n": {"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.5},
        "e": {"enum": ["x", "y"]},
        "c": {"const": {"required": ["kept"], "pattern": "kept"}},
        "when": {"type": "string", "format": "date-time"},
        # property names that are keyword names are names, not keywords
        "required": {"type": "boolean"},
        "pattern": {"type": "string", "pattern": "^p"},
        "items": {
            "type": "array", "minItems": 1, "maxItems": 3, "uniqueItems": True,
            "items": {"$ref": "#/$defs/item"},
        },
    },
    "additionalProperties": False,
    "dependencies": {"a": ["n"], "n": {"required": ["e"], "properties": {"e": {"type": "string"}}}},
    "allOf": [{"required": ["n"]}, {"properties": {"n": {"type": "integer"}}}],
    "$defs": {"item": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string", "pattern": "^i"}}, "additionalProperties": False}},
}


def _keywords(node: Any, found: set[str]) -> set[str]:
    """Every key used as a keyword: the keys of schema objects, not property names (the
    keys of ``properties`` and ``$defs``) and not data (``const`` and ``enum`` values)."""
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key in ("properties", "$defs", "definitions", "dependencies"):
                for sub in value.values():
                    _keywords(sub, found)
            elif key not in ("const", "enum"):
                _keywords(value, found)
    elif isinstance(node, list):
        for value in node:
            _keywords(value, found)
    return found


def test_value_assertions_are_dropped_everywhere_and_the_rest_kept() -> None:
    before = copy.deepcopy(SCHEMA)
    shape = shape_of(SCHEMA)
    assert SCHEMA == before  # not changed
    props = shape["properties"]
    assert props["a"] == {"type": "string", "maxLength": 3}
    assert props["n"] == {"type": "number"}
    assert props["e"] == {"enum": ["x", "y"]}
    assert props["c"] == {"const": {"required": ["kept"], "pattern": "kept"}}  # data, kept
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert set(props) == set(SCHEMA["properties"])  # names that look like keywords stay
    assert props["pattern"] == {"type": "string"}
    assert props["items"] == {"type": "array", "items": {"$ref": "#/$defs/item"}}
    assert shape["additionalProperties"] is False
    assert shape["allOf"] == [{}, {"properties": {"n": {"type": "integer"}}}]
    assert shape["dependencies"] == {"n": {"properties": {"e": {"type": "string"}}}}
    assert shape["$defs"]["item"] == {"type": "object", "properties": {"id": {
        "type": "string"}}, "additionalProperties": False}
    assert "required" not in shape and "minProperties" not in shape
    # no dropped keyword left where a keyword can stand (there were some before)
    assert _keywords(SCHEMA, set()) & DROPPED
    assert not _keywords(shape, set()) & DROPPED


SIMPLE: dict[str, Any] = {
    "type": "object",
    "required": ["a", "items"],
    "properties": {
        "a": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "n": {"type": "integer", "minimum": 0, "maximum": 10},
        "e": {"enum": ["x", "y"]},
        "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
            "type": "object", "required": ["id"], "additionalProperties": False,
            "properties": {"id": {"type": "string", "minLength": 2}}}},
    },
    "additionalProperties": False,
}
TYPES: dict[str, Any] = {  # what SIMPLE says a value is, and nothing else
    "type": "object",
    "properties": {
        "a": {"type": "string"}, "n": {"type": "integer"}, "e": {"enum": ["x", "y"]},
        "items": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                             "properties": {"id": {"type": "string"}}}},
    },
    "additionalProperties": False,
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_shape_accepts_every_valid_value_and_keeps_types(data: st.DataObject) -> None:
    """Against jsonschema: whatever the schema accepts, its shape accepts; a value the
    shape accepts has the types and enums the schema gives, and nothing else."""
    shape = shape_of(SIMPLE)
    value = data.draw(from_schema(copy.deepcopy(SIMPLE)))
    assert jsonschema.Draft202012Validator(shape).is_valid(value)
    loose = data.draw(from_schema(copy.deepcopy(shape)))
    assert jsonschema.Draft202012Validator(TYPES).is_valid(loose)
    assert shape == TYPES
