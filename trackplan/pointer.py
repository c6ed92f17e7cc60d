"""RFC 6901 JSON pointers: the only place in trackplan where paths are made.

>>> join("", "properties", "a/b")
'/properties/a~1b'
>>> parse("/properties/a~1b")
['properties', 'a/b']
"""

from __future__ import annotations

from collections.abc import Iterable

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


def dotted(parts: Iterable[str | int]) -> str:
    """Segment's dotted field name (``properties.products.0.price``) for a path."""
    return ".".join(str(p) for p in parts)
