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

from trackplan.ci.facts import allows_null, covers, pii_status, type_set

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
    schema itself); ``privacy`` marks changes that concern PII.
    """

    kind: str
    cls: str
    reason: str
    at: str | None = None
    privacy: bool = False


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
        return Verdict("type widened", "REVISION", "the schema now accepts any value")
    if new is False:
        return Verdict("type restricted", "MODEL", "the schema now rejects every value")
    if old is False:
        return Verdict("type widened", "REVISION", "the schema used to reject every value")
    return Verdict(
        "type restricted", "MODEL", "the schema used to accept any value and now constrains it"
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
    """A changed ``type``: widened (REVISION), restricted or changed (MODEL)."""
    o, n = type_set(old), type_set(new)
    if o == n:
        return None
    shown_o = "any" if o is None else "|".join(sorted(o))
    shown_n = "any" if n is None else "|".join(sorted(n))
    if covers(n, o):
        reason = f"type widened from {shown_o} to {shown_n}: old data stays valid"
        if _null_only(n, o):
            reason = "now allows null: a widened type"
        return Verdict("type widened", "REVISION", reason, "type")
    if covers(o, n):
        reason = f"type restricted from {shown_o} to {shown_n}: old data may be invalid"
        if _null_only(o, n):
            reason = "no longer allows null: rows holding null become invalid"
        return Verdict("type restricted", "MODEL", reason, "type")
    reason = f"type changed from {shown_o} to {shown_n}: old data is invalid"
    return Verdict("type changed", "MODEL", reason, "type")


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
        yield Verdict("enum added", "MODEL", reason, key)
    elif n is None:
        reason = "fixed list of values dropped: any value of the type is accepted"
        yield Verdict("enum removed", "REVISION", reason, key)
    else:
        gone = [o[k] for k in o if k not in n]
        added = [n[k] for k in n if k not in o]
        if gone:
            reason = f"values {_shown(gone)} no longer allowed: old data holding them is invalid"
            yield Verdict("enum values removed", "MODEL", reason, key)
        if added:
            reason = f"values {_shown(added)} now allowed: consumers may meet new values"
            yield Verdict("enum values added", "REVISION", reason, key)


def bounds(old: dict[str, Any], new: dict[str, Any]) -> Iterator[Verdict]:
    """Bounds, lengths, ``multipleOf``, ``pattern``, ``format``: always REVISION."""
    for key in (*_LOWER, *_UPPER, *_OTHER_BOUNDS):
        if key not in old and key not in new:
            continue
        a, b = old.get(key), new.get(key)
        if canon(a) == canon(b):
            continue
        tighter = _tighter(key, a, b)
        verb = {True: "tightened", False: "loosened", None: "changed"}[tighter]
        shown = f"{_shown(a) if key in old else 'none'} -> {_shown(b) if key in new else 'none'}"
        reason = f"{key} {verb} ({shown}): Snowplow counts bound changes as REVISION" + (
            ", old data may fall outside" if tighter is not False else ""
        )
        yield Verdict(f"constraint {verb}", "REVISION", reason, key)


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
) -> Verdict:
    """A property in the new schema only (``schema`` with its ``$ref`` resolved).

    Args:
        required: the new schema requires it.
        old_closed: the old object accepted no property by that name.
        by_controls: the plan's controls closed it (not ``additionalProperties``).
        pii_defaults: the new plan's default action per PII category.
    """
    if required:
        cls, reason = "MODEL", "new required property: old data lacks it and is invalid"
    elif not old_closed:
        cls, reason = (
            "MODEL",
            (
                "the old schema accepted any value under this name "
                "(additionalProperties not false): old data may hold other values"
            ),
        )
    elif allows_null(schema):
        why = (
            "plan controls omit unplanned properties"
            if by_controls
            else "additionalProperties was false"
        )
        cls, reason = "ADDITION", f"new optional property that allows null ({why})"
    else:
        cls, reason = (
            "MODEL",
            (
                "new optional property that does not allow null: Snowplow counts "
                "non-nullable additions as MODEL (add null to its type for an ADDITION)"
            ),
        )
    _, category, action = pii_status(schema)
    if category is None:
        return Verdict("property added", cls, reason)
    act = effective_action(category, action, pii_defaults)
    reason += f"; new PII ({category}, action {act})"
    return Verdict("property added", cls, reason, privacy=True)


def removed_property(*, new_closed: bool, was_required: bool) -> Verdict:
    """A property in the old schema only: MODEL when the new object is closed."""
    if new_closed:
        reason = "removed from a closed object: old data holding it is now invalid"
        return Verdict("property removed", "MODEL", reason)
    reason = "removed: old data stays valid (the object is open) but the column is no longer filled"
    if was_required:
        reason += "; it was required"
    return Verdict("property removed", "REVISION", reason)


def additional_properties(old: Any, new: Any, *, by_controls: bool) -> Verdict:
    """A changed ``additionalProperties`` (not two schema objects: those are walked)."""
    kind = "additionalProperties changed"
    if new is False and not by_controls:
        reason = "object closed: old data with properties not listed is invalid"
        return Verdict(kind, "MODEL", reason, "additionalProperties")
    if old is False and not by_controls:
        reason = "object opened: any property is accepted, later additions become MODEL changes"
        return Verdict(kind, "REVISION", reason, "additionalProperties")
    cls = "REVISION" if new is None or new is True or new == {} else "MODEL"
    return Verdict(kind, cls, "schema of properties not listed changed", "additionalProperties")


# -- arrays, combinators and keywords trackplan cannot reason about -----------------------------
def items(old: Any, new: Any) -> Verdict:
    """A changed ``items`` whose two sides cannot be walked side by side."""
    if old is None:
        reason = "array items constrained: old data may hold other items"
        return Verdict("constraint tightened", "MODEL", reason, "items")
    if new is None:
        return Verdict("constraint loosened", "REVISION", "array items unconstrained", "items")
    return Verdict("type changed", "MODEL", "array item schema changed shape", "items")


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
    if widened:
        return Verdict("type widened", "REVISION", f"{key} accepts more: old data stays valid", key)
    reason = f"{key} changed: trackplan cannot prove old data stays valid"
    return Verdict("type changed", "MODEL", reason, key)


def schema_entry(key: str, *, added: bool) -> Verdict:
    """A ``patternProperties``/``dependentSchemas`` entry added or removed."""
    if added:
        reason = f"{key} entry added: old data may not match it"
        return Verdict("constraint tightened", "MODEL", reason)
    return Verdict("constraint loosened", "REVISION", f"{key} entry removed")


def unknown(key: str, old: dict[str, Any], new: dict[str, Any]) -> Verdict:
    """A changed keyword trackplan cannot reason about: MODEL unless it was removed."""
    verb = _verb(key, old, new)
    if verb == "removed":
        return Verdict(
            "constraint loosened", "REVISION", f"{key} removed: old data stays valid", key
        )
    reason = f"{key} {verb}: trackplan cannot prove old data stays valid"
    return Verdict("constraint changed", "MODEL", reason, key)


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
