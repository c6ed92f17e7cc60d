"""Diff two plans: every change per event and property, classified, with the version verdict.

>>> report = diff_plans(old_plan, new_plan)        # doctest: +SKIP
>>> report.ok, [c.cls for c in report.changes]      # doctest: +SKIP
(False, ['MODEL'])

Events are paired by (call kind, name) and version: the same version in both plans is an
in-place edit, which the plan's ``policy`` forbids for changes of class ``new_version_for``
(MODEL by default); a new version is compared with the closest older version in the
old plan, and needs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trackplan import pointer as jp
from trackplan.ci.classify import RANK, Context, SchemaChange, compare_schemas
from trackplan.ci.keywords import PII_ACTION_RANK, canon, default_pii_action
from trackplan.plan.assemble import DEFS_KEYS, rule_call_schema
from trackplan.plan.model import Plan, Rule

__all__ = ["Change", "EventDiff", "PlanDiff", "Policy", "policy_of", "diff_plans"]

PLAN_LABEL = "(plan)"


@dataclass(frozen=True, slots=True)
class Policy:
    """The plan's version-bump policy (its ``policy`` section).

    ``new_version_for``: the least change class that needs a new event version
    (``MODEL`` by default; ``never`` turns the check off). ``removed_events``: ``allow``
    (default) or ``fail`` when an event disappears from the plan.
    """

    new_version_for: str = "MODEL"
    removed_events: str = "allow"

    def needs_new_version(self, cls: str) -> bool:
        """Whether a change of class ``cls`` needs a new event version."""
        if self.new_version_for not in RANK:
            return False
        return RANK[cls] >= RANK[self.new_version_for]


def policy_of(plan: Plan) -> Policy:
    """Read the policy section of a plan (defaults where absent)."""
    raw = plan.policy
    return Policy(
        new_version_for=str(raw.get("new_version_for", "MODEL")),
        removed_events=str(raw.get("removed_events", "allow")),
    )


@dataclass(frozen=True, slots=True)
class Change:
    """One classified change, located in a plan file.

    ``pointer`` is a JSON pointer into ``file`` (for changes reached through a ``$ref``,
    the place the property has in the event as if the definition were written inline).
    """

    event: str
    old_version: int | None
    new_version: int | None
    kind: str
    pointer: str
    cls: str
    reason: str
    file: str = ""
    prop: str | None = None
    warehouse: str | None = None
    privacy: bool = False
    counterexample: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the ``changes`` list."""
        return {
            "event": self.event,
            "old_version": self.old_version,
            "new_version": self.new_version,
            "kind": self.kind,
            "property": self.prop,
            "pointer": self.pointer,
            "file": self.file,
            "class": self.cls,
            "reason": self.reason,
            "warehouse": self.warehouse,
            "privacy": self.privacy,
            "counterexample": self.counterexample,
        }


@dataclass(frozen=True, slots=True)
class EventDiff:
    """The changes of one event between an old and a new version, and the verdict."""

    event: str
    old_version: int | None
    new_version: int | None
    changes: tuple[Change, ...]
    needs_new_version: bool
    violation: str | None

    @property
    def cls(self) -> str | None:
        """The most severe class among the changes."""
        return max((c.cls for c in self.changes), key=RANK.__getitem__, default=None)

    @property
    def status(self) -> str:
        """added, removed, new version, or changed."""
        if self.old_version is None:
            return "added"
        if self.new_version is None:
            return "removed"
        return "new version" if self.new_version != self.old_version else "changed"


