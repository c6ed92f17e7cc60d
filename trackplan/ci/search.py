"""Look for a value the old schema accepts and the new one rejects (a counterexample).

Where :func:`trackplan.ci.inclusion.includes` cannot prove a change compatible, this
module generates values valid under the old schema with Hypothesis and checks them under
the new one (``jsonschema`` decides validity). A counterexample proves "not ADDITION";
a generated value that both accept (a survivor) shows that some historical data stays
valid, so the change is no MODEL by that measure. Hypothesis is optional (the ``search``
extra): without it :func:`search` reports that nothing could be searched and the caller
stays conservative.
The search is derandomised, so a CI run gives the same answer every time.

>>> found = search({"type": "string"}, {"type": "string", "pattern": "^a"})  # doctest: +SKIP
>>> found.counterexample is not None                                        # doctest: +SKIP
True
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trackplan.ci.inclusion import ALL_TYPES, Resolve, inline, validator_for
from trackplan.ci.keywords import canon

__all__ = ["Found", "search", "available", "shown"]

_MISSING = object()
_EXAMPLES = 200


@dataclass(frozen=True, slots=True)
class Found:
    """The outcome of a search.

    ``searched`` is False when no search could run (Hypothesis missing, a recursive
    ``$ref``); ``counterexample`` is an old-valid, new-invalid value (or None);
    ``survivor`` says an old-valid value stayed valid.
    """

    searched: bool
    counterexample: Any = None
    found: bool = False
    survivor: bool = False


def available() -> bool:
    """Whether Hypothesis is installed (the search needs it; the CLI does not)."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return False
    return True


def search(
    old: Any,
    new: Any,
    *,
    resolve_old: Resolve = lambda _r: None,
    resolve_new: Resolve = lambda _r: None,
    hints: frozenset[str] = frozenset(),
) -> Found:
    """Search values valid under ``old`` for one that ``new`` rejects.

    Args:
        hints: property names to try as keys of open objects (the new schema's names:
            the old schema accepted anything under them).
    """
    if not available():
        return Found(searched=False)
    is_old = validator_for(True if old is None else old, resolve_old)
    is_new = validator_for(True if new is None else new, resolve_new)
    doc = inline(True if old is None else old, resolve_old)
    if is_old is None or is_new is None or doc is None:
        return Found(searched=False)
    from hypothesis import HealthCheck, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    new_doc = inline(True if new is None else new, resolve_new)
    builder = _Builder(hints, _constants(new_doc), _key_patterns(new_doc))
    strategy = builder.build(doc, 0)
    # survivors are likelier among values shaped by the new schema too
    both = strategy if new_doc is None else st.one_of(strategy, builder.build(new_doc, 0))
    opts = settings(
        max_examples=_EXAMPLES,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )

    def first(values: Any, condition: Callable[[Any], bool]) -> Any:
        try:
            return find(values, condition, settings=opts)
        except (NoSuchExample, Unsatisfiable):
            return _MISSING

    bad = first(strategy, lambda v: is_old(v) and not is_new(v))
    good = first(both, lambda v: is_old(v) and is_new(v))
    return Found(
        searched=True,
        counterexample=None if bad is _MISSING else bad,
        found=bad is not _MISSING,
        survivor=good is not _MISSING,
    )


