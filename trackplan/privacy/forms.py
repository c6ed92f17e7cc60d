"""Per-destination PII forms: the copy of an enforced event one destination may receive.

The plan's PII actions (:mod:`trackplan.pii`) run first, in :meth:`Enforcer.enforce`: they
are the floor every destination gets. A destination's ``pii`` map can only tighten that:
for each declared PII field present in the event, the destination's form for the field's
category applies when it is more protective than the plan's action
(``allow < hash < mask < redact < drop < reject``). A category the destination does not
list is dropped. Where the plan already hashed or masked a value and the destination asks
for the other transformation, the raw value is gone, so the field is redacted. ``reject``
keeps the event away from that destination. A destination without a ``pii`` map gets the
plan's forms as they are (the data-protection report lists it as a gap).

``sha256`` (plain SHA-256 of the normalised value, what ad platforms match on) is the one
form that may differ from a plan's ``hash``: it is made from the raw value (the event as it
came in, which :meth:`DestinationForms.apply` takes as ``source``) where the plan allows or
hashes the category; where the plan masks it the field is redacted, and a stricter plan
action stands. Without the raw value a plan-hashed field is redacted, never passed on as
if its HMAC were the plain hash.

Each action is the one function of :mod:`trackplan.pii.actions`; nothing is redefined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trackplan.pii.actions import Canon, apply_action, plain_hash
from trackplan.pii.policy import PiiPolicy
from trackplan.plan.model import Plan, Rule
from trackplan.privacy.destinations import FORM_RANK, Destination, Privacy

__all__ = ["PiiField", "DestinationForms", "pii_fields", "effective_form"]

#: A path token matching every item of an array (or every value of an object).
ANY = "*"


@dataclass(frozen=True, slots=True)
class PiiField:
    """One declared PII field: the rule it belongs to (None: every call), where it sits in
    a call (tokens; :data:`ANY` for array items), its category and the plan's action."""

    rule: tuple[str, str | None, int] | None
    path: tuple[str, ...]
    category: str
    action: str


def _rule_key(rule: Rule) -> tuple[str, str | None, int]:
    return (rule.kind, rule.name, rule.version)


def pii_fields(plan: Plan, policy: PiiPolicy | None = None) -> list[PiiField]:
    """Every declared PII field of the plan, from its :class:`PiiPolicy`.

    Without ``policy`` one is built; the hash key is not needed for that (nothing is
    hashed here), so a placeholder stands in for it when the environment lacks it.
    """
    if policy is None:
        policy = policy_without_key(plan)
    out = []
    for f in policy.fields:
        if f.category is None:
            continue
        everywhere = f.rule.kind == "common" or (
            f.rule.kind == "identify" and f.path[:2] == ("context", "traits")
        )
        key = None if everywhere else _rule_key(f.rule)
        out.append(PiiField(key, tuple(f.path), f.category, f.action))
    return out


def policy_without_key(plan: Plan, defaults: dict[str, str] | None = None) -> PiiPolicy:
    """The plan's PII policy built without its hash key (for reports and route planning).

    ``defaults`` replaces the plan's per-category defaults (the report uses it to tell
    declared actions from defaulted ones).
    """
    import dataclasses
    import os

    from trackplan.pii.policy import DEFAULT_KEY_ENV, PiiPolicy

    env_name = plan.pii.get("hash_key_env", DEFAULT_KEY_ENV) if plan.pii else DEFAULT_KEY_ENV
    environ = {**os.environ, str(env_name): "placeholder: never used to hash"}
    if defaults is not None:
        plan = dataclasses.replace(plan, pii={**plan.pii, "defaults": defaults})
    return PiiPolicy.from_plan(plan, environ=environ)


def effective_form(plan_action: str, form: str | None) -> str | None:
    """What the destination's form changes on top of the plan's action (None: nothing).

    ``hash`` and ``mask`` are not comparable: when the plan applied one and the
    destination asks for the other, the raw value is gone and the field is redacted.
    """
    if form is None or form == plan_action:
        return None
    if form == "sha256":  # a different hash, not a looser one: from the raw value
        if plan_action in ("allow", "hash"):
            return "sha256"
        return "redact" if plan_action == "mask" else None
    transforms = ("hash", "mask")
    if form in transforms and plan_action in transforms:
        return "redact"
    if FORM_RANK.get(form, 4) <= FORM_RANK.get(plan_action, 0):
        return None
    return form


