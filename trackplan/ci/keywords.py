"""What a change of one keyword means: its kind, SchemaVer class and reason.

Each function here looks at one keyword (or one family of keywords) of two schema objects
and returns :class:`Verdict` values; none of them recurses into subschemas or builds
pointers: :mod:`trackplan.ci.classify` walks the two schemas and places each verdict.
The class rules are listed in that module's docstring.

>>> types({"type": "integer"}, {"type": "number"}).cls
'REVISION'
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import orjson

from trackplan.ci.facts import covers, pii_status, type_set

__all__ = [
    "Verdict", "PII_ACTION_RANK", "ANNOTATIONS", "HANDLED", "canon", "booleans",
    "documentation", "pii", "types", "enum", "bounds", "added_property", "removed_property",
    "additional_properties", "items", "combinator", "schema_entry", "unknown",
    "effective_action", "default_pii_action",
]  # fmt: skip

#: PII actions from the least to the most protective; a lower rank is "looser".
PII_ACTION_RANK = {"allow": 0, "hash": 1, "mask": 2, "redact": 3, "drop": 4, "reject": 5}

#: Documentation keywords: changing them is a PATCH.
ANNOTATIONS = frozenset(
    {"description", "title", "examples", "default", "$comment", "deprecated", "readOnly",
     "writeOnly", "$schema", "$id", "$anchor", "labels"}
)  # fmt: skip
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_OTHER_BOUNDS = ("multipleOf", "pattern", "format", "uniqueItems")
#: Keywords with their own comparison; any other one is compared by :func:`unknown`.
HANDLED = frozenset(
    {"type", "enum", "const", "properties", "required", "additionalProperties", "items",
     "anyOf", "oneOf", "allOf", "x-pii", "$ref", "definitions", "$defs",
     *_LOWER, *_UPPER, *_OTHER_BOUNDS}
)  # fmt: skip


class Verdict(NamedTuple):
    """The meaning of one change.

    ``at`` is the keyword the change sits at, below the compared schema (``None``: the
    schema itself); ``privacy`` marks changes that concern PII; ``uncertain`` marks a
    class the keyword alone cannot settle (the walker then looks for a proof or a
    counterexample).
    """

    kind: str
    cls: str
    reason: str
    at: str | None = None
    privacy: bool = False
    uncertain: bool = False


def canon(value: Any) -> bytes:
    """The canonical JSON bytes of a value (sorted keys): equal values, equal bytes.

    orjson stops at 255 levels of nesting and plans may nest deeper (up to the loader's
    limit): those values take the standard encoder. Equal values nest equally deep, so
    they take the same encoder and still give equal bytes.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()


