"""Decide exactly, where the keywords allow it, whether every value an old schema accepts
is accepted by a new one (the SchemaVer ADDITION test).

:func:`includes` answers True only with a proof: it reads the keywords of both schemas
(types, ``enum``/``const``, bounds, lengths, ``multipleOf``, ``required``, ``properties``
under open and closed objects, ``additionalProperties``, ``items``, ``$ref``) and shows
that each constraint of the new schema holds for every value the old one accepts. It
answers False whenever it cannot prove that; :mod:`trackplan.ci.search` then looks for a
counterexample. Dropping constraints of the old schema only makes it accept more, so
ignoring an old keyword never gives a wrong True.

>>> includes({"type": "string", "maxLength": 20}, {"type": "string", "maxLength": 40})
True
>>> includes({"type": "integer"}, {"type": "string"})
False
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import jsonschema

from trackplan.ci.facts import covers, type_set
from trackplan.ci.keywords import ANNOTATIONS, canon

__all__ = ["includes", "inline", "validator_for", "Resolve", "ALL_TYPES"]

Resolve = Callable[[str], Any]
ALL_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})

#: Keywords whose meaning depends only on the instance and not on sibling keywords: equal
#: on both sides, the new one holds for every old-valid value.
_STANDALONE = frozenset(
    {"not", "anyOf", "oneOf", "allOf", "if", "then", "else", "propertyNames", "contains",
     "minContains", "maxContains", "dependencies", "dependentRequired", "dependentSchemas"}
)  # fmt: skip
#: Keywords this module reads.
_READ = frozenset(
    {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
     "multipleOf", "minLength", "maxLength", "pattern", "format", "minItems", "maxItems",
     "uniqueItems", "items", "minProperties", "maxProperties", "required", "properties",
     "additionalProperties", "$ref", "definitions", "$defs", "x-pii"}
)  # fmt: skip
_MAX_DEPTH = 64


def _never(_ref: str) -> Any:
    return None


def includes(
    old: Any,
    new: Any,
    *,
    resolve_old: Resolve = _never,
    resolve_new: Resolve = _never,
) -> bool:
    """True when every value valid under ``old`` is proved valid under ``new``.

    Args:
        old, new: JSON Schemas (objects or booleans; ``None`` means no schema).
        resolve_old, resolve_new: turn a local ``$ref`` into its target (None: unknown).
    """
    try:
        return _Decider(resolve_old, resolve_new).includes(old, new, 0)
    except RecursionError:
        return False


class _Decider:
    def __init__(self, resolve_old: Resolve, resolve_new: Resolve) -> None:
        self.resolve_old = resolve_old
        self.resolve_new = resolve_new

    def includes(self, old: Any, new: Any, depth: int) -> bool:
        if depth > _MAX_DEPTH:
            return False
        old = _deref(True if old is None else old, self.resolve_old)
        new = _deref(True if new is None else new, self.resolve_new)
        if old is None or new is None:
            return False  # an unresolved $ref: nothing is proved
        if _accepts_all(new) or old is False:
            return True
        if new is False or old is True or not isinstance(old, dict):
            return False
        if not isinstance(new, dict):
            return False
        for key, value in new.items():
            if key in _READ or key in ANNOTATIONS or key.startswith("x-"):
                continue
            if key not in _STANDALONE or key not in old or canon(old[key]) != canon(value):
                return False  # a constraint this module cannot weigh
        old_types = _effective_types(old)
        values = _fixed_values(old)
        if values is None and old_types <= {"null", "boolean"}:
            values = [v for t, vs in (("null", [None]), ("boolean", [False, True]))
                      if t in old_types for v in vs]  # fmt: skip
        if values is not None:
            return self._values(values, old, new)
        if "enum" in new or "const" in new:
            return False
        new_types = type_set(new)
        if new_types is not None and not covers(new_types, old_types):
            return False
        checks = {
            "string": _strings,
            "number": _numbers,
            "integer": _numbers,
        }
        for t in sorted(old_types):
            check = checks.get(t)
            if check is not None and not check(old, new):
                return False
        if "array" in old_types and not self._arrays(old, new, depth):
            return False
        return "object" not in old_types or self._objects(old, new, depth)

    def _values(self, values: list[Any], old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Old accepts only fixed values: check each against both schemas exactly."""
        old_doc = inline(old, self.resolve_old)
        new_doc = inline(new, self.resolve_new)
        if old_doc is None or new_doc is None:
            return False
        is_old = _validator(old_doc)
        is_new = _validator(new_doc)
        return all(is_new(v) for v in values if is_old(v))

    def _arrays(self, old: dict[str, Any], new: dict[str, Any], depth: int) -> bool:
        if not _lower_implied(old, new, "minItems") or not _upper_implied(old, new, "maxItems"):
            return False
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            return False
        a, b = old.get("items", True), new.get("items", True)
        if isinstance(a, list) or isinstance(b, list):
            return canon(a) == canon(b) and canon(old.get("additionalItems")) == canon(
                new.get("additionalItems")
            )
        if "additionalItems" in new:
            return False
        return self.includes(a, b, depth + 1)

    def _objects(self, old: dict[str, Any], new: dict[str, Any], depth: int) -> bool:
        if "patternProperties" in old or "patternProperties" in new:
            if canon(old.get("patternProperties")) != canon(new.get("patternProperties")):
                return False
            if canon(old.get("additionalProperties")) != canon(new.get("additionalProperties")):
                return False
        old_req = {r for r in old.get("required", []) if isinstance(r, str)}
        if not {r for r in new.get("required", []) if isinstance(r, str)} <= old_req:
            return False
        if not _lower_implied(old, new, "minProperties"):
            return False
        if not _upper_implied(old, new, "maxProperties"):
            return False
        o_props, n_props = _props(old), _props(new)
        o_extra = old.get("additionalProperties", True)
        n_extra = new.get("additionalProperties", True)
        for name in sorted(set(o_props) | set(n_props)):
            o_sub = o_props.get(name, o_extra)
            n_sub = n_props.get(name, n_extra)
            if not self.includes(o_sub, n_sub, depth + 1):
                return False
        return self.includes(o_extra, n_extra, depth + 1)