@dataclass(frozen=True, slots=True)
class PlanDiff:
    """Everything that changed between two plans."""

    events: tuple[EventDiff, ...]
    plan_changes: tuple[Change, ...]
    policy: Policy

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every change, events first, then plan-wide ones."""
        return tuple(c for e in self.events for c in e.changes) + self.plan_changes

    @property
    def privacy(self) -> tuple[Change, ...]:
        """Changes that concern PII: annotations, defaults, destinations."""
        return tuple(c for c in self.changes if c.privacy)

    @property
    def violations(self) -> tuple[EventDiff, ...]:
        """Events that break the plan's version policy."""
        return tuple(e for e in self.events if e.violation)

    @property
    def ok(self) -> bool:
        """True when no event breaks the policy."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """The JSON output: ``changes``, per-event verdicts, privacy notes, ``ok``."""
        return {
            "ok": self.ok,
            "policy": {
                "new_version_for": self.policy.new_version_for,
                "removed_events": self.policy.removed_events,
            },
            "changes": [c.to_json() for c in self.changes],
            "events": [
                {
                    "event": e.event,
                    "status": e.status,
                    "old_version": e.old_version,
                    "new_version": e.new_version,
                    "class": e.cls,
                    "needs_new_version": e.needs_new_version,
                    "violation": e.violation,
                }
                for e in self.events
            ],
            "privacy": [c.to_json() for c in self.privacy],
        }


# -- resolution of local $refs -------------------------------------------------------------
def _ref_root(plan: Plan, rule: Rule) -> dict[str, Any]:
    root: dict[str, Any] = rule_call_schema(rule)
    payload = rule.payload if isinstance(rule.payload, Mapping) else {}
    for key in DEFS_KEYS:
        merged = dict(plan.definitions)
        for source in (root.get(key), payload.get(key)):
            if isinstance(source, dict):
                merged.update(source)
        root[key] = merged
    return root


def _resolver(root: dict[str, Any]) -> Any:
    def resolve(ref: str) -> Any:
        if not ref.startswith("#"):
            return None
        node: Any = root
        try:
            for token in jp.parse(ref[1:]):
                node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            return None
        return node

    return resolve


def _closed(plan: Plan, rule: Rule) -> bool:
    kind = "track" if rule.kind == "common" else rule.kind
    return plan.controls.for_kind(kind).unplanned_properties in ("omit", "block")


# -- event diff ------------------------------------------------------------------------
def _compare_rules(old_plan: Plan, new_plan: Plan, old: Rule, new: Rule) -> list[Change]:
    old_root, new_root = _ref_root(old_plan, old), _ref_root(new_plan, new)
    ctx = Context(
        resolve_old=_resolver(old_root),
        resolve_new=_resolver(new_root),
        refs_stable=all(canon(old_root[k]) == canon(new_root[k]) for k in DEFS_KEYS),
        root_closed=_closed(old_plan, old) and _closed(new_plan, new),
        pii_defaults_old=_defaults(old_plan),
        pii_defaults_new=_defaults(new_plan),
    )
    found: list[SchemaChange] = []
    if old.description != new.description:
        found.append(
            SchemaChange(
                "description changed",
                "/description",
                "PATCH",
                "event description changed: documentation only",
            )
        )
    for key in sorted(set(old.extra) | set(new.extra)):
        if canon(old.extra.get(key)) != canon(new.extra.get(key)):
            found.append(
                SchemaChange(
                    "annotation changed",
                    jp.join("", key),
                    "PATCH",
                    f"{key} changed: no data affected",
                )
            )
    if old.payload_key is not None:
        found += compare_schemas(
            old.payload, new.payload, ctx, pointer=jp.join("", old.payload_key)
        )
    if canon(old.call) != canon(new.call):
        found += compare_schemas(old.call, new.call, ctx, pointer="/call", root=False)
    return [
        Change(
            event=new.label,
            old_version=old.version,
            new_version=new.version,
            kind=c.kind,
            pointer=new.pointer + c.pointer,
            cls=c.cls,
            reason=c.reason,
            file=new.source,
            prop=c.prop,
            warehouse=c.warehouse,
            privacy=c.privacy,
            counterexample=c.counterexample,
        )
        for c in found
    ]


def _defaults(plan: Plan) -> dict[str, str]:
    raw = plan.pii.get("defaults", {})
    return {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}


def _event_diffs(old_plan: Plan, new_plan: Plan, policy: Policy) -> list[EventDiff]:
    def group(plan: Plan) -> dict[tuple[str, str | None], dict[int, Rule]]:
        out: dict[tuple[str, str | None], dict[int, Rule]] = {}
        for rule in plan.rules:
            out.setdefault((rule.kind, rule.name), {})[rule.version] = rule
        return out

    olds, news = group(old_plan), group(new_plan)
    diffs: list[EventDiff] = []
    for key in sorted(set(olds) | set(news), key=lambda k: (k[0], k[1] or "")):
        o, n = olds.get(key, {}), news.get(key, {})
        if not o:
            for version, rule in sorted(n.items()):
                change = Change(
                    rule.label,
                    None,
                    version,
                    "event added",
                    rule.pointer,
                    "ADDITION",
                    "new event: no existing data is affected",
                    rule.source,
                )
                diffs.append(EventDiff(rule.label, None, version, (change,), False, None))
            continue
        if not n:
            for version, rule in sorted(o.items()):
                change = Change(
                    rule.label,
                    version,
                    None,
                    "event removed",
                    rule.pointer,
                    "MODEL",
                    "event removed: senders of it now fail validation",
                    rule.source,
                )
                violation = (
                    "event removed, and the plan's policy says removed_events: fail"
                    if policy.removed_events == "fail"
                    else None
                )
                diffs.append(EventDiff(rule.label, version, None, (change,), False, violation))
            continue
        for version in sorted(set(o) | set(n)):
            if version in o and version in n:
                diffs.append(
                    _pair(
                        old_plan,
                        new_plan,
                        o[version],
                        n[version],
                        policy,
                        in_place=True,
                        next_version=max(n) + 1,
                    )
                )
            elif version in n:
                older = [v for v in o if v < version] or [min(o)]
                diffs.append(
                    _pair(
                        old_plan,
                        new_plan,
                        o[max(older)],
                        n[version],
                        policy,
                        in_place=False,
                        next_version=version,
                    )
                )
            else:
                rule = o[version]
                replaced = any(v > version for v in n)
                reason = f"version {version} removed: senders still on it fail validation" + (
                    " (a newer version replaces it)" if replaced else ""
                )
                change = Change(
                    rule.label,
                    version,
                    None,
                    "version removed",
                    rule.pointer,
                    "MODEL",
                    reason,
                    rule.source,
                )
                diffs.append(EventDiff(rule.label, version, None, (change,), False, None))
    return [d for d in diffs if d.changes]


def _pair(
    old_plan: Plan,
    new_plan: Plan,
    old: Rule,
    new: Rule,
    policy: Policy,
    *,
    in_place: bool,
    next_version: int,
) -> EventDiff:
    changes = tuple(_compare_rules(old_plan, new_plan, old, new))
    worst = max((c.cls for c in changes), key=RANK.__getitem__, default=None)
    needs = worst is not None and policy.needs_new_version(worst)
    violation = None
    if needs and in_place:
        violation = (
            f"{worst} change to version {new.version} without a new version: add version "
            f"{next_version} (a new event file) and keep version {new.version} as it was"
        )
    return EventDiff(new.label, old.version, new.version, changes, needs, violation)


# -- plan-wide: PII defaults and destinations ------------------------------------------
def _plan_changes(old: Plan, new: Plan) -> list[Change]:
    out: list[Change] = []
    pii_file = new.sections.get("pii", "").split("#")[0]
    pii_base = new.sections.get("pii", "#").split("#", 1)[1]
    od, nd = _defaults(old), _defaults(new)
    for cat in sorted(set(od) | set(nd)):
        a, b = od.get(cat), nd.get(cat)
        if a == b:
            continue
        fallback = default_pii_action()
        loose = PII_ACTION_RANK.get(b or fallback, 0) < PII_ACTION_RANK.get(a or fallback, 0)
        reason = (
            f"default action for {cat} {'loosened' if loose else 'changed'} from "
            f"{a or fallback + ' (unset)'} to {b or fallback + ' (unset)'}: applies to every "
            f"{cat} property without its own action"
        )
        out.append(
            Change(
                PLAN_LABEL,
                None,
                None,
                "PII default changed",
                jp.join(pii_base, "defaults", cat),
                "REVISION",
                reason,
                pii_file,
                prop=f"pii.defaults.{cat}",
                privacy=True,
            )
        )
    if canon(dict(old.policy)) != canon(dict(new.policy)):
        pol_file, _, pol_base = new.sections.get("policy", "#").partition("#")
        was, now = policy_of(old), policy_of(new)
        out.append(
            Change(
                PLAN_LABEL, None, None, "policy changed", pol_base, "PATCH",
                f"version policy changed (new_version_for {was.new_version_for} -> "
                f"{now.new_version_for}, removed_events {was.removed_events} -> "
                f"{now.removed_events}): this diff applies the new policy",
                pol_file or new.source, prop="policy",
            )
        )  # fmt: skip
    dest_file, _, dest_base = new.sections.get("destinations", "#").partition("#")
    old_dest = {str(d.get("name")): d for d in old.destinations}
    for index, dest in enumerate(new.destinations):
        name = str(dest.get("name"))
        where = jp.join(dest_base, index, "pii")
        before = old_dest.get(name, {}).get("pii") or {}
        after = dest.get("pii") or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            continue
        received = [c for c, act in sorted(after.items()) if act not in ("drop", "reject")]
        fresh = [c for c in received if c not in before or before[c] in ("drop", "reject")]
        if fresh:
            out.append(
                Change(
                    PLAN_LABEL,
                    None,
                    None,
                    "destination receives PII",
                    where,
                    "REVISION",
                    f"destination {name} newly receives PII: {', '.join(fresh)}",
                    dest_file,
                    prop=f"destination {name}",
                    privacy=True,
                )
            )
        for cat in sorted(set(before) & set(after)):
            a, b = before[cat], after[cat]
            if (
                a != b
                and cat not in fresh
                and PII_ACTION_RANK.get(b, 0) < PII_ACTION_RANK.get(a, 0)
            ):
                out.append(
                    Change(
                        PLAN_LABEL,
                        None,
                        None,
                        "PII action loosened",
                        jp.join(where, cat),
                        "REVISION",
                        f"destination {name} gets {cat} loosened from {a} to {b}",
                        dest_file,
                        prop=f"destination {name}",
                        privacy=True,
                    )
                )
    return out


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """Compare two plans under the NEW plan's policy.

    Returns:
        A :class:`PlanDiff`; ``diff.ok`` is False when an event changed in a way its
        version policy forbids. ``diff_plans(p, p).changes`` is empty.
    """
    policy = policy_of(new)
    return PlanDiff(
        events=tuple(_event_diffs(old, new, policy)),
        plan_changes=tuple(_plan_changes(old, new)),
        policy=policy,
    )
