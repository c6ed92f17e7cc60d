"""Small JSON helpers shared by the loader, engine and backends (depth-safe, iterative)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_DEPTH", "depth_exceeds", "walk_schemas", "NON_SCHEMA_KEYS", "json_type"]

#: Nesting deeper than this is refused with a clear error instead of a RecursionError.
MAX_DEPTH = 512

#: Keywords whose values are data, not subschemas: never searched for ``$ref``.
NON_SCHEMA_KEYS = frozenset({"enum", "const", "default", "examples", "x-pii", "labels"})


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``value`` nests dicts or lists deeper than ``limit`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "definitions", "$defs", "dependentSchemas"}
)


def walk_schemas(
    schema: Any, base: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """Yield ``(path, subschema)`` for every dict reachable through schema keywords.

    Values of data keywords (``enum``, ``const``, ``default``, ...) are not entered, and
    the names inside ``properties`` are names, never keywords.
    """
    stack: list[tuple[tuple[str | int, ...], Any, bool]] = [(base, schema, False)]
    while stack:
        path, node, is_map = stack.pop()
        if isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append(((*path, i), value, False))
            continue
        if not isinstance(node, dict):
            continue
        if is_map:
            for key, value in node.items():
                if isinstance(value, dict):
                    stack.append(((*path, key), value, False))
            continue
        yield path, node
        for key, value in node.items():
            if key in NON_SCHEMA_KEYS or key.startswith("x-"):
                continue
            if isinstance(value, dict | list):
                stack.append(((*path, key), value, key in _SCHEMA_MAPS))


def json_type(value: Any) -> str:
    """The JSON Schema type name of a Python value (``integer`` for ints, not ``number``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
