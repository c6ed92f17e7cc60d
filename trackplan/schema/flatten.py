"""Flatten a whole-call schema's ``allOf`` for the fast validator.

A call is checked against ``allOf: [envelope, common rule, rule]``, and each branch walks
the event's object again (``properties`` of the envelope, then of the common rule, then of
the rule). Where the branches only say independent things about the same object (types,
``properties``, ``required``, bounds), one schema saying all of it accepts exactly the
same instances and costs one walk. :func:`flatten` merges what it can prove equivalent and
keeps everything else as ``allOf`` branches beside it:

* a branch is split into its independent keywords (merged) and its interacting ones
  (``additionalProperties`` with ``properties``, ``$ref`` in draft-07, ``if``/``then``,
  ``items`` with ``additionalItems``, ``unevaluated*``: kept whole, in ``allOf``);
* the same keyword in two branches merges only when both say the same thing (``required``
  is united; ``properties`` merge per key, recursively; anything else differing is kept
  as an ``allOf`` of the two subschemas).

The fast validator only decides valid or not; explanations come from the original
schema, so violation locations still point into the plan's files.
"""

from __future__ import annotations

from typing import Any

from trackplan.plan.assemble import DEFS_KEYS
from trackplan.plan.jsonutil import walk_schemas

__all__ = ["flatten", "merge"]

#: Keywords that never read a sibling: the schema's verdict is the AND of theirs.
_INDEPENDENT = frozenset({
    "type", "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
    "maxItems", "uniqueItems", "minProperties", "maxProperties", "required",
    "propertyNames", "not", "anyOf", "oneOf", "dependencies", "dependentRequired",
})  # fmt: skip
#: Annotations: no effect on validity.
_ANNOTATIONS = frozenset({
    "description", "title", "$comment", "examples", "default", "deprecated", "readOnly",
    "writeOnly", "contentMediaType", "contentEncoding",
})  # fmt: skip
#: Keywords whose meaning depends on siblings: a schema holding any of them is kept whole.
_ENTANGLED = frozenset({
    "$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor",
    "$recursiveAnchor", "additionalProperties", "patternProperties",
    "unevaluatedProperties", "unevaluatedItems", "if", "then", "else", "items",
    "additionalItems", "prefixItems", "contains", "minContains", "maxContains",
    "dependentSchemas", "$schema", "$defs", "definitions", "allOf",
})  # fmt: skip
_KNOWN = _INDEPENDENT | _ANNOTATIONS | {"properties"}


def _plain(schema: Any) -> bool:
    """Whether ``schema``'s keywords can be merged with another schema's."""
    return isinstance(schema, dict) and schema.keys() <= _KNOWN


def merge(a: Any, b: Any) -> Any:
    """One schema accepting exactly what both ``a`` and ``b`` accept."""
    if a is True or a == {}:
        return b
    if b is True or b == {}:
        return a
    if not (_plain(a) and _plain(b)):
        if _plain(a) and _absorbs(b, a):
            return {**b, **{k: v for k, v in a.items() if k not in _ANNOTATIONS}}
        if _plain(b) and _absorbs(a, b):
            return {**a, **{k: v for k, v in b.items() if k not in _ANNOTATIONS}}
        return {"allOf": [a, b]}
    out: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key in a.keys() | b.keys():
        if key in _ANNOTATIONS:
            continue
        if key not in a or key not in b:
            out[key] = a[key] if key in a else b[key]
        elif key == "required" and isinstance(a[key], list) and isinstance(b[key], list):
            out[key] = list(dict.fromkeys([*a[key], *b[key]]))
        elif key == "properties" and isinstance(a[key], dict) and isinstance(b[key], dict):
            props = dict(a[key])
            for name, sub in b[key].items():
                props[name] = merge(props[name], sub) if name in props else sub
            out[key] = props
        elif _same(a[key], b[key]):
            out[key] = a[key]
        else:
            out[key] = a[key]
            rest[key] = b[key]  # differs: b's version is checked on its own
    if rest:
        return {**out, "allOf": [rest]}
    return out


def _absorbs(host: Any, guest: dict[str, Any]) -> bool:
    """Whether ``guest``'s keywords can be added to ``host`` as siblings: they are all
    independent (``properties`` would widen what ``additionalProperties`` allows), the host
    holds no ``$ref`` (whose siblings draft-07 ignores), and none collide."""
    if not isinstance(host, dict) or host.keys() & {"$ref", "$dynamicRef", "$recursiveRef"}:
        return False
    for key, value in guest.items():
        if key in _ANNOTATIONS:
            continue
        if key not in _INDEPENDENT or (key in host and not _same(host[key], value)):
            return False
    return True


def _same(x: Any, y: Any) -> bool:
    """JSON equality (``1`` and ``True`` differ; Python's ``==`` says they are equal)."""
    if type(x) is not type(y):
        return False
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(v, y[k]) for k, v in x.items())
    if isinstance(x, list):
        return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y, strict=True))
    return bool(x == y)


def _split(branch: Any) -> tuple[dict[str, Any], Any]:
    """``(mergeable part, the rest or True)`` of one ``allOf`` branch."""
    if not isinstance(branch, dict):
        return {}, branch
    if branch.keys() & _ENTANGLED or not branch.keys() <= _KNOWN | _ENTANGLED:
        # keep whole what reads its siblings (or holds keywords this module does not know)
        return {}, branch
    return {k: v for k, v in branch.items() if k not in _ANNOTATIONS}, True


def _addresses_places(schema: dict[str, Any]) -> bool:
    """Whether a local ``$ref`` in ``schema`` points anywhere but its definitions (such as
    ``#/allOf/1/properties/x``, which merging the branches would leave pointing nowhere)."""
    for _path, node in walk_schemas(schema):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and (
            ref[2:].split("/", 1)[0] not in DEFS_KEYS
        ):
            return True
    return False


def flatten(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its root ``allOf`` merged where that is provably equivalent."""
    branches = schema.get("allOf")
    if not isinstance(branches, list) or _addresses_places(schema):
        return schema
    root = {k: v for k, v in schema.items() if k != "allOf"}
    if root.keys() - {"$schema", "$defs", "definitions", "$id"} - _ANNOTATIONS:
        return schema  # the root says more than allOf: leave it alone
    merged: Any = True
    kept: list[Any] = []
    for branch in branches:
        part, rest = _split(branch)
        if part:
            merged = merge(merged, part)
        if rest is False:
            return schema  # never valid: nothing to gain
        if rest is not True:
            kept.append(rest)
    if isinstance(merged, dict) and "allOf" in merged:
        kept.extend(merged.pop("allOf"))
    if isinstance(merged, dict):
        root.update(merged)
    if kept:
        root["allOf"] = kept
    return root
