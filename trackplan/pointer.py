"""RFC 6901 JSON pointers: the only place in trackplan where paths are made.

>>> join("", "properties", "a/b")
'/properties/a~1b'
>>> parse("/properties/a~1b")
['properties', 'a/b']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["escape", "unescape", "join", "from_parts", "parse", "dotted"]


def escape(token: str | int) -> str:
    """Escape one reference token (``~`` then ``/``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """Undo :func:`escape`."""
    return token.replace("~1", "/").replace("~0", "~")


def join(base: str, *tokens: str | int) -> str:
    """Append tokens to the pointer ``base``."""
    return base + "".join("/" + escape(t) for t in tokens)


def from_parts(parts: Iterable[str | int]) -> str:
    """Build a pointer from a sequence of tokens (keys and array indexes)."""
    return "".join("/" + escape(t) for t in parts)


def parse(pointer: str) -> list[str]:
    """Split a pointer into unescaped tokens; ``""`` is the whole document."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer must start with '/': {pointer!r}")
    return [unescape(t) for t in pointer[1:].split("/")]


def resolve(document: Any, pointer: str, default: Any = None) -> Any:
    """The value at ``pointer`` in ``document`` (objects by key, arrays by index), or
    ``default`` where there is none (or ``pointer`` is not a JSON pointer)."""
    try:
        tokens = parse(pointer)
    except ValueError:
        return default
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return default
    return node


def dotted(parts: Iterable[str | int]) -> str:
    """Segment's dotted field name (``properties.products.0.price``) for a path."""
    return ".".join(str(p) for p in parts)
