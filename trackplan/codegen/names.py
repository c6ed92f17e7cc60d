"""Identifiers and literals for generated code: the only two ways plan text enters it.

Every identifier in generated code comes from a :class:`Namespace` (sanitise, then
de-duplicate deterministically); every plan-supplied value (names, descriptions,
patterns, defaults, schemas) enters as a Python literal made by :func:`literal`, or in a
comment made by :func:`comment`. Internal names of generated code start with
:data:`INTERNAL_PREFIX`, which sanitised names never do, so the two cannot clash.

>>> ns = Namespace(reserved={"self"})
>>> ns.allocate(["Property Collided", "property_collided", "class", "42 go"], style="snake")
{'property_collided': 'property_collided', 'Property Collided': 'property_collided_2', \
'class': 'class_', '42 go': 'n42_go'}
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, Literal

__all__ = [
    "INTERNAL_PREFIX", "Namespace", "sanitise", "literal", "docstring", "comment", "Style"
]

#: Prefix of every name the generator uses for itself; allocated names never start with "_".
INTERNAL_PREFIX = "_tp_"

Style = Literal["snake", "pascal"]

_RESERVED_WORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(
    dir(builtins)
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def _ascii_words(name: str) -> list[str]:
    """Split ``name`` into ASCII alphanumeric words; other characters become ``uXXXX``."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", name):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.combining(ch):
            continue  # accents: "é" decomposes to "e" + a combining mark
        else:
            out.append(f" u{ord(ch):04x} ")
    text = _CAMEL_BOUNDARY.sub(" ", "".join(out))
    return [w for w in _NON_WORD.split(text) if w]


def sanitise(name: str, *, style: Style, fallback: str) -> str:
    """Turn an arbitrary string into a Python identifier (not yet de-duplicated).

    snake style gives ``order_completed``, pascal style ``OrderCompleted``. Leading digits
    get an ``n`` (``N``) prefix, keywords and builtins a trailing ``_``, and a name with no
    usable characters becomes ``fallback``. The result is ASCII, never starts with ``_``.
    """
    words = _ascii_words(name)
    if style == "snake":
        ident = "_".join(w.lower() for w in words)
    else:
        ident = "".join(w[:1].upper() + w[1:] for w in words)
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = ("n" if style == "snake" else "N") + ident
    if ident in _RESERVED_WORDS or keyword.iskeyword(ident):
        ident += "_"
    return ident


class Namespace:
    """One scope of identifiers (a module, a class body, a function's parameters).

    Allocation is deterministic: a batch gives its names to originals that are already
    the identifier they would become first, then to the others in sorted order, adding
    ``_2``, ``_3`` ... (``2``, ``3`` in pascal style) until the name is free.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def reserve(self, *names: str) -> None:
        """Mark names as used (imports, fixed parameters, methods of the generated class)."""
        self._taken.update(names)

    def __contains__(self, name: object) -> bool:
        return name in self._taken

    def allocate(
        self, originals: Sequence[str], *, style: Style, fallback: str = "field"
    ) -> dict[str, str]:
        """Give each distinct original a free identifier; returns ``{original: identifier}``."""
        wanted = {o: sanitise(o, style=style, fallback=fallback) for o in originals}
        exact = sorted(o for o, ident in wanted.items() if o == ident)
        rest = sorted(o for o, ident in wanted.items() if o != ident)
        result: dict[str, str] = {}
        for original in exact + rest:
            result[original] = self._claim(wanted[original], style)
        return {o: result[o] for o in wanted}

    def one(self, original: str, *, style: Style, fallback: str = "field") -> str:
        """Allocate a single name."""
        return self._claim(sanitise(original, style=style, fallback=fallback), style)

    def _claim(self, ident: str, style: Style) -> str:
        candidate, n = ident, 1
        sep = "_" if style == "snake" else ""
        while candidate in self._taken or candidate in _RESERVED_WORDS:
            n += 1
            candidate = f"{ident}{sep}{n}"
        self._taken.add(candidate)
        return candidate


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > 256:
        raise ValueError("value nests too deeply for a literal")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite numbers have no JSON literal")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            _check_json(item, depth + 1)
        return
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def literal(value: Any, *, indent: int = 0, col: int | None = None, width: int = 99) -> str:
    """The Python source of a JSON value: the only way plan values enter generated code.

    Strings are ``repr``-quoted (quotes, backslashes, newlines and non-printable
    characters escaped), so no value can end a literal early. A value that does not fit
    on the line starting at column ``col`` is laid out one item per line, nested
    ``indent + 4`` deep; a long string becomes a parenthesised run of adjacent literals.

    >>> literal({"a": ["x'y", None, 1.5]})
    "{'a': [\"x'y\", None, 1.5]}"
    """
    _check_json(value)
    return _layout(value, indent, indent if col is None else col, width)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return repr(value)


def _layout(value: Any, indent: int, col: int, width: int) -> str:
    flat = _flat(value)
    if col + len(flat) < width or not value or not isinstance(value, dict | list | tuple | str):
        return flat
    inner = indent + 4
    pad, close = " " * inner, " " * indent
    if isinstance(value, str):
        size = max(16, width - inner - 2)
        pieces = [value[i : i + size] for i in range(0, len(value), size)]
        return "(\n" + "".join(f"{pad}{p!r}\n" for p in pieces) + close + ")"
    if isinstance(value, dict):
        rows = [
            f"{pad}{k!r}: {_layout(v, inner, inner + len(repr(k)) + 2, width)},\n"
            for k, v in value.items()
        ]
        return "{\n" + "".join(rows) + close + "}"
    rows = [f"{pad}{_layout(v, inner, inner, width)},\n" for v in value]
    return "[\n" + "".join(rows) + close + "]"


def comment(text: str) -> str:
    """Text safe inside a ``#`` comment: printable text as is, anything else ``repr``-quoted.

    A comment ends at a line break, and ``repr`` escapes every character Python treats as
    one (``\\n``, ``\\r``, form feed, ...), as it does all non-printable characters.
    """
    return text if text.isprintable() else repr(text)


_DOC_SAFE = re.compile(r"[^\\\"\x00-\x1f\x7f]+")


def docstring(text: str, *, indent: int = 0, width: int = 99) -> str:
    """A docstring literal: ``\"\"\"text\"\"\"`` for plain one-line text, else :func:`literal`.

    Plain means printable, no backslash and no double quote at all, so the triple-quoted
    form cannot end early or hold an escape sequence; anything else is ``repr``-quoted.
    """
    if indent + len(text) + 6 <= width and text.isprintable() and _DOC_SAFE.fullmatch(text):
        return f'"""{text}"""'
    return literal(text, indent=indent, width=width)
