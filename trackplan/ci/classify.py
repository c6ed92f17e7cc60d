"""Compare two JSON Schemas and classify every change in SchemaVer's sense.

The classes follow the definitions on Snowplow's SchemaVer page: what a change does to
the set of valid values (the historical data).

* **ADDITION**: every value valid under the old schema is valid under the new one ("is
  compatible with all historical data"): a new optional property on a closed object, an
  object opened, a type widened, bounds loosened, enum values added, a property no longer
  required, a keyword removed.
* **MODEL**: (practically) no old value stays valid ("will prevent interaction with any
  historical data"): a new required property, a property becoming required, a type
  changed to one with no value in common, every enum value removed.
* **REVISION**: anything between ("may prevent interaction with some historical data"):
  a new optional property on an open object (old data may hold other values under that
  name), a type restricted, bounds tightened, an object closed.
* **PATCH**: documentation only (``description``, ``title``, ``examples``, ``x-*``).
  A changed ``x-pii`` is a REVISION when it changes what is sent downstream.

Each keyword's change gets a class from :mod:`trackplan.ci.keywords`; then, at each
compared schema, :func:`trackplan.ci.inclusion.includes` tries to prove every old value
still valid (turning the changes there into ADDITIONs when it can), and changes no rule
settles are given to :func:`trackplan.ci.search.search`, which looks for an old-valid,
new-invalid value and shows it (strings masked). When neither a proof nor a
counterexample is found the change says "could not prove" and keeps a conservative class.

>>> [c.cls for c in compare_schemas({"type": "integer"}, {"type": "number"})]
['ADDITION']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from trackplan import pointer as jp
from trackplan.ci import keywords as kw
from trackplan.ci import search as cx
from trackplan.ci.facts import column_type, is_closed, pii_status, type_set
from trackplan.ci.inclusion import includes
from trackplan.ci.keywords import PII_ACTION_RANK, Verdict, canon, default_pii_action

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
    "default_pii_action",
]

#: Change classes from the least to the most severe.
CLASSES = ("PATCH", "ADDITION", "REVISION", "MODEL")
RANK = {name: i for i, name in enumerate(CLASSES)}

_Seen = tuple[frozenset[str], frozenset[str]]  # $refs followed so far, old and new side
_NONE_SEEN: _Seen = (frozenset(), frozenset())


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
    counterexample: str | None = None
    uncertain: bool = False


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


# -- comparison ---------------------------------------------------------------------------
class _Walk:
    """Walks two schemas side by side; each change found is placed and appended to ``out``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.out: list[SchemaChange] = []

    def add(self, verdict: Verdict | None, ptr: str, prop: str | None) -> None:
        """Record ``verdict`` (if any) at ``ptr``, or at its keyword below ``ptr``."""
        if verdict is None:
            return
        where = ptr if verdict.at is None else jp.join(ptr, verdict.at)
        self.out.append(
            SchemaChange(
                verdict.kind,
                where,
                verdict.cls,
                verdict.reason,
                prop,
                privacy=verdict.privacy,
                uncertain=verdict.uncertain,
            )
        )

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
        self, old: Any, new: Any, ptr: str, prop: str | None, seen: _Seen, *, root: bool = False
    ) -> None:
        old, seen_old = self.deref(old, self.ctx.resolve_old, seen[0])
        new, seen_new = self.deref(new, self.ctx.resolve_new, seen[1])
        seen = (seen_old, seen_new)
        same = canon(old)
        if same == canon(new) and (self.ctx.refs_stable or b'"$ref"' not in same):
            return
        if not isinstance(old, dict) or not isinstance(new, dict):
            self.add(kw.booleans(old, new), ptr, prop)
            return
        start = len(self.out)
        ctx = self.ctx
        for verdict in (
            *kw.documentation(old, new),
            kw.pii(old, new, ctx.pii_defaults_old, ctx.pii_defaults_new),
            kw.types(old, new),
            *kw.enum(old, new),
            *kw.bounds(old, new),
        ):
            self.add(verdict, ptr, prop)
        self._object(old, new, ptr, prop, seen, root=root)
        self._array(old, new, ptr, prop, seen)
        self._combinators(old, new, ptr, prop, seen)
        self._unknown(old, new, ptr, prop)
        self._settle(old, new, start, prop)
        before, after = column_type(old), column_type(new)
        if before != after:
            for i in range(start, len(self.out)):
                change = self.out[i]
                if change.pointer.startswith(ptr) and change.cls != "PATCH":
                    self.out[i] = replace(change, warehouse=f"{before} -> {after}")
                    break

    def _settle(self, old: Any, new: Any, start: int, prop: str | None) -> None:
        """Prove the changes found from ``start`` on compatible, or settle uncertain ones."""
        placed = [
            i
            for i in range(start, len(self.out))
            if self.out[i].cls not in ("PATCH", "ADDITION") and not self.out[i].privacy
        ]
        if not placed:
            return
        ctx = self.ctx
        if includes(old, new, resolve_old=ctx.resolve_old, resolve_new=ctx.resolve_new):
            for i in placed:
                change = self.out[i]
                reason = f"{change.reason}; proved: every value valid before stays valid"
                self.out[i] = replace(change, cls="ADDITION", reason=reason, uncertain=False)
            return
        open_ = [i for i in placed if self.out[i].uncertain]
        if not open_:
            return
        hints = frozenset(_props(new)) if isinstance(new, dict) else frozenset()
        found = cx.search(
            old, new, resolve_old=ctx.resolve_old, resolve_new=ctx.resolve_new, hints=hints
        )
        cls = "REVISION" if found.survivor else "MODEL"
        shown = cx.shown(found.counterexample) if found.found else None
        if found.found:
            note = f"counterexample: {prop or 'the value'} = {shown} was valid and is not now"
        elif found.searched:
            note = "could not prove old data stays valid (no counterexample found)"
        else:
            note = (
                "could not prove old data stays valid (install trackplan[search], "
                "i.e. hypothesis, for a counterexample search)"
            )
        for i in open_:
            change = self.out[i]
            self.out[i] = replace(
                change,
                cls=cls,
                reason=f"{change.reason}; {note}",
                counterexample=shown,
                uncertain=False,
            )

    def _object(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        ptr: str,
        prop: str | None,
        seen: _Seen,
        *,
        root: bool,
    ) -> None:
        o_props = _props(old)
        n_props = _props(new)
        o_req = {r for r in old.get("required", []) if isinstance(r, str)}
        n_req = {r for r in new.get("required", []) if isinstance(r, str)}
        by_controls = root and self.ctx.root_closed
        old_closed = is_closed(old) or by_controls
        new_closed = is_closed(new) or by_controls
        base = jp.join(ptr, "properties")
        for name in sorted(set(o_props) | set(n_props)):
            where = jp.join(base, name)
            sub = _sub(prop, name)
            if name in o_props and name in n_props:
                self.compare(o_props[name], n_props[name], where, sub, seen)
            elif name in n_props:
                added, _ = self.deref(n_props[name], self.ctx.resolve_new, frozenset())
                accepted = "patternProperties" not in old and self._includes(
                    old.get("additionalProperties", True), added
                )
                verdict = kw.added_property(
                    added,
                    required=name in n_req,
                    old_closed=old_closed,
                    by_controls=by_controls,
                    pii_defaults=self.ctx.pii_defaults_new,
                    old_accepted=accepted,
                )
                self.add(verdict, where, sub)
            else:
                kept = "patternProperties" not in new and self._includes(
                    o_props[name], new.get("additionalProperties", True)
                )
                verdict = kw.removed_property(
                    new_closed=new_closed, was_required=name in o_req, still_accepted=kept
                )
                self.add(verdict, where, sub)
        for name in sorted(n_req - o_req):
            if name in o_props or name not in n_props:
                reason = f"'{name}' becomes required: old data without it is invalid"
                verdict = Verdict("required added", "MODEL", reason, "required")
                self.add(verdict, ptr, _sub(prop, name))
        for name in sorted(o_req - n_req):
            if name in n_props or name not in o_props:
                reason = f"'{name}' no longer required: old data stays valid"
                verdict = Verdict("required removed", "ADDITION", reason, "required")
                self.add(verdict, ptr, _sub(prop, name))
        a, b = old.get("additionalProperties"), new.get("additionalProperties")
        if canon(a) == canon(b):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            self.compare(a, b, jp.join(ptr, "additionalProperties"), prop, seen)
        else:
            self.add(kw.additional_properties(a, b, by_controls=by_controls), ptr, prop)

    def _includes(self, old: Any, new: Any) -> bool:
        ctx = self.ctx
        return includes(old, new, resolve_old=ctx.resolve_old, resolve_new=ctx.resolve_new)

    def _array(
        self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None, seen: _Seen
    ) -> None:
        a, b = old.get("items"), new.get("items")
        if canon(a) == canon(b):
            return
        where = jp.join(ptr, "items")
        sub = f"{prop or ''}[]"
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                self.compare(x, y, jp.join(where, i), sub, seen)
        elif isinstance(a, dict | bool) and isinstance(b, dict | bool):
            self.compare(a, b, where, sub, seen)
        else:
            self.add(kw.items(a, b), ptr, sub)

    def _combinators(
        self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None, seen: _Seen
    ) -> None:
        for key in ("anyOf", "oneOf", "allOf"):
            a, b = old.get(key), new.get(key)
            if canon(a) == canon(b):
                continue
            if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    self.compare(x, y, jp.join(ptr, key, i), prop, seen)
            else:
                self.add(kw.combinator(key, a, b), ptr, prop)

    def _unknown(
        self, old: dict[str, Any], new: dict[str, Any], ptr: str, prop: str | None
    ) -> None:
        for key in sorted(set(old) | set(new)):
            if key in kw.HANDLED or key in kw.ANNOTATIONS or key.startswith("x-"):
                continue
            a, b = old.get(key), new.get(key)
            if (
                key in ("patternProperties", "dependentSchemas")
                and isinstance(a, dict)
                and isinstance(b, dict)
            ):
                for name in sorted(set(a) | set(b)):
                    where = jp.join(ptr, key, name)
                    if name in a and name in b:
                        self.compare(a[name], b[name], where, prop, _NONE_SEEN)
                    else:
                        self.add(kw.schema_entry(key, added=name in b), where, prop)
            elif canon(a) != canon(b):
                self.add(kw.unknown(key, old, new), ptr, prop)


def _props(schema: dict[str, Any]) -> dict[str, Any]:
    value = schema.get("properties")
    return value if isinstance(value, dict) else {}


def _sub(prop: str | None, name: str) -> str:
    """The property path of ``name`` under the property path ``prop``."""
    return name if prop is None else f"{prop}.{name}"


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
            _NONE_SEEN,
            root=root,
        )
    except RecursionError:
        reason = "schemas nest too deeply to compare"
        walk.add(Verdict("type changed", "MODEL", reason), pointer, None)
    return walk.out