# -- keyword helpers -------------------------------------------------------------------------
def _accepts_all(schema: Any) -> bool:
    if schema is True:
        return True
    return isinstance(schema, dict) and all(
        k in ANNOTATIONS or k.startswith("x-") or k in ("definitions", "$defs") for k in schema
    )


def _deref(schema: Any, resolve: Resolve) -> Any:
    """``schema`` with its ``$ref`` chain followed (siblings kept); None if unresolved."""
    seen: set[str] = set()
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        ref = schema["$ref"]
        if ref in seen:
            return None
        seen.add(ref)
        target = resolve(ref)
        if target is None:
            return None
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if not siblings:
            schema = target
        elif target is True:
            schema = siblings
        elif isinstance(target, dict) and not (_constraints(siblings) & _constraints(target)):
            schema = {**target, **siblings}
        else:
            return None  # siblings that overlap the target: not merged by guesswork
    return schema


def _constraints(schema: dict[str, Any]) -> set[str]:
    return {k for k in schema if k not in ANNOTATIONS and not k.startswith("x-")}


def _fixed_values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    if isinstance(schema.get("enum"), list):
        return list(schema["enum"])
    return None


def _effective_types(schema: dict[str, Any]) -> frozenset[str]:
    types = type_set(schema)
    if types is None:
        return ALL_TYPES
    if "number" in types:
        types = types | {"integer"}
    return types


