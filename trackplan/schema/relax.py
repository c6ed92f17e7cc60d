"""A schema's *shape*: the schema without the assertions on values that say nothing about
what a value is (which properties are required, patterns, numeric bounds, size bounds).

An event valid against the shape has, at every place the schema describes unconditionally
(through ``properties``, ``items``, ``allOf`` and local ``$ref``), the types, constants,
enums, formats, maximum lengths and closed key sets the schema gives there. That is all the
generated PII transform (:mod:`trackplan.pii.fastpath`) relies on, so an event that breaks
only the dropped assertions (a required property missing, a pattern or a range not met) can
take the transform built for valid events instead of the general walk.

Only keywords are dropped, never added: inside ``not``, ``oneOf`` or a condition, dropping
one may make the shape refuse more (an event then takes the general walk), never accept a
value of another type where the schema fixes one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shape_of", "DROPPED"]

#: Assertions on values that leave a value's type, constants and key set as they are.
DROPPED = frozenset({
    "required", "dependentRequired", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minLength", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "minContains", "maxContains",
})

#: Keywords whose value is a schema.
_ONE = frozenset({
    "additionalProperties", "unevaluatedProperties", "items", "additionalItems",
    "unevaluatedItems", "contains", "propertyNames", "not", "if", "then", "else",
})
#: Keywords whose value is a list of schemas.
_MANY = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
#: Keywords whose value maps names to schemas.
_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                   "dependentSchemas"})


def shape_of(schema: Any) -> Any:
    """``schema`` without the :data:`DROPPED` assertions, anywhere in it (a new object;
    ``schema`` is not changed)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in DROPPED:
            continue
        if key in _ONE:
            out[key] = shape_of(value) if isinstance(value, dict) else (
                [shape_of(v) for v in value] if key == "items" and isinstance(value, list)
                else value)
        elif key in _MANY and isinstance(value, list):
            out[key] = [shape_of(v) for v in value]
        elif key in _MAPS and isinstance(value, dict):
            out[key] = {name: shape_of(v) for name, v in value.items()}
        elif key == "dependencies" and isinstance(value, dict):
            # draft-07: a list is a dependentRequired (dropped), a schema is kept as a shape
            kept = {name: shape_of(v) for name, v in value.items() if not isinstance(v, list)}
            if kept:
                out[key] = kept
        else:
            out[key] = value  # type, enum, const, format, maxLength, $ref, annotations...
    return out
