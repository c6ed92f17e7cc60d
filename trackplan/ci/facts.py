"""Facts about one JSON Schema that lint and diff both read: types, nullability, columns, PII.

>>> column_type({"type": "integer"}), allows_null({"type": ["string", "null"]})
('BIGINT', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trackplan.plan.jsonutil import json_type

__all__ = [
    "type_set",
    "covers",
    "allows_null",
    "is_closed",
    "column_type",
    "json_type",
    "pii_status",
    "may_hold_text",
]


def type_set(schema: Any) -> frozenset[str] | None:
    """The JSON types a schema's ``type`` keyword allows, or ``None`` for any type."""
    if not isinstance(schema, dict) or "type" not in schema:
        return None
    raw = schema["type"]
    names = [raw] if isinstance(raw, str) else [t for t in raw if isinstance(t, str)]
    return frozenset(names)


def covers(wide: frozenset[str] | None, narrow: frozenset[str] | None) -> bool:
    if wide is None:
        return True
    if narrow is None:
        return False
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def allows_null(schema: Any) -> bool:
    """True when ``null`` is valid for the schema as far as its own keywords say."""
    if schema is True or schema == {}:
        return True
    if not isinstance(schema, dict):
        return False
    types = type_set(schema)
    if types is not None and "null" not in types:
        return False
    if "enum" in schema and None not in schema["enum"]:
        return False
    if "const" in schema and schema["const"] is not None:
        return False
    for key in ("anyOf", "oneOf"):
        if key in schema and not any(allows_null(s) for s in schema[key]):
            return False
    return True


def is_closed(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("additionalProperties") is False


_FORMAT_COLUMNS = {"date-time": "TIMESTAMP", "date": "DATE", "uuid": "CHAR(36)"}


def column_type(schema: Any) -> str:
    """The warehouse column type a loader would create for a schema (Snowplow-style)."""
    if not isinstance(schema, dict):
        return "JSON"
    types = type_set(schema)
    if types is None and "enum" in schema:
        types = frozenset(json_type(v) for v in schema["enum"])
    if types is None:
        return "JSON"
    types = types - {"null"}
    if types == {"integer"}:
        return "BIGINT"
    if types and types <= {"integer", "number"}:
        return "DOUBLE"
    if types == {"boolean"}:
        return "BOOLEAN"
    if types == {"string"}:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMAT_COLUMNS:
            return _FORMAT_COLUMNS[fmt]
        if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
            return f"VARCHAR({max((len(v) for v in schema['enum']), default=1)})"
        limit = schema.get("maxLength")
        return f"VARCHAR({limit})" if isinstance(limit, int) else "VARCHAR"
    return "JSON"


def pii_status(schema: Any) -> tuple[bool, str | None, str | None]:
    """``(declared, category, action)`` of a schema's ``x-pii`` annotation.

    ``x-pii: false`` and ``{category: none}`` declare "not PII": ``(True, None, None)``.
    A missing annotation is ``(False, None, None)``.
    """
    if not isinstance(schema, dict) or "x-pii" not in schema:
        return False, None, None
    value = schema["x-pii"]
    if value is False or value is None:
        return True, None, None
    if isinstance(value, str):
        return True, (None if value == "none" else value), None
    if isinstance(value, dict):
        cat = value.get("category")
        act = value.get("action")
        category = cat if isinstance(cat, str) and cat != "none" else None
        return True, category, act if isinstance(act, str) else None
    return True, "other", None


def may_hold_text(
    schema: Any, *, deref: Callable[[Any], Any] | None = None, depth: int = 0
) -> bool:
    """Whether a value valid under ``schema`` could carry free text (and so PII).

    Strings and containers of strings could; numbers, booleans, null, and fixed lists of
    values (``enum``/``const``, written in the plan) could not. An object with declared
    ``properties`` is judged by those properties, each on its own, not as a container.
    ``deref`` follows a ``$ref`` (one hop per call); an unresolved ``$ref`` could hold text.

    >>> may_hold_text({"type": "integer"}), may_hold_text({"type": "array"})
    (False, True)
    """
    if deref is not None:
        schema = deref(schema)
    if schema is True or schema is None:
        return True
    if not isinstance(schema, dict) or depth > 32:
        return schema is not False
    if "const" in schema or isinstance(schema.get("enum"), list):
        return False
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            rest = _without(schema, key)
            return any(
                may_hold_text(
                    {**rest, **b} if isinstance(b, dict) else b, deref=deref, depth=depth + 1
                )
                for b in branches
            )
    if isinstance(schema.get("$ref"), str):
        return True  # unresolved here: assume it could
    types = type_set(schema)
    if types is None or "string" in types:
        return True
    if "array" in types:
        items = schema.get("items", True)
        if isinstance(items, list):
            return any(may_hold_text(i, deref=deref, depth=depth + 1) for i in items)
        if may_hold_text(items, deref=deref, depth=depth + 1):
            return True
    if "object" in types:
        if isinstance(schema.get("properties"), dict) and schema["properties"]:
            return False
        extra = schema.get("additionalProperties", True)
        return may_hold_text(extra, deref=deref, depth=depth + 1)
    return False


def _without(schema: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != key}
