"""Compare two JSON Schemas and classify every change in SchemaVer's sense.

The rules follow Snowplow's schema-ddl, where an issue of ours does not say otherwise:

* **MODEL** (breaks historical data): a new required property, a property becoming
  required, a new optional property that does not allow null, a type restricted or
  changed, enum values removed, an object closed (``additionalProperties: false``), a
  property added where the old schema accepted anything under that name.
* **REVISION** (may break some data or consumers): a type widened, bounds, lengths,
  ``multipleOf``, ``pattern`` or ``format`` changed, enum values added, a property no
  longer required, a property removed from an open object, a PII annotation changed.
* **ADDITION** (breaks nothing): a new optional property that allows null, added to an
  object that did not accept it before (closed by ``additionalProperties: false``, or by
  the plan's ``unplanned_properties: omit|block`` control at the payload root).
* **PATCH**: documentation only (``description``, ``title``, ``examples``, ``x-*``).

Keywords trackplan cannot reason about (``not``, ``if``, ``propertyNames``, ...) are
MODEL when they change: a change we cannot prove compatible is treated as breaking.

>>> [c.cls for c in compare_schemas({"type": "integer"}, {"type": "number"})]
['REVISION']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from trackplan import pointer as jp
from trackplan.ci.facts import (
    allows_null,
    column_type,
    covers,
    is_closed,
    pii_status,
    type_set,
)

__all__ = [
    "CLASSES",
    "RANK",
    "SchemaChange",
    "Context",
    "compare_schemas",
    "column_type",
    "type_set",
    "pii_status",
    "PII_ACTION_RANK",
]

#: Change classes from the least to the most severe.
CLASSES = ("PATCH", "ADDITION", "REVISION", "MODEL")
RANK = {name: i for i, name in enumerate(CLASSES)}

#: PII actions from the least to the most protective; a lower rank is "looser".
PII_ACTION_RANK = {"allow": 0, "hash": 1, "mask": 2, "redact": 3, "drop": 4, "reject": 5}

_ANNOTATIONS = frozenset(
    {"description", "title", "examples", "default", "$comment", "deprecated", "readOnly",
     "writeOnly", "$schema", "$id", "$anchor", "labels"}
)  # fmt: skip
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_OTHER_BOUNDS = ("multipleOf", "pattern", "format", "uniqueItems")
_HANDLED = frozenset(
    {"type", "enum", "const", "properties", "required", "additionalProperties", "items",
     "anyOf", "oneOf", "allOf", "x-pii", "$ref", "definitions", "$defs",
     *_LOWER, *_UPPER, *_OTHER_BOUNDS}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One change between two schemas.

    ``pointer`` is relative to the compared schemas; ``prop`` is the property path
    (``products[].price``); ``warehouse`` names a column type change (``BIGINT -> DOUBLE``).
    """

    kind: str
    pointer: str
    cls: str
    reason: str
    prop: str | None = None
    warehouse: str | None = None
    privacy: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What the comparison needs beyond the two schemas.

    ``resolve_old``/``resolve_new`` turn a local ``$ref`` into its target (``None`` when
    it does not resolve); ``root_closed`` says the payload root accepts no unplanned
    property (the plan's controls omit or block them); ``pii_defaults_*`` map PII
    categories to the plan's default action.
    """

    resolve_old: Callable[[str], Any] = field(default=lambda _ref: None)
    resolve_new: Callable[[str], Any] = field(default=lambda _ref: None)
    root_closed: bool = False
    refs_stable: bool = True
    pii_defaults_old: Mapping[str, str] = field(default_factory=dict)
    pii_defaults_new: Mapping[str, str] = field(default_factory=dict)


def _canon(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _fmt(value: Any) -> str:
    text = _canon(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


# -- comparison ---------------------------------------------------------------------------
class _Walk:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.out: list[SchemaChange] = []

    def add(
        self, kind: str, ptr: str, cls: str, reason: str, prop: str | None, **extra: Any
    ) -> None:
        self.out.append(SchemaChange(kind, ptr, cls, reason, prop, **extra))

    def deref(
        self, schema: Any, resolve: Callable[[str], Any], seen: frozenset[str]
    ) -> tuple[Any, frozenset[str]]:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in seen:
                break
            target = resolve(ref)
            if target is None:
                break
            seen = seen | {ref}
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if isinstance(target, dict) else target
        return schema, seen

    def compare(
        self,
        old: Any,
        new: Any,
        ptr: str,
        prop: str | None,
        seen: tuple[frozenset[str], frozenset[str]],
        *,
        root: bool = False,
    ) -> None:
        old, seen_old = self.deref(old, self.ctx.resolve_old, seen[0])
        new, seen_new = self.deref(new, self.ctx.resolve_new, seen[1])
        seen = (seen_old, seen_new)
        same = _canon(old)
        if same == _canon(new) and (self.ctx.refs_stable or b'"$ref"' not in same):
            return
        if not isinstance(old, dict) or not isinstance(new, dict):
            self._booleans(old, new, ptr, prop)
            return
        start = len(self.out)
        self._annotations(old, new, ptr, prop)
        self._pii(old, new, ptr, prop)
        self._type(old, new, ptr, prop)
        self._enum(old, new, ptr, prop)
        self._bounds(old, new, ptr, prop)
        self._object(old, new, ptr, prop, seen, root=root)
        self._array(old, new, ptr, prop, seen)
        self._combinators(old, new, ptr, prop, seen)
        self._unknown(old, new, ptr, prop)
        before, after = column_type(old), column_type(new)
        if before != after:
            for i in range(start, len(self.out)):
                change = self.out[i]
                if change.pointer.startswith(ptr) and change.cls != "PATCH":
                    self.out[i] = replace(change, warehouse=f"{before} -> {after}")
                    break

    def _booleans(self, old: Any, new: Any, ptr: str, prop: str | None) -> None:
        if new is True or new == {}:
            self.add("type widened", ptr, "REVISION", "the schema now accepts any value", prop)
        elif new is False:
            self.add("type restricted", ptr, "MODEL", "the schema now rejects every value", prop)
        elif old is False:
            self.add("type widened", ptr, "REVISION", "the schema used to reject every value", prop)
        else:
            self.add(
                "type restricted",
                ptr,
                "MODEL",
                "the schema used to accept any value and now constrains it",
                prop,
            )

    def _annotations(
        self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None
    ) -> None:
        for key in sorted(set(old) | set(new)):
            if not (key in _ANNOTATIONS or (key.startswith("x-") and key != "x-pii")):
                continue
            if key in old and key in new and _canon(old[key]) == _canon(new[key]):
                continue
            verb = "added" if key not in old else "removed" if key not in new else "changed"
            kind = "description changed" if key == "description" else "annotation changed"
            self.add(
                kind,
                jp.join(ptr, key),
                "PATCH",
                f"{key} {verb}: documentation only, no data affected",
                prop,
            )

    def _pii(self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None) -> None:
        if _canon(old.get("x-pii")) == _canon(new.get("x-pii")):
            return
        _, o_cat, o_act = pii_status(old)
        _, n_cat, n_act = pii_status(new)
        o_eff = _effective(o_cat, o_act, self.ctx.pii_defaults_old)
        n_eff = _effective(n_cat, n_act, self.ctx.pii_defaults_new)
        where = jp.join(ptr, "x-pii")
        if o_cat == n_cat and o_eff == n_eff:
            self.add(
                "PII annotation changed",
                where,
                "PATCH",
                "PII status declared or rewritten; same category and action as before"
                if o_cat is not None
                else "declared not PII (x-pii: false); values go out as before",
                prop,
                privacy=True,
            )
            return
        if o_cat is None and n_cat is not None:
            reason = (
                f"becomes PII ({n_cat}, action {n_eff}): values sent downstream change from now on"
            )
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
        self.add("PII annotation changed", where, "REVISION", reason, prop, privacy=True)

    def _type(self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None) -> None:
        o, n = type_set(old), type_set(new)
        if o == n:
            return
        where = jp.join(ptr, "type")
        shown_o = "any" if o is None else "|".join(sorted(o))
        shown_n = "any" if n is None else "|".join(sorted(n))
        if covers(n, o):
            if o is not None and n is not None and n - o == {"null"}:
                reason = "now allows null: a widened type"
            else:
                reason = f"type widened from {shown_o} to {shown_n}: old data stays valid"
            self.add("type widened", where, "REVISION", reason, prop)
        elif covers(o, n):
            if o is not None and n is not None and o - n == {"null"}:
                reason = "no longer allows null: rows holding null become invalid"
            else:
                reason = f"type restricted from {shown_o} to {shown_n}: old data may be invalid"
            self.add("type restricted", where, "MODEL", reason, prop)
        else:
            self.add(
                "type changed",
                where,
                "MODEL",
                f"type changed from {shown_o} to {shown_n}: old data is invalid",
                prop,
            )

    def _enum(self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None) -> None:
        def values(s: dict[str, Any]) -> dict[bytes, Any] | None:
            found: dict[bytes, Any] | None = None
            if "enum" in s and isinstance(s["enum"], list):
                found = {_canon(v): v for v in s["enum"]}
            if "const" in s:  # beside an enum, only the const value remains valid
                key = _canon(s["const"])
                found = {key: s["const"]} if found is None or key in found else {}
            return found

        o, n = values(old), values(new)
        if o == n or (o is not None and n is not None and set(o) == set(n)):
            return
        key = "enum" if "enum" in new or "enum" in old else "const"
        where = jp.join(ptr, key)
        if o is None:
            self.add(
                "enum added",
                where,
                "MODEL",
                "values restricted to a fixed list: old data may hold other values",
                prop,
            )
        elif n is None:
            self.add(
                "enum removed",
                where,
                "REVISION",
                "fixed list of values dropped: any value of the type is accepted",
                prop,
            )
        else:
            gone = [o[k] for k in o if k not in n]
            added = [n[k] for k in n if k not in o]
            if gone:
                self.add(
                    "enum values removed",
                    where,
                    "MODEL",
                    f"values {_fmt(gone)} no longer allowed: old data holding them is invalid",
                    prop,
                )
            if added:
                self.add(
                    "enum values added",
                    where,
                    "REVISION",
                    f"values {_fmt(added)} now allowed: consumers may meet new values",
                    prop,
                )

    def _bounds(self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None) -> None:
        for key in (*_LOWER, *_UPPER, *_OTHER_BOUNDS):
            if key not in old and key not in new:
                continue
            a, b = old.get(key), new.get(key)
            if _canon(a) == _canon(b):
                continue
            tighter = _tighter(key, a, b)
            verb = {True: "tightened", False: "loosened", None: "changed"}[tighter]
            shown = f"{_fmt(a) if key in old else 'none'} -> {_fmt(b) if key in new else 'none'}"
            self.add(
                f"constraint {verb}",
                jp.join(ptr, key),
                "REVISION",
                f"{key} {verb} ({shown}): Snowplow counts bound changes as REVISION"
                + (", old data may fall outside" if tighter is not False else ""),
                prop,
            )

    def _object(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        ptr: str,
        prop: str | None,
        seen: tuple[frozenset[str], frozenset[str]],
        *,
        root: bool,
    ) -> None:
        o_props = _props(old)
        n_props = _props(new)
        o_req = {r for r in old.get("required", []) if isinstance(r, str)}
        n_req = {r for r in new.get("required", []) if isinstance(r, str)}
        closed_by_controls = root and self.ctx.root_closed
        old_closed = is_closed(old) or closed_by_controls
        new_closed = is_closed(new) or closed_by_controls
        base = jp.join(ptr, "properties")
        for name in sorted(set(o_props) | set(n_props)):
            where = jp.join(base, name)
            sub = name if prop is None else f"{prop}.{name}"
            if name in o_props and name in n_props:
                self.compare(o_props[name], n_props[name], where, sub, seen)
                continue
            if name in n_props:
                added, _ = self.deref(n_props[name], self.ctx.resolve_new, frozenset())
                self._added(added, name in n_req, old_closed, closed_by_controls, where, sub)
                _, category, action = pii_status(added)
                if category is not None:
                    act = _effective(category, action, self.ctx.pii_defaults_new)
                    last = self.out[-1]
                    self.out[-1] = replace(
                        last,
                        privacy=True,
                        reason=last.reason + f"; new PII ({category}, action {act})",
                    )
            else:
                if new_closed:
                    self.add(
                        "property removed",
                        where,
                        "MODEL",
                        "removed from a closed object: old data holding it is now invalid",
                        sub,
                    )
                else:
                    self.add(
                        "property removed",
                        where,
                        "REVISION",
                        "removed: old data stays valid (the object is open) but the "
                        "column is no longer filled"
                        + ("; it was required" if name in o_req else ""),
                        sub,
                    )
        for name in sorted(n_req - o_req):
            if name in o_props or name not in n_props:
                self.add(
                    "required added",
                    jp.join(ptr, "required"),
                    "MODEL",
                    f"'{name}' becomes required: old data without it is invalid",
                    name if prop is None else f"{prop}.{name}",
                )
        for name in sorted(o_req - n_req):
            if name in n_props or name not in o_props:
                self.add(
                    "required removed",
                    jp.join(ptr, "required"),
                    "REVISION",
                    f"'{name}' no longer required: consumers may now miss it",
                    name if prop is None else f"{prop}.{name}",
                )
        a, b = old.get("additionalProperties"), new.get("additionalProperties")
        if _canon(a) != _canon(b):
            where = jp.join(ptr, "additionalProperties")
            if b is False and not closed_by_controls:
                self.add(
                    "additionalProperties changed",
                    where,
                    "MODEL",
                    "object closed: old data with properties not listed is invalid",
                    prop,
                )
            elif a is False and not closed_by_controls:
                self.add(
                    "additionalProperties changed",
                    where,
                    "REVISION",
                    "object opened: any property is accepted, later additions become MODEL changes",
                    prop,
                )
            elif isinstance(a, dict) and isinstance(b, dict):
                self.compare(a, b, where, prop, seen)
            elif a is not None or b is not None:
                self.add(
                    "additionalProperties changed",
                    where,
                    "REVISION" if _covers_schema(b) else "MODEL",
                    "schema of properties not listed changed",
                    prop,
                )

    def _added(
        self,
        schema: Any,
        required: bool,
        old_closed: bool,
        by_controls: bool,
        where: str,
        prop: str,
    ) -> None:
        if required:
            self.add(
                "property added",
                where,
                "MODEL",
                "new required property: old data lacks it and is invalid",
                prop,
            )
            return
        if not old_closed:
            self.add(
                "property added",
                where,
                "MODEL",
                "the old schema accepted any value under this name "
                "(additionalProperties not false): old data may hold other values",
                prop,
            )
            return
        why = (
            "plan controls omit unplanned properties"
            if by_controls
            else "additionalProperties was false"
        )
        if allows_null(schema):
            self.add(
                "property added",
                where,
                "ADDITION",
                f"new optional property that allows null ({why})",
                prop,
            )
        else:
            self.add(
                "property added",
                where,
                "MODEL",
                "new optional property that does not allow null: Snowplow counts "
                "non-nullable additions as MODEL (add null to its type for an ADDITION)",
                prop,
            )

    def _array(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        ptr: str,
        prop: str | None,
        seen: tuple[frozenset[str], frozenset[str]],
    ) -> None:
        a, b = old.get("items"), new.get("items")
        if _canon(a) == _canon(b):
            return
        where = jp.join(ptr, "items")
        sub = f"{prop or ''}[]"
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                self.compare(x, y, jp.join(where, i), sub, seen)
        elif isinstance(a, dict | bool) and isinstance(b, dict | bool):
            self.compare(a, b, where, sub, seen)
        elif a is None:
            self.add(
                "constraint tightened",
                where,
                "MODEL",
                "array items constrained: old data may hold other items",
                sub,
            )
        elif b is None:
            self.add("constraint loosened", where, "REVISION", "array items unconstrained", sub)
        else:
            self.add("type changed", where, "MODEL", "array item schema changed shape", sub)

    def _combinators(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        ptr: str,
        prop: str | None,
        seen: tuple[frozenset[str], frozenset[str]],
    ) -> None:
        for key in ("anyOf", "oneOf", "allOf"):
            a, b = old.get(key), new.get(key)
            if _canon(a) == _canon(b):
                continue
            where = jp.join(ptr, key)
            if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    self.compare(x, y, jp.join(where, i), prop, seen)
                continue
            sa = {_canon(x) for x in a} if isinstance(a, list) else None
            sb = {_canon(x) for x in b} if isinstance(b, list) else None
            if sb is None:
                widened = True
            elif sa is None:
                widened = False
            else:
                widened = sb < sa if key == "allOf" else sa < sb
            if widened:
                self.add(
                    "type widened",
                    where,
                    "REVISION",
                    f"{key} accepts more: old data stays valid",
                    prop,
                )
            else:
                self.add(
                    "type changed",
                    where,
                    "MODEL",
                    f"{key} changed: trackplan cannot prove old data stays valid",
                    prop,
                )

    def _unknown(
        self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None
    ) -> None:
        for key in sorted(set(old) | set(new)):
            if key in _HANDLED or key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if (
                key in ("patternProperties", "dependentSchemas")
                and isinstance(old.get(key), dict)
                and isinstance(new.get(key), dict)
            ):
                for name in sorted(set(old[key]) | set(new[key])):
                    where = jp.join(ptr, key, name)
                    if name in old[key] and name in new[key]:
                        self.compare(
                            old[key][name], new[key][name], where, prop, (frozenset(), frozenset())
                        )
                    elif name in new[key]:
                        self.add(
                            "constraint tightened",
                            where,
                            "MODEL",
                            f"{key} entry added: old data may not match it",
                            prop,
                        )
                    else:
                        self.add(
                            "constraint loosened", where, "REVISION", f"{key} entry removed", prop
                        )
                continue
            if _canon(old.get(key)) == _canon(new.get(key)):
                continue
            verb = "added" if key not in old else "removed" if key not in new else "changed"
            if verb == "removed":
                self.add(
                    "constraint loosened",
                    jp.join(ptr, key),
                    "REVISION",
                    f"{key} removed: old data stays valid",
                    prop,
                )
            else:
                self.add(
                    "constraint changed",
                    jp.join(ptr, key),
                    "MODEL",
                    f"{key} {verb}: trackplan cannot prove old data stays valid",
                    prop,
                )


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    value = schema.get("properties")
    return value if isinstance(value, dict) else {}


def _covers_schema(schema: Any) -> bool:
    return schema is None or schema is True or schema == {}


def _effective(category: str | None, action: str | None, defaults: Mapping[str, str]) -> str:
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


def compare_schemas(
    old: Any, new: Any, ctx: Context | None = None, *, pointer: str = "", root: bool = True
) -> list[SchemaChange]:
    """Every change from ``old`` to ``new`` with its class and reason.

    Args:
        old, new: JSON Schemas (dicts or booleans); ``None`` means "no schema".
        ctx: ``$ref`` resolvers, root closedness and PII defaults.
        pointer: prefix of the pointers in the result.
        root: whether the schemas are a payload root (plan controls may close it).
    """
    walk = _Walk(ctx or Context())
    try:
        walk.compare(
            old if old is not None else True,
            new if new is not None else True,
            pointer,
            None,
            (frozenset(), frozenset()),
            root=root,
        )
    except RecursionError:
        walk.add("type changed", pointer, "MODEL", "schemas nest too deeply to compare", None)
    return walk.out