def shown(value: Any, *, limit: int = 120) -> str:
    """A counterexample as JSON with every string masked (a value could be PII)."""
    from trackplan.pii.actions import mask_value

    def mask(node: Any) -> Any:
        if isinstance(node, str):
            return mask_value("other", node)
        if isinstance(node, list):
            return [mask(x) for x in node]
        if isinstance(node, dict):
            return {k: mask(v) for k, v in node.items()}
        return node

    text = canon(mask(value)).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Builder:
    """Hypothesis strategies for values a schema is likely to accept (filtered later)."""

    def __init__(self, hints: frozenset[str], constants: list[Any], patterns: list[str]) -> None:
        self.hints = sorted(hints)
        self.patterns = patterns
        self.strings = sorted({c for c in constants if isinstance(c, str)})
        self.numbers = sorted(
            {c for c in constants if isinstance(c, int | float) and not isinstance(c, bool)}
        )

    def build(self, schema: Any, depth: int) -> Any:
        from hypothesis import strategies as st

        if schema is False:
            return st.nothing()
        if schema is True or not isinstance(schema, dict) or depth > 6:
            return _any_json(st)
        if "const" in schema:
            return st.just(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return st.sampled_from(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                rest = {k: v for k, v in schema.items() if k != key}
                return st.one_of([self.build({**rest, **b} if isinstance(b, dict) else b, depth + 1)
                                  for b in schema[key]])  # fmt: skip
        raw = schema.get("type")
        types = sorted(ALL_TYPES if raw is None else {raw} if isinstance(raw, str) else set(raw))
        return st.one_of([self._typed(t, schema, depth, st) for t in types])

    def _typed(self, t: str, schema: dict[str, Any], depth: int, st: Any) -> Any:
        if t == "null":
            return st.none()
        if t == "boolean":
            return st.booleans()
        if t in ("integer", "number"):
            lo = _bound(schema, "minimum", "exclusiveMinimum", math.ceil)
            hi = _bound(schema, "maximum", "exclusiveMaximum", math.floor)
            ints = st.integers(min_value=lo, max_value=hi)
            near = [int(n) for n in self.numbers if n == int(n)] if t == "integer" else self.numbers
            if near:  # the new schema's bounds and values, where a change bites
                ints = st.one_of(st.sampled_from(near), ints)
            if t == "integer":
                return ints
            return st.one_of(ints, st.floats(min_value=lo, max_value=hi, allow_nan=False,
                                             allow_infinity=False))  # fmt: skip
        if t == "string":
            return self._strings(schema, st)
        if t == "array":
            items = schema.get("items", True)
            item = self.build(items if not isinstance(items, list) else True, depth + 1)
            lo = schema.get("minItems", 0)
            hi = schema.get("maxItems")
            return st.lists(item, min_size=lo if isinstance(lo, int) else 0,
                            max_size=min(hi, 5) if isinstance(hi, int) else 5)  # fmt: skip
        return self._objects(schema, depth, st)

    def _strings(self, schema: dict[str, Any], st: Any) -> Any:
        fmt = schema.get("format")
        if fmt == "date-time":
            return st.datetimes(timezones=st.just(datetime.UTC)).map(lambda d: d.isoformat())
        if fmt == "date":
            return st.dates().map(lambda d: d.isoformat())
        if fmt == "email":
            return st.emails()
        if fmt == "uuid":
            return st.uuids().map(str)
        pattern = schema.get("pattern")
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        sized = st.text(min_size=lo if isinstance(lo, int) else 0,
                        max_size=hi if isinstance(hi, int) else 24)  # fmt: skip
        if self.strings:  # the new schema's values, where a change bites
            sized = st.one_of(st.sampled_from(self.strings), sized)
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error:
                return sized
            return st.one_of(st.from_regex(pattern, fullmatch=False), sized)
        return sized

    def _objects(self, schema: dict[str, Any], depth: int, st: Any) -> Any:
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        fixed = {n: self.build(props.get(n, True), depth + 1) for n in required}
        optional = {n: self.build(s, depth + 1) for n, s in props.items() if n not in fixed}
        base = st.fixed_dictionaries(fixed, optional=optional)
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return base
        names = [n for n in self.hints if n not in props] or ["extra"]
        keys = st.one_of(
            st.sampled_from(names),
            st.text(max_size=8),
            *(st.from_regex(p, fullmatch=False) for p in self.patterns),
        )
        extras = st.dictionaries(keys, self.build(extra, depth + 1), max_size=2)
        return st.tuples(base, extras).map(lambda pair: {**pair[1], **pair[0]})


def _constants(schema: Any) -> list[Any]:
    """Scalars a schema names (``const``, ``enum``, bounds and their neighbours)."""
    found: list[Any] = []
    stack = [schema]
    while stack and len(found) < 200:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key == "const":
                found.append(value)
            elif key == "enum" and isinstance(value, list):
                found.extend(value)
            elif key in _BOUNDS and isinstance(value, int | float) and not isinstance(value, bool):
                found.extend((value - 1, value - 0.5, value, value + 0.5, value + 1))
            elif isinstance(value, dict | list):
                stack.append(value)
    return [v for v in found if v is None or isinstance(v, str | int | float | bool)]


def _key_patterns(schema: Any) -> list[str]:
    """The valid regexes of ``patternProperties`` in a schema (keys worth trying)."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            pats = node.get("patternProperties")
            if isinstance(pats, dict):
                for pattern in pats:
                    try:
                        re.compile(pattern)
                    except re.error:
                        continue
                    found.add(pattern)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
    return sorted(found)


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _bound(schema: dict[str, Any], inc: str, exc: str, rounding: Callable[[float], int]) -> Any:
    value = schema.get(inc)
    strict = schema.get(exc)
    if isinstance(strict, int | float) and not isinstance(strict, bool):
        step = 1 if rounding is math.ceil else -1
        value = strict + step if value is None else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rounding(value)
    return None


def _any_json(st: Any) -> Any:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
        allow_infinity=False), st.text(max_size=12),
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=3),
                                st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=6,
    )  # fmt: skip