def _strings(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if not _lower_implied(old, new, "minLength") or not _upper_implied(old, new, "maxLength"):
        return False
    return all(key not in new or canon(old.get(key)) == canon(new[key]) for key in (
        "pattern", "format"))  # fmt: skip


def _numbers(old: dict[str, Any], new: dict[str, Any]) -> bool:
    for lo, hi in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(old.get(hi), bool) or isinstance(new.get(hi), bool):
            return canon(old.get(lo)) == canon(new.get(lo)) and old.get(hi) == new.get(hi)
    if not _bound_implied(old, new, lower=True) or not _bound_implied(old, new, lower=False):
        return False
    step = new.get("multipleOf")
    if step is None:
        return True
    have = old.get("multipleOf")
    if not _num(step) or not _num(have):
        return False
    ratio = Fraction(str(have)) / Fraction(str(step))
    return ratio.denominator == 1


def _bound_implied(old: dict[str, Any], new: dict[str, Any], *, lower: bool) -> bool:
    """Every number old accepts meets new's lower (or upper) bound."""
    inc, exc = ("minimum", "exclusiveMinimum") if lower else ("maximum", "exclusiveMaximum")
    need = _tightest(new, inc, exc, lower=lower)
    if need is None:
        return True
    have = _tightest(old, inc, exc, lower=lower)
    if have is None:
        return False
    (n_val, n_strict), (o_val, o_strict) = need, have
    if n_val == o_val:
        return o_strict or not n_strict
    return o_val > n_val if lower else o_val < n_val


def _tightest(
    schema: dict[str, Any], inc: str, exc: str, *, lower: bool
) -> tuple[float, bool] | None:
    found: list[tuple[float, bool]] = []
    if _num(schema.get(inc)):
        found.append((schema[inc], False))
    if _num(schema.get(exc)):
        found.append((schema[exc], True))
    if not found:
        return None
    # the tightest bound: the largest lower bound (strict wins a tie), the smallest upper one
    return max(found) if lower else min(found, key=lambda b: (b[0], not b[1]))


def _lower_implied(old: dict[str, Any], new: dict[str, Any], key: str) -> bool:
    need: Any = new.get(key)
    if not _num(need) or need <= 0:
        return True
    have: Any = old.get(key)
    return _num(have) and have >= need


def _upper_implied(old: dict[str, Any], new: dict[str, Any], key: str) -> bool:
    need: Any = new.get(key)
    if not _num(need):
        return True
    have: Any = old.get(key)
    return _num(have) and have <= need


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    value = schema.get("properties")
    return value if isinstance(value, dict) else {}


# -- exact validation of fixed values ----------------------------------------------------------
def inline(schema: Any, resolve: Resolve, depth: int = 0) -> Any:
    """``schema`` with every local ``$ref`` replaced by its target (annotations dropped);
    None when it recurses or a ``$ref`` does not resolve."""
    if depth > 16:
        return None
    if isinstance(schema, list):
        items = [inline(x, resolve, depth + 1) for x in schema]
        return None if any(x is None for x in items) else items
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("$ref"), str):
        target = _deref(schema, resolve)
        return None if target is None else inline(target, resolve, depth + 1)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("definitions", "$defs") or key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key in ("enum", "const"):
            out[key] = value
            continue
        sub = inline(value, resolve, depth + 1)
        if sub is None and value is not None:
            return None
        out[key] = sub
    return out


def _validator(schema: Any) -> Callable[[Any], bool]:
    """A validity test for an inlined schema (formats checked, as the enforcer does)."""
    uses_tuples = any(isinstance(v, list) for v in _walk_items(schema))
    cls = jsonschema.Draft7Validator if uses_tuples else jsonschema.Draft202012Validator
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator.is_valid  # type: ignore[no-any-return]


def _walk_items(schema: Any) -> list[Any]:
    found: list[Any] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "items" in node:
                found.append(node["items"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def validator_for(schema: Any, resolve: Resolve) -> Callable[[Any], bool] | None:
    """A validity test for ``schema`` with its local ``$ref``s inlined (None: recursive)."""
    doc = inline(schema, resolve)
    if doc is None:
        return None
    return _validator(doc)
