"""Which PII actions the generated client applies itself, read from the plan's policy.

A plan asks for client-side actions with ``pii: {client_side: true}`` (every rule) or
``x-pii-client-side: true`` on one rule. The fields and their actions are the ones
:class:`trackplan.pii.policy.PiiPolicy` collects for the enforcer (one reading of
``x-pii`` for every backend); the values are transformed by a verbatim copy of
:mod:`trackplan.pii.actions` shipped in the generated package, so the client hashes,
masks and redacts exactly as the pipeline does. ``allow`` fields are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from trackplan.plan.model import Plan, Rule

__all__ = ["ClientPii", "client_pii", "actions_source"]


class _AnyKey(Mapping[str, str]):
    """An environment in which every variable is set: codegen never reads the hash key."""

    def __getitem__(self, key: str) -> str:
        return "codegen-never-reads-the-key"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class ClientPii:
    """The client-side PII fields of each rule and the key's environment variable."""

    def __init__(self, fields: dict[int, list[list[Any]]], key_env: str) -> None:
        self._fields = fields
        self.key_env = key_env

    def fields(self, rule: Rule | None) -> list[list[Any]]:
        """``[[path below the payload, category, action], ...]`` for ``rule`` (may be [])."""
        return self._fields.get(id(rule), []) if rule is not None else []

    @property
    def needs_key(self) -> bool:
        """True when some client-side action is a hash."""
        return any(f[2] == "hash" for fields in self._fields.values() for f in fields)

    def __bool__(self) -> bool:
        return any(self._fields.values())


def _asks(plan: Plan, rule: Rule) -> bool:
    pii = plan.pii if isinstance(plan.pii, Mapping) else {}
    return pii.get("client_side") is True or rule.extra.get("x-pii-client-side") is True


def client_pii(plan: Plan) -> ClientPii:
    """The plan's client-side PII fields per rule (empty when the plan asks for none)."""
    rules = [r for r in plan.rules if r.payload_key is not None and _asks(plan, r)]
    if not rules:
        return ClientPii({}, "")
    from trackplan.pii.policy import PiiPolicy

    policy = PiiPolicy.from_plan(plan, environ=_AnyKey())
    fields: dict[int, list[list[Any]]] = {}
    for rule in rules:
        found: list[list[Any]] = []
        for f in policy.fields:
            if f.rule is not rule and f.rule != rule:
                continue
            if not f.path or f.path[0] != rule.payload_key or len(f.path) < 2:
                continue
            if f.category is None or f.action == "allow":
                continue
            found.append([list(f.path[1:]), f.category, f.action])
        if found:
            fields[id(rule)] = sorted(found, key=lambda x: (x[0], x[1], x[2]))
    return ClientPii(fields, policy.hash_key_env)


def actions_source() -> str:
    """The source of :mod:`trackplan.pii.actions`, copied into generated packages."""
    return resources.files("trackplan.pii").joinpath("actions.py").read_text(encoding="utf-8")
