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

Each action is the one function of :mod:`trackplan.pii.actions`; nothing is redefined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

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
        self._plan = plan
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

    def apply(
        self, dest: Destination, event: Any, rule: Rule | None = None
    ) -> tuple[Any, tuple[str, ...]]:
        """``(copy for dest, rejected categories)``; the event itself when nothing changes."""
        if dest.pii is None or type(event) is not dict:
            return event, ()
        todo = []
        for f in self.fields_for(rule):
            form = effective_form(f.action, dest.form(f.category))
            if form is not None and _present(event, f.path):
                todo.append((f, form))
        if not todo:
            return event, ()
        rejected = sorted({f.category for f, form in todo if form == "reject"})
        if rejected:
            return None, tuple(rejected)
        copy = orjson.loads(orjson.dumps(event))
        for f, form in todo:
            _rewrite(copy, f.path, f.category, form, self._key)
        return copy, ()


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


def _rewrite(node: Any, path: tuple[str, ...], category: str, form: str, key: bytes | None) -> None:
    """Apply ``form`` in place on the (private) copy ``node`` at every match of ``path``."""
    from trackplan.pii.actions import apply_action

    *head, last = path
    parents = [node]
    for token in head:
        nxt = []
        for p in parents:
            if token == ANY:
                nxt += p if type(p) is list else list(p.values()) if type(p) is dict else []
            elif type(p) is dict and token in p:
                nxt.append(p[token])
        parents = nxt
    for p in parents:
        slots: list[Any] = []
        if last == ANY:
            slots = list(range(len(p))) if type(p) is list else list(p) if type(p) is dict else []
        elif type(p) is dict and last in p:
            slots = [last]
        for slot in reversed(slots):
            keep, value = apply_action(form, category, p[slot], key)
            if keep:
                p[slot] = value
            else:
                del p[slot]