def _shown(value: Any) -> str:
    text = canon(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _verb(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    return "added" if key not in old else "removed" if key not in new else "changed"


# -- one schema object against another ------------------------------------------------------
def booleans(old: Any, new: Any) -> Verdict:
    """A change where one side is a boolean schema (or not an object)."""
    if new is True or new == {}:
        return Verdict("type widened", "ADDITION", "the schema now accepts any value")
    if new is False:
        return Verdict("type restricted", "MODEL", "the schema now rejects every value")
    if old is False:
        return Verdict("type widened", "ADDITION", "the schema used to reject every value")
    return Verdict(
        "type restricted",
        "REVISION",
        "the schema used to accept any value and now constrains it: old data may be invalid",
    )


def documentation(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Verdict]:
    """Documentation keywords (and ``x-*`` other than ``x-pii``) that changed."""
    for key in sorted(set(old) | set(new)):
        if not (key in ANNOTATIONS or (key.startswith("x-") and key != "x-pii")):
            continue
        if key in old and key in new and canon(old[key]) == canon(new[key]):
            continue
        kind = "description changed" if key == "description" else "annotation changed"
        reason = f"{key} {_verb(key, old, new)}: documentation only, no data affected"
        yield Verdict(kind, "PATCH", reason, key)


def pii(
    old: dict[str, Any],
    new: dict[str, Any],
    defaults_old: Mapping[str, str],
    defaults_new: Mapping[str, str],
) -> Verdict | None:
    """A changed ``x-pii`` annotation, judged by its effective category and action."""
    if canon(old.get("x-pii")) == canon(new.get("x-pii")):
        return None
    _, o_cat, o_act = pii_status(old)
    _, n_cat, n_act = pii_status(new)
    o_eff = effective_action(o_cat, o_act, defaults_old)
    n_eff = effective_action(n_cat, n_act, defaults_new)
    cls = "REVISION"
    if o_cat == n_cat and o_eff == n_eff:
        cls = "PATCH"
        reason = (
            "PII status declared or rewritten; same category and action as before"
            if o_cat is not None
            else "declared not PII (x-pii: false); values go out as before"
        )
    elif o_cat is None and n_cat is not None:
        reason = f"becomes PII ({n_cat}, action {n_eff}): values sent downstream change from now on"
    elif o_cat is not None and n_cat is None:
        reason = f"no longer PII (was {o_cat}, action {o_eff}): values now go out as sent"
    elif o_cat != n_cat:
        reason = f"PII category changed from {o_cat} to {n_cat} (action {o_eff} -> {n_eff})"
    else:
        loose = PII_ACTION_RANK.get(n_eff, 0) < PII_ACTION_RANK.get(o_eff, 0)
        reason = (
            f"PII action {'loosened' if loose else 'tightened'} from {o_eff} to "
            f"{n_eff}: downstream values no longer join with history"
        )
    return Verdict("PII annotation changed", cls, reason, "x-pii", privacy=True)


def types(old: dict[str, Any], new: dict[str, Any]) -> Verdict | None:
    """A changed ``type``: widened (ADDITION), restricted (REVISION), changed (MODEL)."""
    o, n = type_set(old), type_set(new)
    if o == n:
        return None
    shown_o = "any" if o is None else "|".join(sorted(o))
    shown_n = "any" if n is None else "|".join(sorted(n))
    if covers(n, o):
        reason = f"type widened from {shown_o} to {shown_n}: old data stays valid"
        if _null_only(n, o):
            reason = "now allows null: a widened type"
        return Verdict("type widened", "ADDITION", reason, "type")
    if _overlap(o, n):
        reason = f"type restricted from {shown_o} to {shown_n}: old data may be invalid"
        if _null_only(o, n):
            reason = "no longer allows null: rows holding null become invalid"
        return Verdict("type restricted", "REVISION", reason, "type")
    reason = f"type changed from {shown_o} to {shown_n}: old data is invalid"
    return Verdict("type changed", "MODEL", reason, "type")


def _overlap(old: frozenset[str] | None, new: frozenset[str] | None) -> bool:
    """Whether some value has a type both sets allow (integers are numbers)."""
    if old is None or new is None:
        return True
    wide_o = old | ({"integer"} if "number" in old else set())
    wide_n = new | ({"integer"} if "number" in new else set())
    return bool(wide_o & wide_n)


def _null_only(more: frozenset[str] | None, fewer: frozenset[str] | None) -> bool:
    """True when the type set ``more`` is ``fewer`` plus null."""
    return more is not None and fewer is not None and more - fewer == {"null"}


def _enum_values(schema: dict[str, Any]) -> dict[bytes, Any] | None:
    found: dict[bytes, Any] | None = None
    if "enum" in schema and isinstance(schema["enum"], list):
        found = {canon(v): v for v in schema["enum"]}
    if "const" in schema:  # beside an enum, only the const value remains valid
        key = canon(schema["const"])
        found = {key: schema["const"]} if found is None or key in found else {}
    return found


def enum(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Verdict]:
    """Changes of the fixed list of values (``enum`` and ``const`` together)."""
    o, n = _enum_values(old), _enum_values(new)
    if o == n or (o is not None and n is not None and set(o) == set(n)):
        return
    key = "enum" if "enum" in new or "enum" in old else "const"
    if o is None:
        reason = "values restricted to a fixed list: old data may hold other values"
        yield Verdict("enum added", "REVISION", reason, key)
    elif n is None:
        reason = "fixed list of values dropped: any value of the type is accepted"
        yield Verdict("enum removed", "ADDITION", reason, key)
    else:
        gone = [o[k] for k in o if k not in n]
        added = [n[k] for k in n if k not in o]
        if gone:
            cls = "REVISION" if len(gone) < len(o) else "MODEL"
            reason = f"values {_shown(gone)} no longer allowed: old data holding them is invalid"
            yield Verdict("enum values removed", cls, reason, key)
        if added:
            reason = f"values {_shown(added)} now allowed: old data stays valid"
            yield Verdict("enum values added", "ADDITION", reason, key)


def bounds(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Verdict]:
    """Bounds, lengths, ``multipleOf``, ``pattern``, ``format``.

    Loosened: ADDITION (old data stays valid); tightened: REVISION (some old data may fall
    outside); changed in a way the keyword alone cannot order: REVISION, uncertain.
    """
    for key in (*_LOWER, *_UPPER, *_OTHER_BOUNDS):
        if key not in old and key not in new:
            continue
        a, b = old.get(key), new.get(key)
        if canon(a) == canon(b):
            continue
        tighter = _tighter(key, a, b)
        verb = {True: "tightened", False: "loosened", None: "changed"}[tighter]
        shown = f"{_shown(a) if key in old else 'none'} -> {_shown(b) if key in new else 'none'}"
        if tighter is False:
            reason = f"{key} {verb} ({shown}): old data stays valid"
            yield Verdict(f"constraint {verb}", "ADDITION", reason, key)
            continue
        reason = f"{key} {verb} ({shown}): old data may fall outside"
        yield Verdict(f"constraint {verb}", "REVISION", reason, key, uncertain=tighter is None)


def _tighter(key: str, a: Any, b: Any) -> bool | None:
    """True when ``b`` restricts more than ``a``, False when less, None when unknown."""
    if a is None or a is False:
        return True
    if b is None or b is False:
        return False
    if key in _LOWER and _num(a) and _num(b):
        return bool(b > a)
    if key in _UPPER and _num(a) and _num(b):
        return bool(b < a)
    if key == "multipleOf" and _num(a) and _num(b) and b:
        ratio = a / b
        if ratio == int(ratio):
            return False
        if b / a == int(b / a):
            return True
    return None


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- object members ---------------------------------------------------------------------------
def added_property(
    schema: Any,
    *,
    required: bool,
    old_closed: bool,
    by_controls: bool,
    pii_defaults: Mapping[str, str],
    old_accepted: bool = False,
) -> Verdict:
    """A property in the new schema only (``schema`` with its ``$ref`` resolved).

    Args:
        required: the new schema requires it.
        old_closed: the old object accepted no property by that name.
        by_controls: the plan's controls closed it (not ``additionalProperties``).
        pii_defaults: the new plan's default action per PII category.
        old_accepted: proved: every value the old object accepted under this name is
            valid under the new property schema.
    """
    if required:
        cls, reason = "MODEL", "new required property: old data lacks it and is invalid"
    elif old_closed:
        why = (
            "plan controls omit unplanned properties"
            if by_controls
            else "additionalProperties was false"
        )
        cls, reason = "ADDITION", f"new optional property ({why}: old data cannot hold it)"
    elif old_accepted:
        cls, reason = (
            "ADDITION",
            "new optional property accepting every value the open object accepted before",
        )
    else:
        cls, reason = (
            "REVISION",
            "new optional property on an open object (additionalProperties not false): "
            "old data may hold other values under this name",
        )
    _, category, action = pii_status(schema)
    if category is None:
        return Verdict("property added", cls, reason)
    act = effective_action(category, action, pii_defaults)
    reason += f"; new PII ({category}, action {act})"
    return Verdict("property added", cls, reason, privacy=True)


def removed_property(*, new_closed: bool, was_required: bool, still_accepted: bool) -> Verdict:
    """A property in the old schema only.

    Args:
        new_closed: the new object rejects properties it does not list.
        was_required: every old value held it.
        still_accepted: proved: the new object accepts every value it had.
    """
    if new_closed:
        if was_required:
            reason = "required property removed from a closed object: every old value held it"
            return Verdict("property removed", "MODEL", reason)
        reason = "removed from a closed object: old data holding it is now invalid"
        return Verdict("property removed", "REVISION", reason)
    if still_accepted:
        reason = (
            "removed: old data stays valid (the object is open) but the column is no "
            "longer filled"
        )
        if was_required:
            reason += "; it was required"
        return Verdict("property removed", "ADDITION", reason)
    reason = "removed: its values now meet additionalProperties, which may reject them"
    return Verdict("property removed", "REVISION", reason)


def additional_properties(old: Any, new: Any, *, by_controls: bool) -> Verdict:
    """A changed ``additionalProperties`` (not two schema objects: those are walked)."""
    kind = "additionalProperties changed"
    if new is False and not by_controls:
        reason = "object closed: old data with properties not listed is invalid"
        return Verdict(kind, "REVISION", reason, "additionalProperties")
    if new is None or new is True or new == {}:
        reason = (
            "object opened: old data stays valid (a property added later is a REVISION)"
            if old is False
            else "properties not listed are accepted whatever their value"
        )
        return Verdict(kind, "ADDITION", reason, "additionalProperties")
    if old is False:
        reason = "object opened to properties of a schema: old data stays valid"
        return Verdict(kind, "ADDITION", reason, "additionalProperties")
    reason = "schema of properties not listed changed: old data may not match it"
    return Verdict(kind, "REVISION", reason, "additionalProperties", uncertain=True)


# -- arrays, combinators and keywords trackplan cannot reason about -----------------------------
def items(old: Any, new: Any) -> Verdict:
    """A changed ``items`` whose two sides cannot be walked side by side."""
    if old is None:
        reason = "array items constrained: old data may hold other items"
        return Verdict("constraint tightened", "REVISION", reason, "items", uncertain=True)
    if new is None:
        reason = "array items unconstrained: old data stays valid"
        return Verdict("constraint loosened", "ADDITION", reason, "items")
    reason = "array item schema changed shape"
    return Verdict("type changed", "REVISION", reason, "items", uncertain=True)


def combinator(key: str, old: Any, new: Any) -> Verdict:
    """A changed ``anyOf``/``oneOf``/``allOf`` whose branches do not pair one to one."""
    sa = {canon(x) for x in old} if isinstance(old, list) else None
    sb = {canon(x) for x in new} if isinstance(new, list) else None
    if sb is None:
        widened = True
    elif sa is None:
        widened = False
    else:
        widened = sb < sa if key == "allOf" else sa < sb
    if widened and key == "anyOf":
        return Verdict("type widened", "ADDITION", f"{key} accepts more: old data stays valid", key)
    reason = f"{key} changed: old data may not match it"
    return Verdict("type changed", "REVISION", reason, key, uncertain=True)


def schema_entry(key: str, *, added: bool) -> Verdict:
    """A ``patternProperties``/``dependentSchemas`` entry added or removed."""
    if added:
        reason = f"{key} entry added: old data may not match it"
        return Verdict("constraint tightened", "REVISION", reason, uncertain=True)
    reason = f"{key} entry removed: its properties now meet the rest of the schema"
    return Verdict("constraint loosened", "REVISION", reason, uncertain=True)


def unknown(key: str, old: dict[str, Any], new: dict[str, Any]) -> Verdict:
    """A changed keyword trackplan has no rule for: ADDITION when removed, else uncertain."""
    verb = _verb(key, old, new)
    if verb == "removed" and key not in ("additionalItems", "unevaluatedProperties",
                                         "unevaluatedItems", "then", "else"):  # fmt: skip
        return Verdict(
            "constraint loosened", "ADDITION", f"{key} removed: old data stays valid", key
        )
    reason = f"{key} {verb}: old data may not match it"
    return Verdict("constraint changed", "REVISION", reason, key, uncertain=True)


# -- PII actions ------------------------------------------------------------------------------
def effective_action(category: str | None, action: str | None, defaults: Mapping[str, str]) -> str:
    """The action applied to a property: its own, else the plan's default for its category."""
    if category is None:
        return "allow"
    if action is not None:
        return action
    value = defaults.get(category)
    return value if isinstance(value, str) else default_pii_action()


def default_pii_action() -> str:
    """The action for a PII category the plan sets no default for: the PII module's."""
    try:
        from trackplan.pii.policy import DEFAULT_ACTION
    except ImportError:  # pragma: no cover - the PII module is part of trackplan
        return "redact"
    return str(DEFAULT_ACTION)