class DestinationForms:
    """Applies each destination's PII forms to enforced events."""

    def __init__(self, plan: Plan, privacy: Privacy, policy: PiiPolicy | None = None) -> None:
        fields = pii_fields(plan, policy)
        self._policy = policy
        self._common = [f for f in fields if f.rule is None]
        self._by_rule: dict[tuple[str, str | None, int], list[PiiField]] = {}
        for f in fields:
            if f.rule is not None:
                self._by_rule.setdefault(f.rule, []).append(f)
        self._key: bytes | None = None
        # canonical forms before hashing (phones in E.164, in the plan's default region);
        # the keyless policy serves only for that: the key comes from _hash_key below
        self._canon = (policy or policy_without_key(plan)).canon()
        self._plans: dict[Any, tuple[tuple[PiiField, str], ...]] = {}
        needs_key = any(
            effective_form(f.action, d.form(f.category)) == "hash"
            for d in privacy.destinations
            for f in fields
        )
        if needs_key:
            self._key = _hash_key(plan, policy)

    def fields_for(self, rule: Rule | None) -> list[PiiField]:
        """Declared PII fields that apply to calls of ``rule``."""
        own = self._by_rule.get(_rule_key(rule), []) if rule is not None else []
        return [*self._common, *own]

    def _plan_for(self, dest: Destination, rule: Rule | None) -> tuple[tuple[PiiField, str], ...]:
        """The fields ``dest`` changes for calls of ``rule``, with the form (cached)."""
        key = (dest.name, _rule_key(rule) if rule is not None else None)
        found = self._plans.get(key)
        if found is None:
            found = tuple(
                (f, form)
                for f in self.fields_for(rule)
                if (form := effective_form(f.action, dest.form(f.category))) is not None
            )
            self._plans[key] = found
        return found

    def apply(
        self, dest: Destination, event: Any, rule: Rule | None = None, *, source: Any = None
    ) -> tuple[Any, tuple[str, ...]]:
        """``(copy for dest, rejected categories)``; the event itself when nothing changes.

        ``source`` is the event as it came in, before the plan's actions: ``sha256`` forms
        are made from its values. The copy shares every part of the event it does not
        change (copy on write).
        """
        if dest.pii is None or type(event) is not dict:
            return event, ()
        todo = [(f, form) for f, form in self._plan_for(dest, rule) if _present(event, f.path)]
        if not todo:
            return event, ()
        rejected = sorted({f.category for f, form in todo if form == "reject"})
        if rejected:
            return None, tuple(rejected)
        copy = dict(event)
        owned = {id(copy)}
        for f, form in todo:
            if form == "sha256":
                _plain(copy, owned, f, source, self._canon)
            else:
                _rewrite(copy, owned, f.path, f.category, form, self._key, self._canon)
        return copy, ()


def _plain(
    root: dict[str, Any], owned: set[int], f: PiiField, source: Any, canon: Canon
) -> None:
    """Write the plain SHA-256 of each raw value at ``f.path`` (read from ``source``; from
    the event itself where the plan allows the category); redact where no raw value is."""
    raw = source if f.action != "allow" else root
    *head, last = f.path
    pairs: list[tuple[Any, Any]] = [(root, raw)]
    for token in head:
        nxt = []
        for p, r in pairs:
            for slot in _slots(p, token):
                child = _own(p, slot, owned)
                nxt.append((child, _at(r, slot)))
        pairs = nxt
    for p, r in pairs:
        for slot in _slots(p, last):
            value = _at(r, slot)
            if value is _ABSENT or value is None or isinstance(value, dict | list):
                p[slot] = apply_action("redact", f.category, p[slot], None)[1]
            else:
                p[slot] = plain_hash(f.category, value, canon=canon)


_ABSENT = object()


def _at(node: Any, slot: Any) -> Any:
    """``node[slot]`` when it is there (a dict key or a list index), else ``_ABSENT``."""
    if type(node) is dict and type(slot) is str:
        return node.get(slot, _ABSENT)
    if type(node) is list and type(slot) is int and 0 <= slot < len(node):
        return node[slot]
    return _ABSENT


def _hash_key(plan: Plan, policy: PiiPolicy | None) -> bytes:
    """The plan's hash key: the policy's, else read from the variable the plan names."""
    import os

    from trackplan.errors import MissingSecretError
    from trackplan.pii.policy import DEFAULT_KEY_ENV

    if policy is not None and policy.key:
        return policy.key
    env = str(policy.hash_key_env if policy else plan.pii.get("hash_key_env", DEFAULT_KEY_ENV))
    value = os.environ.get(env)
    if not value:
        raise MissingSecretError(
            f"a destination receives hashed PII but the environment variable {env} is not "
            "set: set it to a secret key (never logged)"
        )
    return value.encode("utf-8")


def _present(node: Any, path: tuple[str, ...]) -> bool:
    for i, token in enumerate(path):
        if token == ANY:
            items = (
                node if type(node) is list else list(node.values()) if type(node) is dict else []
            )
            return any(_present(item, path[i + 1 :]) for item in items)
        if type(node) is not dict or token not in node:
            return False
        node = node[token]
    return True


def _own(parent: Any, slot: Any, owned: set[int]) -> Any:
    """``parent[slot]``, copied first unless this routing already owns it."""
    child = parent[slot]
    if id(child) in owned or type(child) not in (dict, list):
        return child
    child = dict(child) if type(child) is dict else list(child)
    parent[slot] = child
    owned.add(id(child))
    return child


def _slots(node: Any, token: str) -> list[Any]:
    if token == ANY:
        if type(node) is list:
            return list(range(len(node)))
        return list(node) if type(node) is dict else []
    return [token] if type(node) is dict and token in node else []


def _rewrite(
    root: dict[str, Any],
    owned: set[int],
    path: tuple[str, ...],
    category: str,
    form: str,
    key: bytes | None,
    canon: Canon | None = None,
) -> None:
    """Apply ``form`` at every match of ``path``, copying containers on the way (never the
    enforced event's own objects)."""
    *head, last = path
    parents: list[Any] = [root]
    for token in head:
        parents = [_own(p, slot, owned) for p in parents for slot in _slots(p, token)]
    for p in parents:
        for slot in reversed(_slots(p, last)):
            keep, value = apply_action(form, category, p[slot], key, canon=canon)
            if keep:
                p[slot] = value
            else:
                del p[slot]
